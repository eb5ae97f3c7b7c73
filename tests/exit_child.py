"""The child process of ``tests/test_exit_matrix.py``: does one thing with promlab, then exits.

Run as ``python tests/exit_child.py ACTION EXIT_MODE ARGS_JSON``. The action sets something
up (a cold query, a scraper, a server, rules, ...) and prints ``READY`` on stdout once it runs;
the exit mode then ends the process one way (falling off the end, ``sys.exit(3)``, an unhandled
exception, a KeyboardInterrupt, or waiting for the parent's SIGTERM/SIGINT). Nothing is closed
explicitly unless the action says so: interpreter exit has to cope with what is left running.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

# tests/waiting.py: run as a script, this file's directory is on sys.path.
from waiting import wait_for

from promlab import Session
from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store

#: What an action leaves to the exit mode: the ExitStack of ``with`` blocks still open.
Action = Callable[[dict[str, Any], ExitStack], None]


def ready(note: str = "") -> None:
    print("READY", note, flush=True)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a scraper hanging up mid-answer while the process exits is expected


def serve_http(handler: type[BaseHTTPRequestHandler]) -> str:
    srv = _Quiet(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True, name="child-http").start()
    return f"127.0.0.1:{srv.server_address[1]}"


class Target(BaseHTTPRequestHandler):
    """A tiny /metrics page whose counter grows with every scrape."""

    hits = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Target.hits += 1
        body = (f"# TYPE exit_hits counter\nexit_hits_total {Target.hits}\n"
                "# TYPE exit_gauge gauge\nexit_gauge 42\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Alertmanager(BaseHTTPRequestHandler):
    """Takes every POST of alerts, as the notifier needs of an Alertmanager."""

    posts = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Alertmanager.posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def scrape_config(target: str, interval: str = "100ms") -> dict[str, Any]:
    return {"global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [{"job_name": "exit", "scrape_interval": interval,
                                "static_configs": [{"targets": [target]}]}]}


# --- actions --------------------------------------------------------------------------------------
def query_cold(args: dict[str, Any], stack: ExitStack) -> None:
    """A cold store: an instant and a range query over blocks (series index read in pieces)."""
    s = Session(args["store"], read_only=True)
    n = int(s.query("count(exit_series)", time=args["end_s"])["value"].iloc[0])
    r = s.query_range("sum(exit_series)", args["end_s"] - 600, args["end_s"], "60s")
    ready(f"count={n} steps={len(r)}")


def seriesset(args: dict[str, Any], stack: ExitStack) -> None:
    """The store API directly: a SeriesSet iterated series by series; the store never closed."""
    store = open_store(args["store"], readonly=True)
    q = store.querier(0, args["end_s"] * 1000 + 1)
    ss = q.select([Matcher(MatchType.EQUAL, "__name__", "exit_series"),
                   Matcher(MatchType.REGEX, "i", "1.*")])
    total = 0
    for i in range(len(ss)):
        _, t, _ = ss.series(i)
        total += len(t)
    ready(f"series={len(ss)} samples={total}")


def with_session(args: dict[str, Any], stack: ExitStack) -> None:
    """Exit inside ``with Session(...)``: the block's exit closes it on the way out."""
    s = stack.enter_context(Session(args["store"], read_only=True))
    s.query("exit_series{i='7'}", time=args["end_s"])
    ready()


def bg_query(args: dict[str, Any], stack: ExitStack) -> None:
    """A daemon thread querying the cold store in a loop while the main thread exits."""
    s = Session(args["store"], read_only=True)
    done = threading.Event()

    def loop() -> None:
        k = 0
        while True:
            s.query_range(f"sum by (j) (exit_series{{i=~'{k % 10}.*'}})", args["end_s"] - 1200,
                          args["end_s"], "15s")
            k += 1
            done.set()

    threading.Thread(target=loop, daemon=True, name="child-query").start()
    done.wait(60)
    ready()


def bg_query_fresh(args: dict[str, Any], stack: ExitStack) -> None:
    """Daemon threads opening the store and querying it cold, over and over, during exit."""
    started = threading.Event()

    def loop(k: int) -> None:
        while True:
            store = open_store(args["store"], readonly=True)
            q = store.querier(0, args["end_s"] * 1000 + 1)
            q.select([Matcher(MatchType.EQUAL, "__name__", "exit_series"),
                      Matcher(MatchType.EQUAL, "i", str(k))])
            started.set()

    for k in range(2):
        threading.Thread(target=loop, args=(k,), daemon=True, name=f"child-open-{k}").start()
    started.wait(60)
    ready()


def scrape(args: dict[str, Any], stack: ExitStack) -> None:
    """Scraping a local target every 100 ms into a new store."""
    target = serve_http(Target)
    s = Session(args["data"], config=scrape_config(target))
    s.scrape.start()
    wait_for(lambda: Target.hits >= 3, timeout=60, what="three scrapes")
    wait_for(lambda: len(s.query("exit_gauge")) == 1, timeout=60, what="a stored sample")
    ready()


def serve(args: dict[str, Any], stack: ExitStack) -> None:
    """The HTTP API serving, with a client's query answered; a client thread keeps querying."""
    s = Session(args["data"])
    app = s.store.appender()
    now = int(time.time() * 1000)
    app.append(Labels({"__name__": "exit_gauge", "job": "serve"}), now, 42.0)
    app.commit()
    srv = s.serve("127.0.0.1:0")
    got = httpx.get(srv.url + "/api/v1/query", params={"query": "exit_gauge"}, timeout=30).json()
    assert got["data"]["result"], got

    def client() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while True:
                try:
                    c.get("/api/v1/query_range", params={"query": "rate(exit_gauge[1m])",
                                                         "start": now / 1000 - 3600,
                                                         "end": now / 1000, "step": "15"})
                except httpx.HTTPError:
                    time.sleep(0.01)

    threading.Thread(target=client, daemon=True, name="child-client").start()
    ready()


def rules(args: dict[str, Any], stack: ExitStack) -> None:
    """Rules every 100 ms, firing an alert to an Alertmanager stand-in, with scraping."""
    target = serve_http(Target)
    am = serve_http(Alertmanager)
    rule_file = Path(args["data"]).with_suffix(".rules.yml")
    rule_file.write_text("groups:\n- name: exit\n  interval: 100ms\n  rules:\n"
                         "  - record: exit:one\n    expr: vector(1)\n"
                         "  - alert: ExitAlways\n    expr: vector(1)\n")
    cfg = scrape_config(target)
    cfg["rule_files"] = [str(rule_file)]
    cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]}
    s = Session(args["data"], config=cfg)
    s.scrape.start()
    s.rules.start(resend_delay="100ms")
    wait_for(lambda: Alertmanager.posts >= 2, timeout=60, what="two alert posts")
    ready()


def remote_write(args: dict[str, Any], stack: ExitStack) -> None:
    """Remote write requests in flight from a daemon thread while the process exits."""
    from promlab.remote.codec import compress
    from promlab.remote.proto import prometheus_remote_pb2 as pb

    s = Session(args["data"])
    srv = s.serve("127.0.0.1:0")
    sent = threading.Event()

    def writer() -> None:
        k = 0
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while True:
                req = pb.WriteRequest()
                now = int(time.time() * 1000)
                for j in range(50):
                    ts = req.timeseries.add()
                    ts.labels.add(name="__name__", value="exit_rw")
                    ts.labels.add(name="j", value=str(j))
                    ts.samples.add(timestamp=now, value=float(k))
                try:
                    resp = c.post("/api/v1/write", content=compress(req.SerializeToString()),
                                  headers={"Content-Type": "application/x-protobuf",
                                           "Content-Encoding": "snappy",
                                           "X-Prometheus-Remote-Write-Version": "0.1.0"})
                except httpx.HTTPError:
                    time.sleep(0.01)
                    continue
                if resp.status_code == 204:
                    sent.set()
                k += 1
                time.sleep(0.002)

    threading.Thread(target=writer, daemon=True, name="child-rw").start()
    sent.wait(60)
    ready()


def importer(args: dict[str, Any], stack: ExitStack) -> None:
    """``import_from`` a live Prometheus, running in a daemon thread, cut off mid-way."""
    s = Session(args["data"])
    progress = threading.Event()

    def run() -> None:
        s.import_from(args["prometheus"], match='{__name__=~".+"}', start=args["import_start"],
                      end=args["import_end"], slice="1m", progress=False)

    t = threading.Thread(target=run, daemon=True, name="child-import")
    t.start()
    # Mid-way: some slices done (the resume file exists) but the thread still running.
    wait_for(lambda: any(Path(args["data"]).glob("**/*import*")) or not t.is_alive(),
             timeout=60, what="an import under way")
    progress.set()
    ready("alive" if t.is_alive() else "finished")


def magics(args: dict[str, Any], stack: ExitStack) -> None:
    """The notebook extension in an IPython shell: ``%promql`` over the cold store."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "promlab")
    shell.run_line_magic("promlab", f"data {args['store']}")
    out = shell.run_line_magic("promql", f"count(exit_series @ {args['end_s']})")
    assert int(out["value"].iloc[0]) == args["series"], out
    ready(repr(type(out)))


def dask_cluster(args: dict[str, Any], stack: ExitStack) -> None:
    """Queries on a dask LocalCluster's workers (threads, one process)."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                           dashboard_address=None)
    client = Client(cluster)
    s = Session(args["store"], read_only=True, cluster=client)
    n = int(s.query("count(exit_series)", time=args["end_s"])["value"].iloc[0])
    ready(f"count={n}")


def s3_store(args: dict[str, Any], stack: ExitStack) -> None:
    """A store on S3 (moto's server): written, flushed to a block there, queried cold."""
    opts = args["s3"]
    s = Session(args["s3_url"], storage_options=opts, local_dir=args["data"])
    app = s.store.appender()
    at_ms = args["s3_at"] * 1000
    for i in range(5):
        app.append(Labels({"__name__": "exit_s3", "i": str(i)}), at_ms, float(i))
    app.commit()
    s.flush()
    s2 = Session(args["s3_url"], storage_options=opts, local_dir=args["data"] + "-reader",
                 read_only=True)
    got = len(s2.query("exit_s3", time=args["s3_at"]))
    ready(f"series={got}")


ACTIONS: dict[str, Action] = {f.__name__: f for f in (
    query_cold, seriesset, with_session, bg_query, bg_query_fresh, scrape, serve, rules,
    remote_write, importer, magics, dask_cluster, s3_store)}


# --- exit modes -----------------------------------------------------------------------------------
def main() -> None:
    action, mode, raw = sys.argv[1], sys.argv[2], sys.argv[3]
    args = json.loads(raw)
    with ExitStack() as stack:
        ACTIONS[action](args, stack)
        if mode == "normal":
            return
        if mode == "exit3":
            sys.exit(3)
        if mode == "raise":
            raise RuntimeError("exit-matrix: boom")
        if mode == "keyboard":
            raise KeyboardInterrupt
        if mode == "signal":  # the parent sends SIGTERM or SIGINT
            # Short sleeps: a signal whose flag is set just before a long sleep starts would
            # be acted on only when it ends (CPython checks between bytecodes).
            for _ in range(2400):
                time.sleep(0.05)
            raise SystemExit("no signal came")
        raise SystemExit(f"unknown exit mode {mode}")


if __name__ == "__main__":
    main()

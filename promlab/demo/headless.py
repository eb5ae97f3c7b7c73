"""``promlab demo``: the main job, live: scrape real targets, store the samples, query them.

The demo starts a real ``node_exporter`` and a small app instrumented with
``prometheus_client``, writes a ``prometheus.yml`` for them, scrapes them into a store through
a :class:`promlab.Session` (``session.scrape.start``), imports a slice of the standard dataset (:mod:`promlab.datasets`),
runs a few PromQL queries, saves a plot and prints the store's statistics. Everything it starts
is stopped again, also on Ctrl-C or SIGTERM.

Examples
--------
>>> from promlab.demo import run
>>> run(data="/tmp/promlab-demo", quick=True)            # doctest: +SKIP
0
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from promlab.model import Matcher, MatchType, now_ms, to_timestamp

if TYPE_CHECKING:
    import pandas as pd

    from promlab.datasets import DatasetInfo
    from promlab.session import Session

__all__ = ["DemoApp", "NodeExporter", "find_node_exporter", "run", "scrape_config_text"]

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
#: The source checkout's root when the package runs from one (its ``notebooks/`` are shown).
_REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_node_exporter() -> str | None:
    """The node_exporter binary (the Debian package's path first), or None."""
    for cand in (NODE_EXPORTER, shutil.which("prometheus-node-exporter"), shutil.which("node_exporter")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class NodeExporter:
    """A node_exporter process on a free 127.0.0.1 port; ``stop()`` ends it (TERM, then KILL).

    Parameters
    ----------
    binary
        Path of the executable.
    timeout
        Seconds to wait for ``/metrics`` to answer before giving up.
    """

    def __init__(self, binary: str, *, timeout: float = 15.0) -> None:
        import httpx

        self.address = f"127.0.0.1:{_free_port()}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the process; closed in stop)
        self.process = subprocess.Popen([binary, f"--web.listen-address={self.address}"],
                                        stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    self._log.seek(0)
                    tail = self._log.read()[-500:].decode(errors="replace")
                    raise RuntimeError(f"node_exporter exited with {self.process.returncode}: {tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://{self.address}/metrics", timeout=2).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node_exporter not ready on {self.address} after {timeout:g} s")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log.close()


class DemoApp:
    """An in-process HTTP server exposing a counter and a histogram that a thread keeps busy.

    ``demo_requests_total{method,status}`` and ``demo_request_duration_seconds{method}``
    (a classic histogram) describe simulated requests whose rate swings with a 20 s period.
    """

    def __init__(self, *, seed: int = 7) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        reg = CollectorRegistry()
        self.requests = Counter("demo_requests", "Requests handled by the demo app.", ["method", "status"],
                                registry=reg)
        self.latency = Histogram("demo_request_duration_seconds", "Request latency of the demo app.",
                                 ["method"], registry=reg,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=reg)
        self._stop = threading.Event()
        self._driver = threading.Thread(target=self._drive, args=(seed,), name="promlab-demo-app", daemon=True)
        self._driver.start()

    def _drive(self, seed: int) -> None:
        import numpy as np

        rng = np.random.default_rng(seed)
        t0 = time.monotonic()
        tick = 0.05
        # method -> (mean requests/s, median latency s, error ratio)
        profile = {"GET": (40.0, 0.04, 0.01), "POST": (10.0, 0.15, 0.05)}
        while not self._stop.wait(tick):  # each tick: Poisson arrivals, log-normal latencies
            wave = 1 + 0.6 * math.sin(2 * math.pi * (time.monotonic() - t0) / 20)
            for method, (rps, median, err) in profile.items():
                n = int(rng.poisson(rps * wave * tick))
                if not n:
                    continue
                hist = self.latency.labels(method)
                for x in rng.lognormal(math.log(median), 0.7, n).tolist():
                    hist.observe(x)
                errors = int(rng.binomial(n, err))
                self.requests.labels(method, "200").inc(n - errors)
                self.requests.labels(method, "500").inc(errors)

    def stop(self) -> None:
        self._stop.set()
        self._driver.join(5)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def scrape_config_text(*, node: str | None, app: str | None, interval_s: int = 1) -> str:
    """The demo's ``prometheus.yml``: a job per target, and one relabel rule as an example."""
    relabel = (
        "    relabel_configs:\n"
        "      # relabeling example: copy the port out of the address into its own label\n"
        "      - source_labels: [__address__]\n"
        "        regex: '.*:(\\d+)'\n"
        "        target_label: port\n"
        "        replacement: '$1'\n"
    )
    text = (f"# Written by `promlab demo`; the ports are the ones of that run.\n"
            f"global:\n  scrape_interval: {interval_s}s\n  scrape_timeout: {interval_s}s\n"
            f"scrape_configs:\n")
    if node:
        slow = max(2, interval_s)  # node_exporter is the slower target to scrape
        text += (f"  - job_name: node\n    scrape_interval: {slow}s\n    scrape_timeout: {slow}s\n"
                 f"    static_configs:\n      - targets: ['{node}']\n{relabel}")
    if app:
        text += f"  - job_name: app\n    static_configs:\n      - targets: ['{app}']\n{relabel}"
    if not node and not app:
        text += "  []\n"
    return text


class _Stage:
    """Prints ``[i/n] title``; an exception fails the stage (reported) and the demo goes on."""

    def __init__(self, total: int) -> None:
        self.total, self.i, self.failed = total, 0, False

    def run(self, title: str, body: Callable[[], None]) -> bool:
        self.i += 1
        print(f"\n[{self.i}/{self.total}] {title}", flush=True)
        try:
            body()
        except Exception as e:  # the demo reports the failure and goes on
            print(f"  FAILED: {type(e).__name__}: {e}", flush=True)
            self.failed = True
            return False
        return True


def _indent(text: str, pad: str = "    ") -> str:
    return pad + text.replace("\n", "\n" + pad)


def _compact(df: pd.DataFrame, max_rows: int = 6) -> str:
    """A result frame as a short table: labels common to all rows go on one line above it."""
    if df.empty:
        return "(empty result)"
    labels = [c for c in df.columns if c not in ("timestamp", "value")]
    varying = [c for c in labels if df[c].nunique(dropna=False) > 1]
    common = {c: df[c].iloc[0] for c in labels if c not in varying}
    common = {k: v for k, v in common.items() if isinstance(v, str) and v}
    head = df.head(max_rows)
    table = head[varying].copy() if varying else head[[]].copy()
    table["value"] = [f"{v:.4g}" for v in head["value"].tolist()]
    lines = []
    if common:
        lines.append("{" + ", ".join(f'{k}="{v}"' for k, v in common.items()) + "}")
    lines.append(table.to_string(index=False))
    if len(df) > max_rows:
        v = df["value"]
        lines.append(f"... {len(df) - max_rows} more rows; all {len(df)}: min {v.min():.4g}, "
                     f"median {v.median():.4g}, max {v.max():.4g}")
    return "\n".join(lines)


def _targets_table(targets: pd.DataFrame) -> str:
    if targets.empty:
        return "(no targets)"
    rows = targets[targets["health"] != "dropped"]
    view = rows[["scrape_pool", "health", "last_error", "scrapes"]].copy()
    view.insert(1, "instance", [ls.get("instance", "") for ls in rows["labels"]])
    view.insert(4, "duration", [f"{d * 1000:.0f} ms" if d == d else "-" for d in rows["last_scrape_duration"]])
    view["last_error"] = view["last_error"].fillna("").replace("", "-")
    return str(view.rename(columns={"scrape_pool": "job"}).to_string(index=False))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (main thread only), so cleanup runs either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(*, data: str | os.PathLike[str] = "data", duration: float | None = None, quick: bool = False,
        hours: float | None = None, scale: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None) -> int:
    """Run the demo; returns the exit code (0 on success, 1 if a stage failed, 130 on Ctrl-C).

    Parameters
    ----------
    data
        The store directory (created if needed); ``prometheus.yml`` and ``demo.png`` go there too.
    duration
        Seconds of live scraping (default 30, or 5 with ``quick``).
    quick
        A short run for tests: 5 s of scraping and a smaller dataset slice.
    hours, scale
        The standard dataset slice to import (default 2 h of 10 instances; quick: 0.5 h of 5).
    cache_dir
        Where the generated dataset file is kept (default
        :func:`promlab.datasets.default_cache_dir`: ``~/.cache/promlab``).
    """
    ctx = _Demo(Path(data), duration=duration if duration is not None else (5.0 if quick else 30.0),
                hours=hours if hours is not None else (0.5 if quick else 2.0),
                scale=scale if scale is not None else (0.05 if quick else 0.1), cache_dir=cache_dir)
    with _sigterm_as_interrupt(), contextlib.ExitStack() as stack:
        try:
            return ctx.main(stack)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the scraper, node_exporter and the app", flush=True)
    return 130


class _Demo:
    def __init__(self, data: Path, *, duration: float, hours: float, scale: float,
                 cache_dir: str | os.PathLike[str] | None) -> None:
        self.data, self.duration, self.hours, self.scale, self.cache_dir = data, duration, hours, scale, cache_dir
        self.node: NodeExporter | None = None
        self.app: DemoApp | None = None
        self.session: Session | None = None
        self.live: tuple[int, int] | None = None  # first and last scrape time (ms) of this run
        self.dataset: DatasetInfo | None = None

    def main(self, stack: contextlib.ExitStack) -> int:
        from promlab.errors import PromlabError
        from promlab.session import Session

        print(f"promlab demo: scrape -> store {self.data} -> PromQL  ({self.duration:g} s of live scraping)",
              flush=True)
        try:
            self.session = Session(self.data, progress=True)
        except PromlabError as e:  # e.g. a `promlab scrape` daemon holds the store's lock
            print(f"promlab demo: cannot open the store {self.data}: {e}", file=sys.stderr)
            return 1
        stack.callback(self.session.close)
        stage = _Stage(6)
        stage.run("starting targets: node_exporter and an app instrumented with prometheus_client",
                  lambda: self.start_targets(stack))
        stage.run(f"scraping for {self.duration:g} s (session.scrape.start)", self.scrape)
        stage.run(f"importing {self.hours:g} h of the standard dataset (promlab.importer)", self.import_dataset)
        stage.run("querying the store (session.query)", self.queries)
        stage.run("plotting a range query (session.query_range, df.prom.plot)", self.plot)
        stage.run(f"the store {self.data}", self.summary)
        self.next_steps()
        print("\ndemo failed" if stage.failed else "\ndemo done", flush=True)
        return 1 if stage.failed else 0

    def start_targets(self, stack: contextlib.ExitStack) -> None:
        binary = find_node_exporter()
        if binary is None:
            print(f"  node_exporter is not installed ({NODE_EXPORTER}; Debian package "
                  "prometheus-node-exporter): going on with the app alone")
        else:
            self.node = NodeExporter(binary)
            stack.callback(self.node.stop)
            print(f"  node_exporter  http://{self.node.address}/metrics  (pid {self.node.process.pid})")
        try:
            self.app = DemoApp()
        except ImportError:
            print("  prometheus_client is not installed (pip install prometheus_client): no app target")
        else:
            stack.callback(self.app.stop)
            print(f"  app            http://{self.app.address}/metrics  "
                  "(demo_requests_total, demo_request_duration_seconds)")
        if self.node is None and self.app is None:
            raise RuntimeError("no target could be started")

    def scrape(self) -> None:
        assert self.session is not None
        if self.node is None and self.app is None:
            raise RuntimeError("no targets to scrape")
        from tqdm.auto import tqdm

        cfg = self.data / "prometheus.yml"
        cfg.write_text(scrape_config_text(node=self.node.address if self.node else None,
                                          app=self.app.address if self.app else None))
        print(f"  config: {cfg}")
        handle = self.session.scrape.start(cfg)
        try:
            first = now_ms()
            t0 = time.monotonic()
            with tqdm(total=round(self.duration, 1), unit="s", desc="scraping",
                      bar_format="{desc}: {bar:30}| {n:.0f}/{total:.0f} s{postfix}") as bar:
                while (elapsed := time.monotonic() - t0) < self.duration:
                    time.sleep(min(0.5, self.duration - elapsed))
                    bar.n = round(min(time.monotonic() - t0, self.duration), 1)
                    bar.set_postfix_str(f"{handle.manager.samples_appended:,} samples", refresh=True)
            self.live = (first, now_ms())
            print(_indent(_targets_table(handle.targets()), "  "))
            print(f"  {handle.manager.samples_appended:,} samples appended in {self.duration:g} s")
            # Removing the jobs writes staleness markers (as Prometheus does when a target goes
            # away), so the series of this run end here and those of earlier runs never linger.
            self.session.scrape.reload({"scrape_configs": []})
        finally:
            self.session.scrape.stop()

    def import_dataset(self) -> None:
        from promlab.datasets import standard_dataset
        from promlab.importer import import_file

        assert self.session is not None
        info = standard_dataset(hours=self.hours, scale=self.scale, cache_dir=self.cache_dir)
        self.dataset = info
        print(f"  {info.path}: {info.series:,} series, {info.samples:,} samples, {info.bytes / 1e6:,.1f} MB")
        q = self.session.store.querier(info.spec.start_ms, info.spec.end_ms)
        try:
            have = q.select([Matcher(MatchType.REGEX, "__name__", ".+")]).num_samples
        finally:
            q.close()
        if have >= info.samples:
            print(f"  already in the store ({have:,} samples in its time range): not imported again")
            return
        t0 = time.perf_counter()
        stats = import_file(info.path, self.session.storage, progress=True)
        dt = time.perf_counter() - t0
        print(f"  imported {stats.samples:,} samples of {stats.series:,} series in {dt:.2f} s "
              f"({stats.samples / dt:,.0f} samples/s)", flush=True)

    def queries(self) -> None:
        assert self.session is not None
        todo: list[tuple[str, int]] = []
        if self.live is not None:
            at = self.live[1]
            todo += [("up", at), ("sum by (job) (scrape_samples_scraped)", at)]
            if self.node is not None:
                todo.append(('rate(node_cpu_seconds_total{mode="idle"}[30s])', at))
            if self.app is not None:
                todo.append(("histogram_quantile(0.9, sum by (method, le) "
                             "(rate(demo_request_duration_seconds_bucket[30s])))", at))
        if self.dataset is not None:
            todo.append(("topk(3, sum by (instance) (rate(http_requests_total[5m])))", self.dataset.spec.end_ms))
        if not todo:
            raise RuntimeError("nothing was stored to query")
        for expr, at in todo:
            t0 = time.perf_counter()
            df = self.session.query(expr, time=at / 1000)
            dt = time.perf_counter() - t0
            print(f"  > {expr}\n    at {_iso(at)}: {len(df)} series in {dt * 1000:.1f} ms")
            print(_indent(_compact(df), "      "), flush=True)

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")  # files only; set here, never by the library
        import matplotlib.pyplot as plt

        assert self.session is not None
        if self.live is None:
            raise RuntimeError("nothing was scraped to plot")
        if self.app is not None:
            expr, ylabel = "sum by (method) (rate(demo_requests_total[5s]))", "requests/s"
        else:
            expr, ylabel = 'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[5s]))', "CPU seconds/s"
        start, end = self.live
        t0 = time.perf_counter()
        df = self.session.query_range(expr, start / 1000, end / 1000, "1s")
        dt = time.perf_counter() - t0
        print(f"  > {expr}\n    {_iso(start)} .. {_iso(end)} step 1s: {len(df)} points in {dt * 1000:.1f} ms")
        if df.empty:
            raise RuntimeError("the range query returned nothing to plot")
        ax = df.prom.plot(figsize=(8, 4), title=f"promlab demo: {expr}", marker=".")
        ax.set_ylabel(ylabel)
        ax.set_xlabel("time (UTC)")
        ax.grid(alpha=0.3)
        out = self.data / "demo.png"
        ax.figure.tight_layout()
        ax.figure.savefig(out, dpi=100)
        plt.close(ax.figure)
        print(f"  saved {out}")

    def summary(self) -> None:
        assert self.session is not None
        t0 = time.perf_counter()
        self.session.flush()
        print(f"  flushed the head to Parquet blocks in {time.perf_counter() - t0:.2f} s")
        info = self.session.info()
        bps = info.bytes_per_sample
        print(f"  series:       {info.series:,}")
        print(f"  samples:      {info.samples:,}")
        print(f"  blocks:       {info.blocks:,} ({info.block_bytes:,} bytes)")
        print(f"  bytes/sample: {bps:.2f}" if bps is not None else "  bytes/sample: - (no blocks)")

    def next_steps(self) -> None:
        d = shlex.quote(str(self.data))
        print("\nnext: query the store further")
        if self.live is not None:
            # The scraped series end with staleness markers: query at the last scrape, or look back.
            print(f"  promlab query 'up' --data {d} --time {_iso(self.live[1])}")
            print(f"  promlab query 'last_over_time(up[1h])' --data {d}")
            print(f"  promlab query 'rate(demo_requests_total[10s])' --data {d} "
                  f"--start {_iso(self.live[0])} --end {_iso(self.live[1])} --step 5s")
        if self.dataset is not None:
            print(f"  promlab query 'sum by (method) (rate(http_requests_total[5m]))' --data {d} "
                  f"--time {_iso(self.dataset.spec.end_ms)}")
        print(f"  promlab tsdb info --data {d}")
        print(f"  promlab scrape --config {d}/prometheus.yml --data {d}   "
              "(the same scrape, as a daemon, once targets listen on those ports)")
        notebooks = _REPO / "notebooks"  # only in a source checkout, not in an installed package
        books = sorted(notebooks.glob("*.ipynb"))
        if books:
            print(f"  jupyter lab {shlex.quote(str(notebooks))}   ({len(books)} notebooks)")
        elif notebooks.is_dir():
            print("  notebooks: none yet; once notebooks/ has some, open them with `jupyter lab notebooks/`")


def _iso(ms: int) -> str:
    return str(to_timestamp(ms).isoformat(timespec="seconds").replace("+00:00", "Z"))

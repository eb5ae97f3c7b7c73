"""``promlab demo --headless``: the main job, live, in a terminal: scrape, store, rules, query.

The demo starts a real ``node_exporter``, a simulated web service (:class:`~promlab.demo.targets.DemoApp`)
and promlab's own API (``Session.serve``, whose ``/metrics`` is scraped too), writes a
``prometheus.yml`` and the demo rules, scrapes the targets into a store through a
:class:`promlab.Session` (``session.scrape.start``) while the rules run (``session.rules.start``),
imports a slice of the standard dataset (:mod:`promlab.datasets`), runs a few PromQL queries
(the demo alert among them), saves a plot and prints the store's statistics. Everything it starts
is stopped again, also on Ctrl-C or SIGTERM.

Examples
--------
>>> from promlab.demo.headless import run_headless
>>> run_headless(data="/tmp/promlab-demo", quick=True)            # doctest: +SKIP
0
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from promlab.demo.targets import (
    DEMO_RULES,
    NODE_EXPORTER,
    DemoApp,
    NodeExporter,
    find_node_exporter,
    scrape_config_text,
)
from promlab.model import Matcher, MatchType, now_ms, to_timestamp

if TYPE_CHECKING:
    import pandas as pd

    from promlab.datasets import DatasetInfo
    from promlab.session import Session

__all__ = ["RULES_FILE", "Targets", "run_headless", "sigterm_as_interrupt", "start_targets", "write_config"]


#: The demo's rule file, written next to its ``prometheus.yml`` in the data directory.
RULES_FILE = "demo_rules.yml"


@dataclass
class Targets:
    """What :func:`start_targets` started: node_exporter (None when not installed), the
    simulated web service, and the address of promlab's own API (its ``/metrics``)."""

    node: NodeExporter | None
    app: DemoApp | None
    promlab: str | None


def start_targets(stack: contextlib.ExitStack, session: Session, *, incident: bool = True) -> Targets:
    """Start node_exporter, the demo app and ``session.serve`` on free ports (each stopped by
    ``stack``); print where they listen.

    Raises
    ------
    RuntimeError
        Nothing could be started.
    """
    node = app = None
    binary = find_node_exporter()
    if binary is None:
        print(f"  node_exporter is not installed ({NODE_EXPORTER}; Debian package "
              "prometheus-node-exporter): going on without it")
    else:
        node = NodeExporter(binary)
        stack.callback(node.stop)
        print(f"  node_exporter  http://{node.address}/metrics  (pid {node.process.pid})")
    try:
        app = DemoApp() if incident else DemoApp(incident=0)
    except ImportError:
        print("  prometheus_client is not installed (pip install prometheus_client): no app target")
    else:
        stack.callback(app.stop)
        print(f"  app            http://{app.address}/metrics  "
              "(demo_requests_total, demo_request_duration_seconds; an incident "
              f"{app.incident:g} s of every {app.period:g} s)")
    own = None
    try:
        server = session.serve("127.0.0.1:0")
    except Exception as e:  # the API is optional here: say why and go on
        print(f"  promlab API could not start: {type(e).__name__}: {e}")
    else:
        own = server.url.removeprefix("http://").rstrip("/")
        print(f"  promlab        {server.url.rstrip('/')}/metrics  (this session's API and own metrics)")
    if node is None and app is None and own is None:
        raise RuntimeError("no target could be started")
    return Targets(node, app, own)


def write_config(data: Path, targets: Targets) -> Path:
    """Write ``prometheus.yml`` (the targets, ``rule_files``) and the demo rules into ``data``."""
    data.mkdir(parents=True, exist_ok=True)
    (data / RULES_FILE).write_text(DEMO_RULES)
    cfg = data / "prometheus.yml"
    cfg.write_text(scrape_config_text(node=targets.node.address if targets.node else None,
                                      app=targets.app.address if targets.app else None,
                                      promlab=targets.promlab, rule_files=(str((data / RULES_FILE).resolve()),)))
    return cfg


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
    labels = df.prom.label_columns()
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
def sigterm_as_interrupt() -> Iterator[None]:
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


def run_headless(*, data: str | os.PathLike[str] = "data", duration: float | None = None, quick: bool = False,
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
    with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
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
        self.targets = Targets(None, None, None)
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
        stage.run("starting targets: node_exporter, a simulated web service, promlab's own API",
                  lambda: self.start_targets(stack))
        stage.run(f"scraping for {self.duration:g} s with the demo rules (session.scrape.start, "
                  "session.rules.start)", self.scrape)
        stage.run(f"importing {self.hours:g} h of the standard dataset (promlab.importer)", self.import_dataset)
        stage.run("querying the store (session.query)", self.queries)
        stage.run("plotting a range query (session.query_range, df.prom.plot)", self.plot)
        stage.run(f"the store {self.data}", self.summary)
        self.next_steps()
        print("\ndemo failed" if stage.failed else "\ndemo done", flush=True)
        return 1 if stage.failed else 0

    def start_targets(self, stack: contextlib.ExitStack) -> None:
        assert self.session is not None
        self.targets = start_targets(stack, self.session)
        self.node, self.app = self.targets.node, self.targets.app

    def scrape(self) -> None:
        assert self.session is not None
        if self.node is None and self.app is None:
            raise RuntimeError("no targets to scrape")
        from tqdm.auto import tqdm

        cfg = write_config(self.data, self.targets)
        print(f"  config: {cfg} (rules: {cfg.parent / RULES_FILE})")
        handle = self.session.scrape.start(cfg)
        self.session.rules.start(notify=False)
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
            self.session.rules.stop()
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
            todo += [("up", at), ("sum by (job) (scrape_samples_scraped)", at),
                     ("max_over_time(ALERTS[1h])", at)]
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
        print("  promlab demo   (without --headless: the same targets and rules, and JupyterLab on "
              "quickstart.ipynb)")


def _iso(ms: int) -> str:
    return str(to_timestamp(ms).isoformat(timespec="seconds").replace("+00:00", "Z"))

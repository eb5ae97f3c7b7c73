"""Notebook front end: magic overhead, explorer latency, scraping beside a busy cell.

``python -m benchmarks.notebook [--repeat 200] [--busy 10]``

* ``%promql`` overhead: the same instant query through ``%promql`` in a real IPython
  InteractiveShell and through ``Session.query`` directly; the median difference (target < 5 ms).
* explorer: 1,000 counter series × 1 h at 15 s; ``Explorer.run()`` of ``rate(x[1m])`` over the
  hour (auto step 14 s), query to finished PNG (target < 1 s); median of a few runs.
* scrape-start lateness of a 1 s target (an in-process prometheus_client app) while the main
  thread runs ``--busy`` seconds of CPU-bound pandas work; p50/p99/max (target p99 < 100 ms).

The machine is shared: figures are upper bounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from promlab import Labels, MemoryStorage, Session
from promlab.model import now_ms


def magic_overhead(repeat: int) -> tuple[float, float]:
    from IPython.core.interactiveshell import InteractiveShell

    from promlab.notebook import use_session

    st = MemoryStorage()
    end = now_ms()
    ts = list(range(end - 600_000, end + 1, 15_000))
    for i in range(20):
        st.add_series(Labels({"__name__": "up", "instance": f"i{i}"}), ts, [1.0] * len(ts))
    session = Session(st)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "promlab")
    use_session(session, sh)
    expr = "sum(up)"
    direct, magic = [], []
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            session.query(expr)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sh.run_line_magic("promql", expr)
            magic.append(time.perf_counter() - t0)
    finally:
        sh.run_line_magic("unload_ext", "promlab")
        InteractiveShell.clear_instance()
    return statistics.median(direct) * 1000, statistics.median(magic) * 1000


def explorer_latency(runs: int = 5) -> tuple[float, int]:
    from promlab.notebook.widgets.explorer import Explorer

    st = MemoryStorage()
    end = now_ms() // 15_000 * 15_000
    ts = np.arange(end - 3_600_000, end + 1, 15_000)
    rng = np.random.default_rng(1)
    for i in range(1000):
        v = np.cumsum(rng.integers(0, 10, len(ts))).astype(float)
        st.add_series(Labels({"__name__": "reqs_total", "instance": f"i{i}", "job": "api"}),
                      ts.tolist(), v.tolist())
    ex = Explorer(Session(st), range="1h", end=str(end / 1000))
    times = []
    for _ in range(runs):
        ex.expr = "rate(reqs_total[1m])"
        t0 = time.perf_counter()
        ex.run()
        times.append(time.perf_counter() - t0)
        assert ex.error == "" and ex.plot_image.value[:4] == b"\x89PNG"
    return statistics.median(times) * 1000, ex.series


def scrape_lateness(busy_s: float) -> np.ndarray:
    from promlab.demo import DemoApp, scrape_config_text

    app = DemoApp()
    work = Path(tempfile.mkdtemp(prefix="promlab-bench-nb-"))
    cfg = work / "prometheus.yml"
    cfg.write_text(scrape_config_text(node=None, app=app.address, interval_s=1))
    session = Session(MemoryStorage())
    try:
        handle = session.scrape.start(str(cfg))
        time.sleep(2.5)  # first scrapes
        skip = len(handle.lateness())
        deadline = time.monotonic() + busy_s
        rng = np.random.default_rng(0)
        while time.monotonic() < deadline:  # a cell doing CPU-bound pandas work
            df = pd.DataFrame({"k": rng.integers(0, 1000, 200_000),
                               "v": rng.random(200_000)})
            df.groupby("k")["v"].agg(["mean", "std", "max"]).sort_values("mean")
            df["v"].rolling(50).mean().sum()
        return handle.lateness()[skip:]
    finally:
        session.close()
        app.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--busy", type=float, default=10.0)
    args = ap.parse_args(argv)
    direct, magic = magic_overhead(args.repeat)
    print(f"%promql overhead: Session.query {direct:.2f} ms, %promql {magic:.2f} ms, "
          f"overhead {magic - direct:.2f} ms (target < 5 ms)")
    ms, series = explorer_latency()
    print(f"explorer query to finished plot: {series} series x 1 h: {ms:.0f} ms (target < 1000 ms)")
    late = scrape_lateness(args.busy) * 1000
    if late.size:
        print(f"scrape-start lateness of a 1 s target during {args.busy:g} s of pandas work: "
              f"{late.size} scrapes, p50 {np.percentile(late, 50):.1f} ms, "
              f"p99 {np.percentile(late, 99):.1f} ms, max {late.max():.1f} ms (target p99 < 100 ms)")
    else:
        print("scrape-start lateness: no scrapes recorded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Scraped samples the store refuses (Prometheus's head rules): dropped and counted, the rest of
the scrape stored, ``up`` stays 1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from promlab.config import load_config
from promlab.config.httpclient import build_client
from promlab.discovery.static import StaticProvider
from promlab.model import Matcher, MatchType
from promlab.scrape.loop import Batch, ScrapeLoop
from promlab.scrape.targets import build_targets
from promlab.storage import open_store
from promlab.storage.interface import AppendStats

from .pagetarget import StaticPage

T = 1_700_000_000_000


# (pages served one scrape after another, what "m" holds after them, the refusals counted)
CASES = [
    pytest.param([f"m 1 {T}\nn 1\n", f"m 2 {T}\nn 2\n"], [(T, 1.0)], {"duplicates": 1},
                 id="repeated-timestamp-other-value-first-wins"),
    pytest.param([f"m 1 {T}\nn 1\n", f"m 1 {T}\nn 2\n"], [(T, 1.0)], {},
                 id="repeated-timestamp-same-value"),
    pytest.param([f"m 1 {T}\nn 1\n", f"m 5 {T - 1000}\nn 2\n"], [(T, 1.0)], {"out_of_order": 1},
                 id="older-timestamp"),
    # One series at two explicit times in one page: two samples (only the same series at one
    # time is a within-page duplicate); the later page's other value at that time is refused.
    pytest.param([f"m 1 {T - 500}\nm 2 {T}\nn 1\n", f"m 3 {T}\nn 2\n"],
                 [(T - 500, 1.0), (T, 2.0)], {"duplicates": 1},
                 id="same-series-two-times-in-a-page"),
    pytest.param([f"m 1 {T}\nm 2 {T}\nn 1\n", "n 2\n"], [(T, 1.0)], {},
                 id="same-series-same-time-in-a-page-first-wins"),
    # "f" (9 min ahead, within the loop's limit) moves the head's max time: a new series 55 min
    # before the second scrape (within the loop's limit) is then before the head's minimum
    # valid time (max time - 1 h).
    pytest.param([f"m 1 {T}\nf 1 {T + 540_000}\nn 1\n",
                  f"m 1 {T}\nf 1 {T + 540_000}\no 1 {T + 2000 - 55 * 60_000}\nn 2\n"],
                 [(T, 1.0)], {"out_of_bounds": 1}, id="before-head-minimum-valid-time"),
]


@pytest.mark.parametrize(("pages", "want", "refused"), CASES)
def test_refused_samples_dropped_rest_stored(static_page: tuple[str, StaticPage], tmp_path: Path,
                                             pages: list[str], want: list[tuple[int, float]],
                                             refused: dict[str, int]) -> None:
    address, p = static_page
    cfg = load_config({"scrape_configs": [{"job_name": "j", "scrape_interval": "1s",
                                           "static_configs": [{"targets": [address]}]}]})
    sc = cfg.scrape_configs[0]
    targets, _ = build_targets(StaticProvider(sc.static_configs).groups, sc)
    stats: list[AppendStats] = []
    with open_store(tmp_path / "data", wal_fsync=False) as st:

        async def commit(batch: Batch) -> None:
            app = st.appender()
            for part in batch.parts:
                app.append_batch(*part)
            stats.append(app.commit())

        async def main() -> list[bool]:
            async with build_client(sc.http, timeout_s=sc.scrape_timeout_ms / 1000) as client:
                lp = ScrapeLoop(targets[0], sc, client=client, commit=commit)
                ups = []
                for i, body in enumerate(pages):
                    p.data = body.encode()
                    res = await lp.scrape_once(T + 1000 * (i + 1))
                    ups.append(res.ok)
                return ups

        ups = asyncio.run(main())
        q = st.querier(0, 1 << 62)

        def points(name: str) -> list[tuple[int, float]]:
            ss = q.select([Matcher(MatchType.EQUAL, "__name__", name)])
            _, t, v = ss.series(0)
            return list(zip(t.tolist(), v.tolist(), strict=True))

        assert all(ups)
        assert points("m") == want
        assert [v for _, v in points("n")] == [1.0, 2.0]  # the scrape's other samples
        assert [v for _, v in points("up")] == [1.0] * len(pages)
        got = {k: sum(getattr(s, k) for s in stats)
               for k in ("out_of_order", "out_of_bounds", "duplicates", "too_old")}
        assert {k: v for k, v in got.items() if v} == refused

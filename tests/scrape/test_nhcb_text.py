"""Classic histograms from OpenMetrics text as NHCBs: imported (``import_file`` with
``convert_classic_histograms_to_nhcb``) and scraped (a real HTTP target on 127.0.0.1 serving the
same text, the scrape option of the same name) must store the same histograms.

The served pages and the import file hold the same points: a histogram family (converted), a
gauge histogram and a summary (controls: they stay float series), a counter with ``_created``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from promlab.exposition.nhcb import ClassicConverter
from promlab.exposition.nhcbtext import NhcbTextParser
from promlab.importer import import_file
from promlab.model import Matcher, MatchType
from promlab.model.histogram import CUSTOM_BUCKETS_SCHEMA
from promlab.promql.engine import Engine
from promlab.storage import MemoryStorage
from tests.scrape.drive import scrape_rounds

T0 = 1_700_000_000_000
STEP = 15_000
POINTS = 4
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def families(k: int) -> dict[str, tuple[str, list[str]]]:
    """Family name -> (type, sample lines without timestamps) served at point ``k``."""
    b1, b2, inf = 1 + k, 3 + 2 * k, 4 + 3 * k
    return {
        "req": ("histogram", [f'req_bucket{{path="/a",le="0.1"}} {b1}', f'req_bucket{{path="/a",le="1"}} {b2}',
                              f'req_bucket{{path="/a",le="+Inf"}} {inf}', f'req_count{{path="/a"}} {inf}',
                              f'req_sum{{path="/a"}} {2.5 + k}', 'req_created{path="/a"} 1699999000',
                              f'req_bucket{{path="/b",le="0.5"}} {2 * k}', f'req_bucket{{path="/b",le="+Inf"}} {2 * k + 1}',
                              f'req_count{{path="/b"}} {2 * k + 1}', f'req_sum{{path="/b"}} {0.75 * k}']),
        "g": ("gaugehistogram", [f'g_bucket{{le="1"}} {k}', f'g_bucket{{le="+Inf"}} {k + 2}',
                                 f"g_gcount {k + 2}", f"g_gsum {k * 1.5}"]),
        "s": ("summary", [f's{{quantile="0.5"}} {0.2 + k / 10}', f"s_sum {3 * k}", f"s_count {k + 1}"]),
        "c": ("counter", [f"c_total {10 * k}", "c_created 1699999000"]),
    }


def page(k: int) -> bytes:
    lines = []
    for name, (typ, samples) in families(k).items():
        lines += [f"# TYPE {name} {typ}", *samples]
    return ("\n".join([*lines, "# EOF"]) + "\n").encode()


def import_text() -> str:
    """All points, each family's points together, timestamps in seconds (OpenMetrics)."""
    lines = []
    for name, (typ, _) in families(0).items():
        lines.append(f"# TYPE {name} {typ}")
        for k in range(POINTS):
            sec = (T0 + k * STEP) / 1000
            lines += [f"{s} {sec:.3f}" for s in families(k)[name][1]]
    return "\n".join([*lines, "# EOF"]) + "\n"


class _Target:
    def __init__(self) -> None:
        self.body = b""
        handler = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", OM)
                self.send_header("Content-Length", str(len(handler.body)))
                self.end_headers()
                self.wfile.write(handler.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def target() -> Iterator[_Target]:
    t = _Target()
    t.thread.start()
    yield t
    t.server.shutdown()
    t.server.server_close()


def scraped(target: _Target, job: dict[str, Any]) -> MemoryStorage:
    store = MemoryStorage()
    config = {"scrape_configs": [{"job_name": "j", "scrape_interval": "15s",
                                  "static_configs": [{"targets": [target.address]}], **job}]}
    results = scrape_rounds(store, config, [T0 + k * STEP for k in range(POINTS)],
                            before=lambda k: setattr(target, "body", page(k)))
    assert all(r.ok for r in results), [r.error for r in results]
    return store


def imported(tmp_path: Path, **options: Any) -> MemoryStorage:
    path = tmp_path / "in.om"
    path.write_text(import_text())
    store = MemoryStorage()
    import_file(path, store, progress=False, **options)
    return store


def answers(store: MemoryStorage, q: str, at_ms: int) -> dict[str, float]:
    df = Engine().instant(store, q, at_ms).to_frame()
    keys = [c for c in df.columns if c not in ("timestamp", "value", "histogram", "job", "instance", "__name__")]
    return {",".join(f"{c}={r[c]}" for c in keys): float(r["value"]) for _, r in df.iterrows()}


def names(store: MemoryStorage) -> set[str]:
    return set(store.querier(0, 1 << 62).label_values("__name__"))


QUERIES = [
    "histogram_count(req)", "histogram_sum(req)", "histogram_quantile(0.5, req)",
    "histogram_quantile(0.95, req)", "histogram_fraction(0, 0.5, req)",
    "histogram_count(rate(req[1m]))", "histogram_sum(increase(req[1m]))",
    "histogram_quantile(0.9, sum(rate(req[1m])))",
    # controls: a gauge histogram and a summary stay classic
    "histogram_quantile(0.5, g_bucket)", "g_gcount", 's{quantile="0.5"}', "rate(s_count[1m])",
    "rate(c_total[1m])",
]


@pytest.mark.parametrize("q", QUERIES, ids=QUERIES)
def test_import_matches_scrape(tmp_path: Path, target: _Target, q: str) -> None:
    imp = imported(tmp_path, convert_classic_histograms_to_nhcb=True)
    scr = scraped(target, {"convert_classic_histograms_to_nhcb": True})
    at = T0 + (POINTS - 1) * STEP
    got, want = answers(imp, q, at), answers(scr, q, at)
    assert want, f"the scrape gave nothing for {q}"
    assert got == pytest.approx(want, nan_ok=True)


@pytest.mark.parametrize(("options", "job", "classic"), [
    ({"convert_classic_histograms_to_nhcb": True}, {"convert_classic_histograms_to_nhcb": True}, False),
    ({"convert_classic_histograms_to_nhcb": True, "keep_classic_histograms": True},
     {"convert_classic_histograms_to_nhcb": True, "always_scrape_classic_histograms": True}, True),
], ids=["converted", "converted+classic"])
def test_series_kept(tmp_path: Path, target: _Target, options: dict[str, Any], job: dict[str, Any],
                     classic: bool) -> None:
    imp = imported(tmp_path, **options)
    scr = scraped(target, job)
    expected = {"req", "g_bucket", "g_gcount", "g_gsum", "s", "s_sum", "s_count", "c_total", "c_created"}
    if classic:
        expected |= {"req_bucket", "req_count", "req_sum", "req_created"}
    assert names(imp) == expected
    assert names(scr) - {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                         "scrape_samples_post_metric_relabeling", "scrape_series_added"} == expected
    ss = imp.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", "req")])
    hs = []
    for i in range(len(ss)):
        col = ss.series_histograms(i)
        hs += [] if col is None else [h for h in col.tolist() if h is not None]
    assert len(hs) == 2 * POINTS
    assert {h.schema for h in hs} == {CUSTOM_BUCKETS_SCHEMA}


def test_skip_created_series(tmp_path: Path) -> None:
    plain = names(imported(tmp_path))
    assert {"c_created", "req_created"} <= plain  # promtool 2.42: _created are series
    skipped = names(imported(tmp_path, skip_created_series=True))
    assert skipped == plain - {"c_created", "req_created"}


@pytest.mark.parametrize("chunk", [40, 97, 1 << 20], ids=["tiny", "odd", "whole"])
def test_chunk_cuts_do_not_split_a_histogram(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "in.om"
    path.write_text(import_text())
    store = MemoryStorage()
    import_file(path, store, progress=False, chunk_bytes=chunk, convert_classic_histograms_to_nhcb=True)
    at = T0 + (POINTS - 1) * STEP
    assert answers(store, "histogram_count(req)", at) == {"path=/a": 13.0, "path=/b": 7.0}


@pytest.mark.parametrize(("text", "hist_counts", "floats"), [
    ('# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_count 3\nh_sum 1\n', [], 4),
    ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="2"} 2\nh_count 2\nh_sum 1\n', [2], 0),
    ('h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\n', [], 3),
], ids=["decreasing-stays-classic", "no-inf-bucket-uses-count", "untyped-not-converted"])
def test_converter_edge_cases(text: str, hist_counts: list[int], floats: int) -> None:
    p = NhcbTextParser()
    pg = p.parse(text.encode())
    assert sorted(h.count for h in pg.histograms.values()) == hist_counts
    assert len(pg) - len(pg.histograms) == floats
    assert isinstance(p.converter, ClassicConverter)

"""A target's body goes bad between good scrapes: ``up`` 0 with an error that names the line,
nothing of the bad page stored (its series go stale, as in Prometheus), the next good page
scraped as usual. Pages Prometheus ingests although prometheus_client would reject them are
scraped with ``up`` 1 (see tests/exposition/test_prometheus_verdicts.py for the parser side)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promlab.model import Matcher, MatchType, stale_mask
from promlab.storage import MemoryStorage

from .drive import scrape_rounds
from .pagetarget import StaticPage

TEXT = "text/plain; version=0.0.4"
OM = "application/openmetrics-text; version=1.0.0"


def points(store: MemoryStorage, name: str) -> list[tuple[int, float]]:
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", name)])
    out: list[tuple[int, float]] = []
    for i in range(len(ss)):
        _, ts, vs = ss.series(i)
        stale = stale_mask(vs)
        out += [(t, np.nan if s else v) for t, v, s in zip(ts.tolist(), vs.tolist(), stale.tolist(), strict=True)]
    return sorted(out)


GOOD = b'# TYPE good gauge\ngood{a="1"} 1\ngood{a="2"} 2\n'

BAD_BODIES = [
    pytest.param(TEXT, GOOD + b'bad{a="\xff"} 3\n', "line 4: invalid UTF-8", id="bad-utf8"),
    pytest.param(TEXT, GOOD + b"bad 1e400\n", "line 4: value '1e400' out of the float64 range", id="overflow"),
    pytest.param(TEXT, GOOD + b'bad{a="b",a="c"} 3\n', 'label name "a" is not unique: invalid sample', id="duplicate-label"),
    pytest.param(TEXT, GOOD + b'bad{a="unterminated', "line 4: expected a quoted value", id="truncated"),
    pytest.param(TEXT, GOOD + b"\x00bad 3\n", "line 4: invalid metric name", id="nul-byte"),
    pytest.param(TEXT, GOOD + b"bad 1 2 3\n", "line 4: unexpected text after timestamp", id="extra-token"),
    pytest.param(OM, GOOD + b"bad 3\n", "line 4: data does not end with '# EOF'", id="om-no-eof"),
    pytest.param(OM, GOOD + b'bad 3 # {t="x"} 1\n# EOF\n', "line 4: metric name 'bad' does not support exemplars",
                 id="om-exemplar-on-gauge"),
    pytest.param(TEXT, GOOD + b"x" * 200_000 + b" 1 2 3\n", "line 4: ", id="huge-line"),
]


@pytest.mark.parametrize(("ctype", "data", "error"), BAD_BODIES)
def test_bad_page_fails_the_scrape_and_stores_nothing(static_page: tuple[str, StaticPage], ctype: str, data: bytes,
                                                      error: str) -> None:
    address, body = static_page
    store = MemoryStorage()

    def serve(i: int) -> None:
        body.content_type, body.data = (ctype, data) if i == 1 else (TEXT, GOOD)

    config = {"scrape_configs": [{"job_name": "j", "static_configs": [{"targets": [address]}]}]}
    results = scrape_rounds(store, config, [1000, 2000, 3000], before=serve)
    assert [r.ok for r in results] == [True, False, True]
    assert error in results[1].error, results[1].error
    assert len(results[1].error) < 400
    assert points(store, "up") == [(1000, 1.0), (2000, 0.0), (3000, 1.0)]
    # Nothing of the bad page is stored; a page lacking only its '# EOF' appended 'bad' before
    # it failed, so the next scrape marks it stale (as Prometheus does).
    assert all(math.isnan(v) for _, v in points(store, "bad"))
    assert len(points(store, "bad")) == (1 if error.endswith("'# EOF'") else 0)
    # The series before the bad line count as present (Prometheus appends them before its
    # parser stops, then rolls back): no staleness markers, nothing stored at 2000.
    good = points(store, "good")
    assert [t for t, _ in good] == [1000, 1000, 3000, 3000]


LENIENT_PAGES = [
    pytest.param(TEXT, b"# TYPE a gauge\n# TYPE a counter\na 1\n", 1, id="duplicate-type"),
    pytest.param(TEXT, b"a 1\n# TYPE a gauge\n", 1, id="type-after-samples"),
    pytest.param(OM, b"# TYPE c counter\nc_total -1\n# EOF\n", 1, id="om-negative-counter"),
    pytest.param(OM, b'# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 2\n# EOF\n', 2,
                 id="om-decreasing-buckets"),
    pytest.param(OM, b"a 1\nb 1\na{x=\"y\"} 2\n# EOF\n", 3, id="om-interleaved-families"),
]


@pytest.mark.parametrize(("ctype", "data", "n"), LENIENT_PAGES)
def test_pages_prometheus_ingests_are_scraped(static_page: tuple[str, StaticPage], ctype: str, data: bytes,
                                              n: int) -> None:
    address, body = static_page
    body.content_type, body.data = ctype, data
    store = MemoryStorage()
    config = {"scrape_configs": [{"job_name": "j", "static_configs": [{"targets": [address]}]}]}
    (result,) = scrape_rounds(store, config, [1000])
    assert result.ok, result.error
    assert result.scraped == n
    assert points(store, "up") == [(1000, 1.0)]

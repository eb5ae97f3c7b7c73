"""Pages longer than one bulk slice (issue 15 item 7: the parser's C-level passes run in slices of
``BULK_LINES`` lines so a big page does not hold the GIL for 100+ ms): the result equals the
line-by-line meaning of the page, with slice edges anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.errors import ExpositionError
from promlab.exposition.cache import BULK_LINES, drop, parse_floats, split_lines
from promlab.exposition.parser import Parser

N = 2 * BULK_LINES + 7  # three slices, the last one short


def _page(n: int, *, value: str = "{i}", ts: bool = False, tail: bytes = b"\n") -> bytes:
    lines = [f'big_metric{{pod="p{i:06d}",pad="{"x" * (i % 300)}"}} {value.format(i=i)}'
             + (f" {1_700_000_000_000 + i}" if ts else "") for i in range(n)]
    return ("# TYPE big_metric gauge\n" + "\n".join(lines)).encode() + tail


@pytest.mark.parametrize("data", [
    b"", b"\n", b"a", b"a\n", b"a\nb", b"\n\n",
    b"x" * 3_000_000,
    (b"y" * 1000 + b"\n") * 3000,
    (b"z" * 1000 + b"\n") * 3000 + b"tail",
    b"\n" * 2_500_000,
], ids=["empty", "newline", "one", "one-nl", "two", "blank-lines", "no-newline-3MB", "3MB-lines",
        "3MB-lines-tail", "only-newlines"])
def test_split_lines_is_bytes_split(data: bytes) -> None:
    assert split_lines(data) == data.split(b"\n")


@pytest.mark.parametrize("tokens", [
    [str(i).encode() for i in range(N)],
    [f"{i}.5".encode() for i in range(N)],
    [str(i).encode() for i in range(BULK_LINES)] + [b"1e3", b"NaN", b"+Inf"] + [b"7"] * BULK_LINES,
], ids=["ints", "floats", "mixed-slices"])
def test_parse_floats_in_slices(tokens: list[bytes]) -> None:
    assert np.array_equal(parse_floats(tokens), np.array([float(t) for t in tokens]), equal_nan=True)


def test_drop_empties_lists() -> None:
    a, b = list(range(3 * BULK_LINES + 1)), [1]
    drop(a, b)
    assert a == [] and b == []


@pytest.mark.parametrize(("value", "ts"), [("{i}", False), ("{i}.25", False), ("{i}", True)],
                         ids=["ints", "floats", "timestamps"])
def test_big_page_first_and_cached(value: str, ts: bool) -> None:
    p = Parser()
    for variant in range(3):  # new series, then the cached passes twice
        page = p.parse(_page(N, value=value.replace("{i}", "{i}" if variant != 1 else "1{i}"), ts=ts))
        assert len(page) == N
        expect = np.array([float(value.format(i=i)) if variant != 1 else float("1" + value.format(i=i))
                           for i in range(N)])
        assert np.array_equal(page.values, expect)
        names = [page.series[r].get("pod") for r in page.refs[[0, BULK_LINES, N - 1]].tolist()]
        assert names == ["p000000", f"p{BULK_LINES:06d}", f"p{N - 1:06d}"]
        if ts:
            assert page.timestamps_ms[-1] == 1_700_000_000_000 + N - 1


@pytest.mark.parametrize("where", [0, BULK_LINES - 1, BULK_LINES, N - 1], ids=lambda w: f"line{w}")
def test_bad_value_in_any_slice_names_its_line(where: int) -> None:
    p = Parser()
    p.parse(_page(N))
    lines = _page(N).split(b"\n")
    lines[where + 1] = lines[where + 1].rpartition(b" ")[0] + b" 12x"
    with pytest.raises(ExpositionError) as err:
        p.parse(b"\n".join(lines))
    assert err.value.lineno == where + 2

"""The bulk column parser of import chunks: same result as ``Parser.parse`` or a clean decline."""

from __future__ import annotations

import random

import numpy as np
import pytest

from promlab.errors import ExpositionError
from promlab.exposition import Parser
from promlab.exposition.bulk import parse_columns


def _runs(lines_per_series: int, series: int, value, ts) -> bytes:  # type: ignore[no-untyped-def]
    out = []
    for s in range(series):
        for k in range(lines_per_series):
            out.append(f'm_total{{host="h-{s:03d}",job="api"}} {value(s, k)} {ts(k)}\n')
    return "".join(out).encode()


def _same(data: bytes, fmt: str = "openmetrics") -> bool:
    """parse_columns agrees with Parser.parse (or declines); True when it did not decline."""
    ref = Parser().parse(data, fmt, require_eof=False)
    p = Parser()
    got = parse_columns(p, data, fmt == "openmetrics")
    if got is None:
        return False
    refs, vals, ts = got
    assert [p.series[r] for r in refs.tolist()] == [ref.series[r] for r in ref.refs.tolist()]
    assert vals.view(np.int64).tolist() == ref.values.view(np.int64).tolist()  # bit-exact
    assert ts.tolist() == ref.timestamps_ms.tolist()
    return True


CASES = [
    pytest.param(_runs(50, 4, lambda s, k: s * 1000 + k, lambda k: f"{1700000000 + 15 * k}.234"),
                 "openmetrics", True, id="counters-ms-seconds"),
    pytest.param(_runs(50, 4, lambda s, k: f"{(s - 2) * 13.37 + k / 8:.3f}", lambda k: 1700000000 + k),
                 "openmetrics", True, id="negative-decimals-int-seconds"),
    pytest.param(_runs(40, 3, lambda s, k: ["NaN", "+Inf", "-Inf", "1e-05", "-0", "0.1", ".5", "5.",
                                            "12345678901234567", "1.2345678901234567",
                                            "0." + "0" * 30 + "1", "-12.5"][k % 12],
                       lambda k: f"{1700000000 + k}.5"),
                 "openmetrics", True, id="special-and-long-values"),
    pytest.param(_runs(40, 3, lambda s, k: k, lambda k: f"{1700000000 + k}.123456"),
                 "openmetrics", True, id="six-decimal-timestamps"),
    pytest.param(_runs(40, 3, lambda s, k: k, lambda k: 1700000000000 + k), "text", True,
                 id="text-ms"),
    pytest.param(b"# TYPE m counter\n# HELP m Things.\n" + _runs(40, 3, lambda s, k: k, lambda k: k + 1),
                 "openmetrics", True, id="leading-metadata"),
    pytest.param(_runs(40, 3, lambda s, k: k, lambda k: k + 1) + b"# EOF\n", "openmetrics", True,
                 id="trailing-eof"),
    pytest.param(b"".join(f"up {k} {k}\n".encode() for k in range(100)), "openmetrics", True,
                 id="short-name-no-labels"),
    pytest.param(b"".join(f'a{{x="p q"}} {k}\n'.encode() for k in range(100)), "text", False,
                 id="space-in-label-no-ts"),
    pytest.param(b"".join(f"a {k}\n".encode() for k in range(100)), "text", False, id="no-timestamps"),
    pytest.param(b"".join(f'h_bucket{{le="1"}} {k} {k} # {{t="x"}} 1 2\n'.encode() for k in range(100)),
                 "openmetrics", False, id="exemplars"),
    pytest.param(b"".join(f"x_total{{a=\"{k % 200}\"}} 1 1\n".encode() for k in range(200)),
                 "openmetrics", True, id="all-distinct-series"),
]


@pytest.mark.parametrize(("data", "fmt", "fast"), CASES)
def test_same_result_as_the_parser(data: bytes, fmt: str, fast: bool) -> None:
    assert _same(data, fmt) is fast


@pytest.mark.parametrize("body", [
    pytest.param(b"a_total 1 1\n" * 80 + b"a_total 1x 2\n", id="bad-value"),
    pytest.param(b"a_total 1 1\n" * 80 + b"a_total 1 2 3\n", id="extra-token"),
    pytest.param(b"a_total 1 1\n" * 80 + b"\n", id="empty-line"),
    pytest.param(b"a_total 1 1\n" * 80 + b"# TYPE a counter\n", id="type-after-samples"),
    pytest.param(b"a_total 1 1\n" * 80 + b"# EOF\na_total 1 2\n", id="eof-in-the-middle"),
    pytest.param(b'a_total{b="1} 1 1\n' * 80, id="unterminated-label"),
])
def test_malformed_chunks_are_declined(body: bytes) -> None:
    assert parse_columns(Parser(), body, True) is None


@pytest.mark.parametrize("ts", ["-5", "+5"])
def test_signed_text_timestamps_are_declined(ts: str) -> None:
    """Prometheus's text lexer takes unsigned timestamps only; the parser then names the line."""
    body = b"a 1 1\n" * 80 + f"a 1 {ts}\n".encode()
    assert parse_columns(Parser(), body, False) is None
    with pytest.raises(ExpositionError, match="line 81: invalid timestamp"):
        Parser().parse(body, "text")


def test_near_identical_series_are_told_apart() -> None:
    """Series texts equal in length and at the probe positions still get their own refs."""
    rnd = random.Random(3)
    lines = []
    for _ in range(30):
        mid = "".join(rnd.choice("ab") for _ in range(6))
        lines += [f'm{{x="{"q" * 20}{mid}{"q" * 20}"}} {k} {k}\n' for k in range(rnd.randint(1, 20))]
    assert _same("".join(lines).encode())


def test_random_runs_match_parser() -> None:
    rnd = random.Random(7)
    lines = []
    for _ in range(300):
        name = rnd.choice(["a", "bb_total", "c_bucket", "up"])
        labels = ",".join(f'{k}="{rnd.randint(0, 3)}"' for k in rnd.sample("xyz", rnd.randint(0, 3)))
        series = f"{name}{{{labels}}}" if labels or rnd.random() < 0.3 else name
        for _ in range(rnd.randint(1, 30)):
            v = rnd.choice([str(rnd.randint(0, 10**9)), f"{rnd.uniform(-1e6, 1e6):.{rnd.randint(0, 6)}f}",
                            repr(rnd.random())])
            lines.append(f"{series} {v} {rnd.randint(0, 2 * 10**9)}.{rnd.randint(0, 999):03d}\n")
    assert _same("".join(lines).encode())


def test_interleaved_series_grouped_by_hash() -> None:
    """Histogram-style input (every line another series, repeating): heads grouped by a hash of
    probes, texts differing between the probes still told apart."""
    lines = []
    for t in range(60):
        for s in range(16):
            # Equal length; the two labels differ only around a quarter of the text.
            lines.append(f'h_bucket{{a="{s % 4}{"x" * 30}",b="{"y" * 30}{s // 4}",le="1"}} {t + s} {t}\n')
    assert _same("".join(lines).encode())

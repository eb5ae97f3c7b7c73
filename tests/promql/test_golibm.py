"""Go's ``math`` as PromQL uses it, bit for bit against a real Prometheus 2.42: the amd64
``Exp``/``Log`` (promlab.promql.eval.golibm; on this machine's CPU, its FMA path or not, as Go
chooses) and what is built on them, and the trigonometry (promlab.promql.eval.gotrig, Payne-Hanek
reduction of huge arguments included); plus the emulated fused multiply-add against exact
arithmetic and the bits of 4/Pi against their well-known first and last words."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from benchmarks import realprom
from promlab.promql.engine import Engine
from promlab.promql.eval.golibm import fma, go_exp, go_log
from promlab.promql.eval.gotrig import _M_PI4
from promlab.storage import MemoryStorage


def test_fma_rounds_once() -> None:
    r = random.Random(11)
    a = [r.uniform(-10, 10) * 2.0 ** r.randint(-30, 30) for _ in range(3000)]
    b = [r.uniform(-10, 10) * 2.0 ** r.randint(-30, 30) for _ in range(3000)]
    # sums that cancel (c near -a*b) are where one rounding and two differ
    c = [r.choice([r.uniform(-10, 10) * 2.0 ** r.randint(-60, 60), -x * y, 1.0])
         for x, y in zip(a, b, strict=True)]
    got = fma(np.array(a), np.array(b), np.array(c))
    want = [float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c, strict=True)]
    assert got.tolist() == want


@pytest.mark.parametrize("use_fma", [True, False])
def test_exp_ranges(use_fma: bool) -> None:
    x = np.array([709.43, 709.44, 709.78, 709.79, -708.8, -740.0, -745.2, 0.0, -0.0,
                  math.inf, -math.inf, math.nan])
    got = go_exp(x, use_fma=use_fma)
    assert got[0] == pytest.approx(1.2633808701860083e308, rel=1e-15)
    assert got[1:4].tolist() == [math.inf] * 3  # k = 1024 already: no 2**1024 scale
    assert got[4] == pytest.approx(1.4861793648877184e-308, rel=1e-15)
    assert got[5] == 4.2e-322  # subnormal results stay (scaled in two steps)
    assert got[6:11].tolist() == [0.0, 1.0, 1.0, math.inf, 0.0]
    assert math.isnan(got[11])


def test_log_specials() -> None:
    got = go_log(np.array([0.0, -0.0, -1.0, -math.inf, math.inf, math.nan, 1.0, 5e-324]))
    assert got[:2].tolist() == [-math.inf, -math.inf]
    assert all(math.isnan(v) for v in got[2:4])
    assert got[4] == math.inf and math.isnan(got[5]) and got[6] == 0.0
    assert got[7] == -709.0895657128241  # a subnormal's exponent read as -1022


def test_four_over_pi_bits() -> None:
    words = [(_M_PI4 >> (64 * (19 - i))) & ((1 << 64) - 1) for i in range(20)]
    assert words[:3] == [1, 0x45F306DC9C882A53, 0xF84EAFA3EA69BB81]
    assert words[-1] == 0xAC06608DF8F6D757


def _values() -> dict[str, list[float]]:
    r = random.Random(5)
    wide = [r.uniform(-746, 710) for _ in range(25)] + [r.uniform(-5, 5) for _ in range(25)]
    edge = [709.43, 709.44, 709.7, -708.75, -744.9, 1.5, 42.0, -1e-7, 0.5, 21.5]
    positive = [10 ** r.uniform(-320, 308) for _ in range(25)] + \
        [r.uniform(0, 3) for _ in range(25)] + [0.7071067811865476, 0.7071067811865475, 3.0, 0.1]
    small = [r.uniform(-0.7, 0.7) for _ in range(30)] + [0.6249, 0.625, -0.0, 1e-9]
    # huge arguments take Payne-Hanek reduction (from 2**29), time() among them
    angles = [10 ** r.uniform(-8, 300) for _ in range(30)] + \
        [r.uniform(-10, 10) for _ in range(20)] + [1.7e9 + r.uniform(0, 1e6) for _ in range(10)]
    unit = [r.uniform(-1, 1) for _ in range(40)] + [0.7, -0.7, 1.0, 0.4999999]
    return {"exp": wide + edge, "sinh": wide + edge, "cosh": wide + edge, "tanh": small + wide,
            "ln": positive, "log2": positive, "log10": positive,
            "pow": [r.uniform(0, 100) for _ in range(40)],
            "sin": angles, "cos": angles, "tan": angles, "atan": angles + unit,
            "atan2": angles + unit, "asin": unit, "acos": unit, "atanh": unit + small,
            "asinh": positive + [-v for v in angles], "acosh": [*positive, 1.5, 2.0, 2.0**28]}


def _query(fn: str, values: list[float]) -> str:
    parts = [f'label_replace(vector({v!r}), "i", "{i}", "", "")' for i, v in enumerate(values)]
    arg = " or ".join(parts)
    if fn == "pow":
        return f"({arg}) ^ 0.37"
    if fn == "atan2":
        return f"({arg}) atan2 -1.7"
    return f"{fn}({arg})"


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Any]:
    realprom.require_binary("prometheus")
    with realprom.prometheus() as prom:
        yield prom


def _by_index(result: list[dict[str, Any]]) -> dict[str, str]:
    return {item["metric"]["i"]: item["value"][1] for item in result}


@pytest.mark.realprom
@pytest.mark.parametrize("fn", list(_values()))
def test_bits_match_prometheus(prometheus: Any, fn: str) -> None:
    values = _values()[fn]
    expr = _query(fn, values)
    want = _by_index(prometheus.query(expr, time=1000)["result"])
    got = _by_index(Engine().instant(MemoryStorage(), expr, 1_000_000).to_json()["result"])
    assert len(want) == len(values)
    diffs = {values[int(i)]: (want[i], got.get(i)) for i in want if want[i] != got.get(i)}
    assert not diffs, diffs


def test_exp_in_blocks_is_exp_in_one_go() -> None:
    """Arrays past ``EXP_BLOCK`` are computed block by block: the same bits, shape kept."""
    from promlab.promql.eval import golibm

    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, golibm.EXP_BLOCK + 777)) * 300
    x[0, ::97], x[1, ::101], x[2, ::103] = np.nan, np.inf, -np.inf
    got = go_exp(x)
    assert got.shape == x.shape
    whole = golibm._go_exp(x.reshape(-1), golibm.USE_FMA).reshape(x.shape)
    assert np.array_equal(got.view(np.int64), whole.view(np.int64))


def test_huge_arguments_reduced_once_per_value() -> None:
    """sin/cos/tan of arguments past 2**29 (time(), say) are reduced once per distinct value:
    the same bits as one by one, any shape, NaN and small values mixed in."""
    from promlab.promql.eval import gotrig

    x = np.tile(1.7e9 + np.arange(40) * 60.0, (3, 1))
    x[0, ::7], x[1, ::5], x[2, ::3] = np.nan, 3.0, -1e300
    for fn in (gotrig.go_sin, gotrig.go_cos, gotrig.go_tan):
        one_by_one = np.array([[fn(np.array([v]))[0] for v in row] for row in x])
        assert np.array_equal(fn(x).view(np.int64), one_by_one.view(np.int64))
    assert float(gotrig.go_sin(np.array(1e22))) == -0.8522008497671889

"""Go-compatible float formatting (promlab.model.value): one implementation for every caller."""

from __future__ import annotations

import pytest

from promlab.model.value import STALE_NAN, format_float, format_float_g, format_go_float

INF = float("inf")


@pytest.mark.parametrize(("v", "f", "g"), [
    pytest.param(0.0, "0", "0", id="zero"),
    pytest.param(-0.0, "-0", "-0", id="negative-zero"),
    pytest.param(1.5, "1.5", "1.5", id="simple"),
    pytest.param(100.0, "100", "100", id="integer"),
    pytest.param(-2.5, "-2.5", "-2.5", id="negative"),
    pytest.param(123456.0, "123456", "123456", id="below-g-threshold"),
    pytest.param(1e6, "1000000", "1e+06", id="g-threshold"),
    pytest.param(1234567.0, "1234567", "1.234567e+06", id="g-exponent-digits"),
    pytest.param(1e21, "1000000000000000000000", "1e+21", id="1e21"),
    pytest.param(1e100, "1" + "0" * 100, "1e+100", id="three-digit-exponent"),
    pytest.param(0.0001, "0.0001", "0.0001", id="small-fixed"),
    pytest.param(0.00001, "0.00001", "1e-05", id="small-exponent"),
    pytest.param(1.5e-7, "0.00000015", "1.5e-07", id="tiny"),
    pytest.param(0.1 + 0.2, "0.30000000000000004", "0.30000000000000004", id="round-trip-digits"),
    pytest.param(2.0**53 + 2, "9007199254740994", "9.007199254740994e+15", id="2-53"),
    pytest.param(1.7976931348623157e308, "17976931348623157" + "0" * 292, "1.7976931348623157e+308",
                 id="max-float"),
    pytest.param(5e-324, "0." + "0" * 323 + "5", "5e-324", id="min-subnormal"),
    pytest.param(float("nan"), "NaN", "NaN", id="nan"),
    pytest.param(STALE_NAN, "NaN", "NaN", id="stale-nan"),
    pytest.param(INF, "+Inf", "+Inf", id="inf"),
    pytest.param(-INF, "-Inf", "-Inf", id="minus-inf"),
])
def test_go_formats(v: float, f: str, g: str) -> None:
    assert format_float(v) == f
    assert format_float_g(v) == g
    if v == v:
        assert float(f) == v and float(g) == v


def test_every_caller_uses_the_one_formatter() -> None:
    from promlab.promql.eval.functions import _common
    from promlab.promql.parser import printer
    from promlab.promql.promqltest.almost import format_value
    from promlab.promql.results import format_sample_value

    assert printer.format_float is format_float
    assert _common.format_float_f is format_float and _common.format_go_g is format_float_g
    for v in (1e6, 1.5e-7, -0.0, 0.1 + 0.2, 1e21):
        assert format_value(v) == format_float_g(v)
    # the API's sample values: 'f' layout from 1e-6 up to 1e21, 'e' outside (MarshalFloat)
    for v in (1e6, 1e-6, -0.0, 0.1 + 0.2, 9.9e20):
        assert format_sample_value(v) == format_float(v)
    for v, text in ((1.5e-7, "1.5e-07"), (1e21, "1e+21"), (-2.5e-300, "-2.5e-300")):
        assert format_sample_value(v) == format_go_float(v, "e") == text
    assert format_value(STALE_NAN) == "stale"

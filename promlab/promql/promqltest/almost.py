"""Prometheus's ``util/almost.Equal``: float comparison with a relative tolerance."""

from __future__ import annotations

import math
import struct

import numpy as np
import numpy.typing as npt

from promlab.model import stale_mask
from promlab.model.value import STALE_NAN_BITS, format_float_g

__all__ = ["EPSILON", "almost_equal", "almost_equal_array", "format_value", "is_stale"]

EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308
_MAX_FLOAT = 1.7976931348623157e308


def is_stale(x: float) -> bool:
    return struct.pack("<d", x) == struct.pack("<Q", STALE_NAN_BITS)


def almost_equal(a: float, b: float, epsilon: float = EPSILON) -> bool:
    """Prometheus ``util/almost.Equal``.

    Examples
    --------
    >>> almost_equal(1.0, 1.0000001), almost_equal(1.0, 1.00001), almost_equal(0.0, 1e-300)
    (True, False, False)
    """
    if math.isnan(a) or math.isnan(b):
        sa, sb = is_stale(a), is_stale(b)
        if sa or sb:
            return sa and sb
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs_sum, _MAX_FLOAT) < epsilon


def almost_equal_array(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64],
                       epsilon: float = EPSILON) -> npt.NDArray[np.bool_]:
    """Element-wise :func:`almost_equal` for two float64 arrays of one shape."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        sa, sb = stale_mask(a), stale_mask(b)
        na, nb = np.isnan(a), np.isnan(b)
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        tiny = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
        rel = diff / np.minimum(abs_sum, _MAX_FLOAT) < epsilon
        close = np.where(tiny, diff < epsilon * _MIN_NORMAL, rel)
        ok = (a == b) | close
    ok = np.where(na | nb, na & nb, ok)
    return np.where(sa | sb, sa & sb, ok)


def format_value(v: float) -> str:
    """A float the way Go's ``%v`` prints it (``NaN``, ``+Inf``, ``1e+06``, ``0.5``)."""
    if math.isnan(v):
        return "stale" if is_stale(v) else "NaN"
    return format_float_g(v)

"""Sample values: the staleness marker and helpers to tell it from an ordinary NaN.

Prometheus marks the end of a series with a special NaN, bit pattern ``0x7ff0000000000002``.
It is a NaN to arithmetic but is never a query result: selectors treat a series whose latest
sample is stale as absent. An ordinary NaN is a real value.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

__all__ = ["NORMAL_NAN_BITS", "STALE_NAN", "STALE_NAN_BITS", "is_stale", "stale_mask"]

STALE_NAN_BITS = 0x7FF0000000000002
NORMAL_NAN_BITS = 0x7FF8000000000001
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale(value: float) -> bool:
    """Whether ``value`` is the staleness marker (not just any NaN)."""
    return struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Element-wise :func:`is_stale` for a float64 array (no copy of the data)."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    mask: npt.NDArray[np.bool_] = arr.view(np.int64) == np.int64(STALE_NAN_BITS)
    return mask

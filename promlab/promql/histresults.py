"""Native histogram samples in results: the API's JSON form and a tidy bucket frame.

Prometheus's API writes a histogram sample as ``{"count": "<n>", "sum": "<s>", "buckets":
[[<boundary_rule>, "<lower>", "<upper>", "<count>"], ...]}``: numbers as strings formatted like
sample values, only the non-empty buckets, negative buckets first (lowest values first), then
the zero bucket, then the positive buckets, and no ``buckets`` key when every bucket is empty.
The boundary rule says which ends are inclusive (:data:`BOUNDARY_RULES`): positive buckets are
open left (0), negative buckets open right (1), the zero bucket closed (3).

Examples
--------
>>> from promlab.model.histogram import from_bucket_map
>>> h = from_bucket_map(0, {1: 2.0, 2: 0.0, 3: 1.0}, {1: 1.0}, count=5.0, sum=7.5,
...                     zero_count=1.0, zero_threshold=0.001)
>>> histogram_json(h)
{'count': '5', 'sum': '7.5', 'buckets': [[1, '-2', '-1', '1'], [3, '-0.001', '0.001', '1'], [0, '1', '2', '2'], [0, '4', '8', '1']]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from promlab.model.histogram import FloatHistogram, bucket_lower, bucket_upper
from promlab.model.value import format_float

__all__ = ["BOUNDARY_RULES", "BUCKET_COLUMNS", "buckets_frame", "histogram_buckets",
           "histogram_json"]

#: The Prometheus API's bucket boundary rules: which ends of a bucket are inclusive.
BOUNDARY_RULES = {0: "open left", 1: "open right", 2: "open both", 3: "closed both"}
#: The sample columns of :func:`buckets_frame` (after the label columns).
BUCKET_COLUMNS = ("timestamp", "boundary", "lower", "upper", "count")


def histogram_buckets(h: FloatHistogram) -> list[tuple[int, float, float, float]]:
    """``(boundary_rule, lower, upper, count)`` of every non-empty bucket of ``h``, in the
    API's order (negative from the lowest value, zero bucket, positive ascending).

    Examples
    --------
    >>> from promlab.model.histogram import from_bucket_map
    >>> histogram_buckets(from_bucket_map(1, {0: 1.0, 1: 3.0}, count=4.0, sum=5.0))
    [(0, 0.7071067811865475, 1.0, 1.0), (0, 1.0, 1.414213562373095, 3.0)]
    """
    out: list[tuple[int, float, float, float]] = []
    schema, cv = h.schema, h.custom_values
    for i, c in reversed(list(h.buckets(False))):
        if c:
            out.append((1, -bucket_upper(schema, i), -bucket_lower(schema, i), c))
    if h.zero_count:
        out.append((3, -h.zero_threshold, h.zero_threshold, h.zero_count))
    for i, c in h.buckets(True):
        if c:
            out.append((0, bucket_lower(schema, i, cv), bucket_upper(schema, i, cv), c))
    return out


def histogram_json(h: FloatHistogram) -> dict[str, Any]:
    """The API's JSON object of histogram ``h`` (see the module docstring)."""
    out: dict[str, Any] = {"count": format_float(h.count), "sum": format_float(h.sum)}
    buckets = [[rule, format_float(lo), format_float(up), format_float(c)]
               for rule, lo, up, c in histogram_buckets(h)]
    if buckets:
        out["buckets"] = buckets
    return out


def buckets_frame(labels: pd.DataFrame, timestamps: pd.Series,
                  hists: Sequence[FloatHistogram | None]) -> pd.DataFrame:
    """One row per non-empty bucket of every histogram in ``hists`` (``None`` rows skipped).

    ``labels`` holds the label columns of the same rows; the result has those columns, then
    :data:`BUCKET_COLUMNS` (``boundary`` an int rule of :data:`BOUNDARY_RULES`, bounds and count
    floats), in the order of the rows and of :func:`histogram_buckets`.
    """
    rows: list[int] = []
    parts: list[tuple[int, float, float, float]] = []
    for k, h in enumerate(hists):
        if h is None:
            continue
        bs = histogram_buckets(h)
        rows.extend([k] * len(bs))
        parts.extend(bs)
    take = np.asarray(rows, np.int64)
    out = labels.iloc[take].reset_index(drop=True)
    out["timestamp"] = timestamps.iloc[take].reset_index(drop=True)
    arr = np.asarray(parts, np.float64).reshape(-1, 4)
    out["boundary"] = arr[:, 0].astype(np.int8)
    out["lower"], out["upper"], out["count"] = arr[:, 1], arr[:, 2], arr[:, 3]
    return out

"""Query results as tidy pandas DataFrames, and the ``df.prom`` accessor.

A result frame has one column per label name (``__name__`` first when present), then
``timestamp`` (tz-aware UTC, millisecond resolution) and ``value``; one row per sample.
``df.attrs`` carries ``query``, ``result_type`` (as the Prometheus API names it), ``start``,
``end`` and ``step`` of the evaluation, and the ``warnings``/``infos`` annotations.

Examples
--------
>>> import promlab.promql as pq
>>> from promlab.storage import MemoryStorage
>>> from promlab.model import Labels
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0, 60_000], [1.0, 0.0])
>>> from promlab.promql.parser.ast import VectorSelector
>>> from promlab.model import Matcher, MatchType
>>> up = VectorSelector(name="up", matchers=(Matcher(MatchType.EQUAL, "__name__", "up"),))
>>> df = pq.query_range(up, 0, 60, "60s", data=st)
>>> list(df.columns)
['__name__', 'job', 'timestamp', 'value']
>>> df.prom.to_prometheus_json()["result"][0]["values"]
[[0, '1'], [60, '0']]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promlab.model import METRIC_NAME, Labels
from promlab.promql.values import Matrix, Scalar, String, Vector

if TYPE_CHECKING:
    from promlab.promql.engine import Result

__all__ = ["PromAccessor", "format_sample_value", "format_timestamp", "to_frame"]

_RESERVED = ("timestamp", "value")


def _ts_array(ms: np.ndarray) -> pd.arrays.DatetimeArray:
    """Int milliseconds as a tz-aware UTC ``datetime64[ms]`` array (no per-element work)."""
    arr = np.asarray(ms, np.int64).astype("datetime64[ms]")
    return pd.DatetimeIndex(arr).tz_localize("UTC").array


def _epoch_ms(ts: pd.Series) -> np.ndarray:
    if not len(ts):
        return np.zeros(0, np.int64)
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts
    out: np.ndarray = naive.to_numpy().astype("datetime64[ms]").view(np.int64)
    return out


def _label_columns(labels: list[Labels]) -> list[str]:
    names: set[str] = set()
    for ls in labels:
        names.update(k for k, _ in ls.pairs)
    ordered = sorted(n for n in names if n != METRIC_NAME)
    if METRIC_NAME in names:
        ordered.insert(0, METRIC_NAME)
    return ordered


def _string_column(per_series: list[str | None], series_idx: np.ndarray) -> Any:
    """A string column gathered from per-series values without per-row Python objects."""
    codes, uniques = pd.factorize(pd.Series(per_series, dtype=object), use_na_sentinel=True)
    row_codes = codes[series_idx].astype(np.int32) if len(series_idx) else \
        np.zeros(0, np.int32)
    try:
        import pyarrow as pa

        indices = pa.array(row_codes, mask=row_codes < 0)
        dictionary = pa.array([str(u) for u in uniques], pa.large_string())
        decoded = pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode()
        return pd.Series(decoded, dtype=pd.StringDtype("pyarrow", na_value=np.nan)).array
    except (ImportError, TypeError, ValueError):  # pragma: no cover - old pandas/pyarrow
        table = np.array([*uniques, None], dtype=object)
        return table[np.where(row_codes < 0, len(uniques), row_codes)]


def _frame(labels: list[Labels], series_idx: np.ndarray, ts_ms: np.ndarray,
           values: np.ndarray | list[Any]) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for name in _label_columns(labels):
        if name in _RESERVED:
            continue
        cols[name] = _string_column([ls.get(name) for ls in labels], series_idx)
    cols["timestamp"] = _ts_array(ts_ms)
    cols["value"] = np.asarray(values, np.float64) if isinstance(values, np.ndarray) else \
        np.asarray(values, dtype=object)
    return pd.DataFrame(cols, index=pd.RangeIndex(len(ts_ms)))


def to_frame(result: Result) -> pd.DataFrame:
    """Convert an engine :class:`~promlab.promql.engine.Result` to a tidy DataFrame."""
    value = result.value
    steps = np.asarray(result.steps_ms, np.int64)
    if isinstance(value, Scalar):
        df = _frame([], np.zeros(1, np.int64), steps[:1], value.values[:1].astype(np.float64))
    elif isinstance(value, String):
        df = _frame([], np.zeros(1, np.int64), steps[:1], [value.value])
    elif isinstance(value, Vector):
        rows, cols = np.nonzero(value.present)
        df = _frame(value.labels, rows, steps[cols], value.values[rows, cols])
    elif isinstance(value, Matrix):
        lo, hi = value.window_bounds()
        idx: list[np.ndarray] = []
        sidx: list[np.ndarray] = []
        for i in range(len(value.labels)):  # one step only: an instant query's range vector
            a, b = int(lo[i, 0]), int(hi[i, 0])
            idx.append(np.arange(a, b, dtype=np.int64))
            sidx.append(np.full(b - a, i, np.int64))
        take = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        series = np.concatenate(sidx) if sidx else np.zeros(0, np.int64)
        df = _frame(value.labels, series, value.ts_ms[take], value.values[take])
    else:  # pragma: no cover
        raise TypeError(f"unexpected result value {type(value).__name__}")
    df.attrs.update({
        "query": result.query,
        "result_type": result.result_type,
        "start": pd.Timestamp(result.start_ms, unit="ms", tz="UTC"),
        "end": pd.Timestamp(result.end_ms, unit="ms", tz="UTC"),
        "step": pd.Timedelta(result.step_ms, unit="ms"),
        "warnings": list(result.annotations.warnings),
        "infos": list(result.annotations.infos),
    })
    return df


def format_sample_value(v: float) -> str:
    """A float as the Prometheus API writes it: ``"1.5"``, ``"NaN"``, ``"+Inf"``, no exponent
    (Go's ``strconv.FormatFloat(v, 'f', -1, 64)``)."""
    r = repr(float(v))
    if r.endswith(".0"):
        return r[:-2]
    if "e" in r or "n" in r:
        if v != v:
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return str(np.format_float_positional(v, trim="-"))
    return r


def format_timestamp(ms: int) -> int | float:
    """Milliseconds as the API's float seconds (an int when whole)."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


@pd.api.extensions.register_dataframe_accessor("prom")
class PromAccessor:
    """``df.prom``: views of a PromQL result frame."""

    def __init__(self, df: pd.DataFrame) -> None:
        if "timestamp" not in df.columns or "value" not in df.columns:
            raise AttributeError("df.prom needs 'timestamp' and 'value' columns")
        self._df = df

    def label_columns(self) -> list[str]:
        return [c for c in self._df.columns if c not in _RESERVED]

    def series(self) -> tuple[np.ndarray, list[Labels]]:
        """Series id of every row (in order of first appearance) and each series' labels."""
        df = self._df
        names = self.label_columns()
        if df.empty:
            return np.zeros(0, np.int64), []
        key = np.zeros(len(df), np.int64)
        for name in names:
            codes, uniques = pd.factorize(df[name], use_na_sentinel=True)
            key = pd.factorize(key * (len(uniques) + 1) + (codes + 1))[0].astype(np.int64)
        codes, _ = pd.factorize(key)
        codes = np.asarray(codes, np.int64)
        _, first = np.unique(codes, return_index=True)
        labels = []
        for row in first.tolist():
            labels.append(Labels({n: v for n in names
                                  if isinstance(v := df[n].iloc[row], str) and v != ""}))
        return codes, labels

    def wide(self) -> pd.DataFrame:
        """DatetimeIndex x one column per series (named by its label set)."""
        df = self._df
        codes, labels = self.series()
        t_codes, t_uniques = pd.factorize(df["timestamp"], sort=True)
        grid = np.full((len(t_uniques), len(labels)), np.nan)
        grid[t_codes, codes] = df["value"].to_numpy(np.float64)
        index = pd.DatetimeIndex(t_uniques, name="timestamp")
        return pd.DataFrame(grid, index=index, columns=[str(ls) for ls in labels])

    def plot(self, **kwargs: Any) -> Any:
        """Line plot of :meth:`wide` (matplotlib); returns the Axes."""
        import matplotlib.pyplot as plt  # noqa: F401  (lazy: only when plotting)

        return self.wide().plot(**kwargs)

    def to_prometheus_json(self) -> dict[str, Any]:
        """The ``data`` object of the Prometheus API response for this result."""
        df = self._df
        rtype = df.attrs.get("result_type", "vector")
        ts_ms = _epoch_ms(df["timestamp"])
        if rtype in ("scalar", "string"):
            if not len(df):
                return {"resultType": rtype, "result": []}
            v = df["value"].iloc[0]
            sval = str(v) if rtype == "string" else format_sample_value(float(v))
            return {"resultType": rtype, "result": [format_timestamp(int(ts_ms[0])), sval]}
        codes, labels = self.series()
        ts_text = _format_column(ts_ms, format_timestamp)
        values = np.ascontiguousarray(df["value"].to_numpy(np.float64))
        # Format each distinct bit pattern once (keeps -0 apart from 0).
        val_text = _format_column(values.view(np.int64), lambda b: format_sample_value(
            float(np.int64(b).view(np.float64))))
        result: list[dict[str, Any]] = []
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
        for s, ls in enumerate(labels):
            rows = order[bounds[s]:bounds[s + 1]]
            points = list(map(list, zip(ts_text[rows].tolist(), val_text[rows].tolist(),
                                        strict=True)))
            if rtype == "vector":
                result.append({"metric": ls.to_dict(), "value": points[0]})
            else:
                result.append({"metric": ls.to_dict(), "values": points})
        return {"resultType": rtype, "result": result}


def _format_column(arr: np.ndarray, fmt: Any) -> np.ndarray:
    """``fmt`` applied to every element, computed once per distinct value (object array)."""
    uniq, inverse = np.unique(arr, return_inverse=True)
    table = np.array([fmt(int(u)) for u in uniq.tolist()] + [None], dtype=object)[:-1]
    return table[inverse.reshape(-1)]

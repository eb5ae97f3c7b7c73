"""Query results as tidy pandas DataFrames, and the ``df.prom`` accessor.

A result frame has one column per label name (``__name__`` first when present), then
``timestamp`` (tz-aware UTC, millisecond resolution) and ``value``; one row per sample.
``df.attrs`` carries ``query``, ``result_type`` (as the Prometheus API names it), ``start``,
``end`` and ``step`` of the evaluation, and the ``warnings``/``infos`` annotations.

Native histograms: when any sample of the result is a native histogram, the frame has a fourth
sample column ``histogram`` (object dtype): the sample's
:class:`~promlab.model.histogram.FloatHistogram` on a histogram row (whose ``value`` is NaN),
``None`` on a float row. Without histogram samples the column is absent.
``df.prom.buckets()`` expands the histogram rows into a tidy frame of one row per non-empty
bucket (label columns, ``timestamp``, ``boundary``, ``lower``, ``upper``, ``count``;
``boundary`` is the Prometheus API's boundary rule, :data:`BOUNDARY_RULES`);
``df.prom.wide(histogram="count")`` (or ``"sum"``) widens a histogram frame by one of the
histograms' scalar fields, and ``df.prom.plot()`` draws a bucket heat map. The API JSON carries
histogram samples as Prometheus does: ``"histogram"`` (instant vectors) and ``"histograms"``
(matrices, beside ``"values"``) points of ``{"count", "sum", "buckets"}`` objects
(:func:`promlab.promql.histresults.histogram_json`).

Label columns keep every label, losslessly: a label named ``timestamp``, ``value`` or
``histogram`` (which would collide with the sample columns), or whose name already starts
with ``label:``, gets the column ``"label:" + name`` (so ``count_values("value", x)`` gives a ``label:value`` column). Any
other label's column is its name. :func:`label_column` and :func:`column_label` are the two
directions; ``df.prom`` maps the columns back, so :meth:`PromAccessor.wide` and
:meth:`PromAccessor.to_prometheus_json` see the real label names.

The Prometheus API's JSON is encoded from the engine's own :class:`Result` (its label sets and
arrays) by :func:`result_to_json`; ``df.prom.to_prometheus_json()`` rebuilds the same shape from
a frame, through the same encoder.

Examples
--------
>>> from promlab.promql import Engine
>>> from promlab.storage import MemoryStorage
>>> from promlab.model import Labels
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0, 60_000], [1.0, 0.0])
>>> df = Engine().range(st, "up", 0, 60_000, 60_000).to_frame()
>>> list(df.columns)
['__name__', 'job', 'timestamp', 'value']
>>> df.prom.to_prometheus_json()["result"][0]["values"]
[[0, '1'], [60, '0']]
>>> st.add_series(Labels({"__name__": "x", "value": "v1"}), [0], [2.0])
>>> df = Engine().instant(st, "x", 0).to_frame()
>>> list(df.columns), df.prom.to_prometheus_json()["result"][0]["metric"]
(['__name__', 'label:value', 'timestamp', 'value'], {'__name__': 'x', 'value': 'v1'})
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from promlab.model import METRIC_NAME, Labels
from promlab.model.value import format_float, format_go_float
from promlab.promql.eval.querystats import SampleStats
from promlab.promql.histresults import BOUNDARY_RULES, buckets_frame, histogram_json
from promlab.promql.parser.ast import Expr
from promlab.promql.values import I64, Annotations, Matrix, Scalar, String, Vector

__all__ = [
    "BOUNDARY_RULES",
    "LABEL_COLUMN_PREFIX",
    "PromAccessor",
    "Result",
    "column_label",
    "format_sample_value",
    "format_timestamp",
    "label_column",
    "result_to_json",
    "to_frame",
]

_RESERVED = ("timestamp", "value", "histogram")
LABEL_COLUMN_PREFIX = "label:"


@dataclass
class Result:
    """A finished query: its value (names already removed) and how to read it.

    ``value`` is a :class:`Scalar`, :class:`String`, :class:`Vector` (``(S, T)``; for a range
    query sorted by labels, for an instant query ``T == 1`` in result order) or a
    :class:`Matrix` (an instant query over a range vector). ``result_type`` is what the
    Prometheus API reports: ``"vector"``, ``"matrix"``, ``"scalar"`` or ``"string"``.
    """

    query: str
    expr: Expr
    value: Scalar | String | Vector | Matrix
    steps_ms: I64
    result_type: str
    annotations: Annotations = field(default_factory=Annotations)
    start_ms: int = 0
    end_ms: int = 0
    step_ms: int = 0
    #: Samples loaded and held while evaluating (only when the query asked for them).
    sample_stats: SampleStats | None = None

    def to_frame(self) -> pd.DataFrame:
        """The result as a tidy DataFrame (see :func:`to_frame`)."""
        return to_frame(self)

    def to_json(self) -> dict[str, Any]:
        """The API's ``data`` object (see :func:`result_to_json`)."""
        return result_to_json(self)

    def __repr__(self) -> str:
        v = self.value
        if isinstance(v, Vector | Matrix):
            size = f"series={len(v.labels)}"
        elif isinstance(v, Scalar):
            size = f"value={float(v.values[-1]) if v.values.size else float('nan')!r}"
        else:
            size = f"value={v.value!r}"
        return (f"Result(query={self.query!r}, result_type={self.result_type!r}, {size}, "
                f"steps={int(self.steps_ms.shape[0])})")


def label_column(name: str) -> str:
    """The frame column of label ``name`` (see the module docstring).

    Examples
    --------
    >>> label_column("job"), label_column("value"), label_column("label:x")
    ('job', 'label:value', 'label:label:x')
    """
    if name in _RESERVED or name.startswith(LABEL_COLUMN_PREFIX):
        return LABEL_COLUMN_PREFIX + name
    return name


def column_label(column: str) -> str:
    """The label name of frame column ``column``; inverse of :func:`label_column`.

    Examples
    --------
    >>> column_label("job"), column_label("label:value"), column_label("label:label:x")
    ('job', 'value', 'label:x')
    """
    return column.removeprefix(LABEL_COLUMN_PREFIX)


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
           values: np.ndarray | list[Any], hists: np.ndarray | None = None) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for name in _label_columns(labels):
        cols[label_column(name)] = _string_column([ls.get(name) for ls in labels], series_idx)
    cols["timestamp"] = _ts_array(ts_ms)
    cols["value"] = np.asarray(values, np.float64) if isinstance(values, np.ndarray) else \
        np.asarray(values, dtype=object)
    if hists is not None and any(h is not None for h in hists.tolist()):
        cols["histogram"] = np.asarray(hists, dtype=object)
    return pd.DataFrame(cols, index=pd.RangeIndex(len(ts_ms)))


def to_frame(result: Result) -> pd.DataFrame:
    """Convert an engine :class:`~promlab.promql.engine.Result` to a tidy DataFrame."""
    value = result.value
    steps = np.asarray(result.steps_ms, np.int64)
    if isinstance(value, Scalar):
        df = _frame([], np.zeros(1, np.int64), steps[:1], value.values[:1].astype(np.float64))
    elif isinstance(value, String):
        df = _frame([], np.zeros(1, np.int64), steps[:1], [value.value])
    elif isinstance(value, Vector | Matrix):
        series, ts, vals, hists = _samples(value, steps)
        df = _frame(value.labels, series, ts, vals, hists)
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


def _samples(value: Vector | Matrix, steps_ms: I64,
             ) -> tuple[I64, I64, np.ndarray, np.ndarray | None]:
    """Series index, timestamp, value and histogram (an object array, or None when the value
    holds no histograms) of every sample, grouped by series in series order."""
    if isinstance(value, Vector):
        rows, cols = np.nonzero(value.present)  # row-major: grouped by series
        hists = None if value.histograms is None else value.histograms[rows, cols]
        return rows.astype(np.int64), steps_ms[cols], value.values[rows, cols], hists
    lo, hi = value.window_bounds()
    a, b = lo[:, 0].astype(np.int64), hi[:, 0].astype(np.int64)  # an instant query: one step
    n = b - a
    series = np.repeat(np.arange(len(value.labels), dtype=np.int64), n)
    starts = np.repeat(a - (np.cumsum(n) - n), n)
    take = starts + np.arange(int(n.sum()), dtype=np.int64)
    hists = None if value.histograms is None else value.histograms[take]
    return series, value.ts_ms[take], value.values[take], hists


def result_to_json(result: Result) -> dict[str, Any]:
    """The ``data`` object of Prometheus's ``/api/v1/query(_range)`` response for ``result``.

    Encoded from the engine's label sets and arrays, not from a DataFrame: every label is kept
    whatever its name. Timestamps are float seconds (whole seconds as ints), sample values
    strings formatted like Go (:func:`format_sample_value`). Histogram samples go to the
    ``"histogram"``/``"histograms"`` keys as Prometheus writes them (a series of a matrix may
    have ``"values"``, ``"histograms"`` or both; see :mod:`promlab.promql.histresults`).

    Examples
    --------
    >>> from promlab.promql import Engine
    >>> from promlab.storage import MemoryStorage
    >>> st = MemoryStorage()
    >>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0], [1.0])
    >>> result_to_json(Engine().instant(st, "count_values('value', up)", 1_500))
    {'resultType': 'vector', 'result': [{'metric': {'value': '1'}, 'value': [1.5, '1']}]}
    """
    value, rtype = result.value, result.result_type
    steps = np.asarray(result.steps_ms, np.int64)
    if isinstance(value, Scalar | String):
        # A scalar is written with 'f' always (Scalar.MarshalJSON), unlike sample values.
        text = value.value if isinstance(value, String) else format_float(
            float(value.values[0]))
        return {"resultType": rtype, "result": [format_timestamp(int(steps[0])), text]}
    series, ts, vals, hists = _samples(value, steps)
    offsets = np.searchsorted(series, np.arange(len(value.labels) + 1))
    return {"resultType": rtype,
            "result": _encode_series(rtype, value.labels, offsets, ts, vals, hists)}


def _encode_series(rtype: str, labels: list[Labels], offsets: I64, ts_ms: I64,
                   values: np.ndarray, hists: np.ndarray | None = None) -> list[dict[str, Any]]:
    """API series objects: series ``i``'s points are rows ``offsets[i]:offsets[i+1]``."""
    ts_text = _format_column(np.asarray(ts_ms, np.int64), format_timestamp)
    bits = np.ascontiguousarray(values, np.float64).view(np.int64)
    # Format each distinct bit pattern once (keeps -0 apart from 0).
    val_text = _format_column(bits, lambda b: format_sample_value(
        float(np.int64(b).view(np.float64))))
    out: list[dict[str, Any]] = []
    key = "value" if rtype == "vector" else "values"
    is_hist = None if hists is None else np.fromiter(
        (h is not None for h in hists.tolist()), bool, len(hists))
    for i, ls in enumerate(labels):
        a, b = int(offsets[i]), int(offsets[i + 1])
        if a == b:
            continue
        if is_hist is None or not is_hist[a:b].any():
            points = [[t, v] for t, v in zip(ts_text[a:b].tolist(), val_text[a:b].tolist(),
                                              strict=True)]
            out.append({"metric": ls.to_dict(), key: points[0] if rtype == "vector" else points})
            continue
        assert hists is not None
        item: dict[str, Any] = {"metric": ls.to_dict()}
        floats = [[ts_text[k], val_text[k]] for k in range(a, b) if not is_hist[k]]
        hpoints = [[ts_text[k], histogram_json(hists[k])] for k in range(a, b) if is_hist[k]]
        if rtype == "vector":
            item.update({"value": floats[0]} if floats else {"histogram": hpoints[0]})
        else:
            if floats:
                item["values"] = floats
            item["histograms"] = hpoints
        out.append(item)
    return out


def format_sample_value(v: float) -> str:
    """A float as the Prometheus API writes it: ``"1.5"``, ``"NaN"``, ``"+Inf"``; shortest
    digits without an exponent, except below 1e-6 and from 1e21 on (``"1e-07"``, ``"1e+21"``),
    as Prometheus's ``jsonutil.MarshalFloat`` picks Go's ``'e'`` or ``'f'`` format."""
    x = float(v)
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21) and math.isfinite(a):
        return format_go_float(x, "e")
    return format_float(x)


def format_timestamp(ms: int) -> int | float:
    """Milliseconds as the API's float seconds (an int when whole)."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


@pd.api.extensions.register_dataframe_accessor("prom")
class PromAccessor:
    """``df.prom``: views of a PromQL result frame."""

    def __init__(self, df: pd.DataFrame) -> None:
        # A backtest's episode frame (promlab.rules) only offers plot_timeline.
        if df.attrs.get("kind") != "alert_episodes" and (
                "timestamp" not in df.columns or "value" not in df.columns):
            raise AttributeError("df.prom needs 'timestamp' and 'value' columns")
        self._df = df

    def plot_timeline(self, *args: Any, **kwargs: Any) -> Any:
        """Pending/firing bands of a backtest's episode frame, one row per alert: the
        ``df.alerts`` accessor that :mod:`promlab.rules.plot` registers (the rules layer sits
        above this one, so it is reached through the frame, not imported)."""
        if self._df.attrs.get("kind") != "alert_episodes":
            raise TypeError("plot_timeline needs the episode frame of promlab.rules.backtest")
        return self._df.alerts.plot_timeline(*args, **kwargs)

    def label_columns(self) -> list[str]:
        """The frame's label columns (every column but ``timestamp``, ``value`` and
        ``histogram``)."""
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
        columns = [(column_label(n), df[n].to_numpy(object)[first]) for n in names]
        for i in range(len(first)):
            labels.append(Labels({n: v for n, col in columns
                                  if isinstance(v := col[i], str) and v != ""}))
        return codes, labels

    def histograms(self) -> np.ndarray | None:
        """The ``histogram`` column as an object array, or None when no row holds one."""
        if "histogram" not in self._df.columns:
            return None
        col = self._df["histogram"].to_numpy(object)
        return col if any(h is not None for h in col.tolist()) else None

    def wide(self, histogram: str | None = None) -> pd.DataFrame:
        """DatetimeIndex x one column per series (named by its label set).

        A frame with native histogram rows needs ``histogram``: ``"count"`` or ``"sum"``, the
        field of each histogram that stands for it in the grid (use :meth:`buckets` for the
        buckets themselves).

        Raises
        ------
        ValueError
            When the frame holds histograms and ``histogram`` is not ``"count"``/``"sum"``.
        """
        df = self._df
        values = df["value"].to_numpy(np.float64)
        hists = self.histograms()
        if hists is not None:
            if histogram not in ("count", "sum"):
                raise ValueError(
                    "the frame holds native histograms: wide(histogram='count') or "
                    "wide(histogram='sum') widens one of their fields, buckets() expands them")
            values = values.copy()
            for k, h in enumerate(hists.tolist()):
                if h is not None:
                    values[k] = getattr(h, histogram)
        codes, labels = self.series()
        t_codes, t_uniques = pd.factorize(df["timestamp"], sort=True)
        grid = np.full((len(t_uniques), len(labels)), np.nan)
        grid[t_codes, codes] = values
        index = pd.DatetimeIndex(t_uniques, name="timestamp")
        return pd.DataFrame(grid, index=index, columns=[str(ls) for ls in labels])

    def buckets(self) -> pd.DataFrame:
        """The native histogram rows expanded to one row per non-empty bucket: the label
        columns, ``timestamp``, ``boundary`` (the API's rule: 0 open left, 1 open right,
        2 open both, 3 closed both), ``lower``, ``upper`` and ``count`` (the bucket's own
        count, not cumulative). Float rows are left out; a frame without histograms gives an
        empty frame with those columns."""
        df = self._df
        names = self.label_columns()
        hists = self.histograms()
        if hists is None:
            hists = np.full(len(df), None, dtype=object)
        return buckets_frame(df[names], df["timestamp"], hists.tolist())

    def plot(self, **kwargs: Any) -> Any:
        """Plot the result with :func:`promlab.plotting.plot_frame` (a line per series, legend
        of the labels that differ, gaps as gaps; ``kind="stacked"``/``"heatmap"``, ``tz``,
        ``top_n``, ``ax``; a frame of native histograms is drawn as a bucket heat map);
        returns the matplotlib Axes."""
        from promlab.plotting import plot_frame  # lazy: matplotlib only when plotting

        return plot_frame(self._df, **kwargs)

    def to_prometheus_json(self) -> dict[str, Any]:
        """The ``data`` object of the Prometheus API response for this result."""
        df = self._df
        rtype = df.attrs.get("result_type", "vector")
        ts_ms = _epoch_ms(df["timestamp"])
        if rtype in ("scalar", "string"):
            if not len(df):
                return {"resultType": rtype, "result": []}
            v = df["value"].iloc[0]
            sval = str(v) if rtype == "string" else format_float(float(v))
            return {"resultType": rtype, "result": [format_timestamp(int(ts_ms[0])), sval]}
        codes, labels = self.series()
        order = np.argsort(codes, kind="stable")
        offsets = np.searchsorted(codes[order], np.arange(len(labels) + 1))
        values = df["value"].to_numpy(np.float64)[order]
        hists = self.histograms()
        return {"resultType": rtype,
                "result": _encode_series(rtype, labels, offsets, ts_ms[order], values,
                                         None if hists is None else hists[order])}


def _format_column(arr: np.ndarray, fmt: Callable[[int], Any]) -> np.ndarray:
    """``fmt`` applied to every element, computed once per distinct value (object array)."""
    uniq, inverse = np.unique(arr, return_inverse=True)
    table = np.array([fmt(int(u)) for u in uniq.tolist()] + [None], dtype=object)[:-1]
    return table[inverse.reshape(-1)]

"""Plots of PromQL result frames with matplotlib, shared by ``df.prom.plot()`` and the widgets.

- one line per series, named in the legend by the labels that differ between the series only;
- a missing sample is a gap in the line, never a straight segment across it;
- the time axis in UTC or local time (``tz="local"``), or any IANA zone name;
- many series: the legend lists the ``top_n`` largest (by peak value) and says how many more
  there are; past ``max_lines`` (200) series only the ``top_n`` are lines and the others one
  grey min–max band (1,000 noisy overlapping lines take Agg seconds and say nothing);
- ``kind="stacked"`` stacks the series (missing samples count as 0);
- ``kind="heatmap"`` draws histogram ``_bucket`` series (e.g. ``rate(x_bucket[5m])``) as a time
  × bucket heat map of the per-bucket (non-cumulative) values;
- a frame of native histograms (a ``histogram`` column, e.g. ``rate(x[5m])``) is always drawn as
  a time × bucket heat map, colour = the bucket's count (or rate), buckets named by their upper
  bound, series summed bucket by bucket (:func:`native_bucket_matrix`).

No function here selects a backend (``matplotlib.use`` is never called): with ``ax=None`` a new
figure comes from ``matplotlib.pyplot`` (what ``df.plot()`` does, so Jupyter's inline backend
shows it); the widgets pass the Axes of a pyplot-free :class:`matplotlib.figure.Figure`, see
:func:`new_figure` and :func:`figure_png`.

Examples
--------
>>> from promlab.model import Labels
>>> legend_names([Labels({"__name__": "up", "job": "a"}), Labels({"__name__": "up", "job": "b"})])
['{job="a"}', '{job="b"}']
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from promlab.model import METRIC_NAME, Labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BucketMatrix",
    "PlotKind",
    "break_gaps",
    "bucket_matrix",
    "figure_png",
    "legend_names",
    "native_bucket_matrix",
    "new_figure",
    "plot_frame",
    "series_grid",
    "top_series",
]

PlotKind = Literal["line", "stacked", "heatmap"]


def legend_names(labels: Sequence[Labels]) -> list[str]:
    """A legend entry per series naming only the labels whose values differ between series.

    A metric name that differs comes first, outside the braces (``up{job="a"}``). A single
    series (nothing differs) is named by all of its labels.

    Examples
    --------
    >>> legend_names([Labels({"__name__": "a", "x": "1"}), Labels({"__name__": "b", "x": "1"})])
    ['a', 'b']
    >>> legend_names([Labels({"job": "a", "le": "0.1"})])
    ['{job="a", le="0.1"}']
    """
    if not labels:
        return []
    names = sorted({n for ls in labels for n in ls})
    if len(labels) == 1:
        differing = names
    else:
        differing = [n for n in names if len({ls.get(n, "") for ls in labels}) > 1]
    out = []
    for ls in labels:
        metric = ls.get(METRIC_NAME, "") if METRIC_NAME in differing else ""
        inner = ", ".join(f'{n}="{ls.get(n, "")}"' for n in differing if n != METRIC_NAME)
        out.append(metric + ("{" + inner + "}" if inner or not metric else ""))
    return out


def series_grid(df: pd.DataFrame) -> tuple[pd.DatetimeIndex, np.ndarray, list[Labels]]:
    """The frame's samples on a (time × series) grid, NaN where a series has no sample.

    Returns the sorted UTC timestamps, the ``(T, S)`` value matrix and each column's labels.
    """
    codes, labels = df.prom.series()
    if df.empty:
        return pd.DatetimeIndex([], tz="UTC"), np.zeros((0, 0)), []
    t_codes, t_uniques = pd.factorize(df["timestamp"], sort=True)
    grid = np.full((len(t_uniques), len(labels)), np.nan)
    grid[t_codes, codes] = df["value"].to_numpy(np.float64)
    return pd.DatetimeIndex(t_uniques), grid, labels


def break_gaps(times: pd.DatetimeIndex, grid: np.ndarray, step: Any = None,
               ) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Insert an all-NaN row inside every gap of ``times`` so that lines break there.

    A gap is a distance over 1.5 × ``step`` (a range query's step) or, without a step, over
    twice the median distance between timestamps.

    Examples
    --------
    >>> t = pd.to_datetime([0, 15, 30, 90, 105], unit="s", utc=True)
    >>> t2, g = break_gaps(t, np.ones((5, 1)), pd.Timedelta(15, unit="s"))
    >>> len(t2), int(np.isnan(g).sum())
    (6, 1)
    """
    if len(times) < 3 and step is None:
        return times, grid
    times = times.as_unit("ns")
    ns = times.asi8
    diffs = np.diff(ns)
    if step is not None and pd.Timedelta(step).value > 0:
        limit = 1.5 * pd.Timedelta(step).value
    elif len(diffs):
        limit = 2.0 * float(np.median(diffs))
    else:
        return times, grid
    at = np.flatnonzero(diffs > limit)
    if not at.size:
        return times, grid
    mids = ns[at] + diffs[at] // 2
    new_times = pd.DatetimeIndex(np.insert(ns, at + 1, mids), tz=times.tz)
    new_grid = np.insert(grid, at + 1, np.nan, axis=0)
    return new_times, new_grid


def _date_axis(ax: Axes) -> None:
    from matplotlib import dates as mdates

    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _axis_times(times: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, str]:
    """Naive wall-clock times in zone ``tz`` ("UTC", "local" or an IANA name) and its name."""
    if times.tz is None:
        times = times.tz_localize("UTC")
    if tz == "local":
        zone: Any = datetime.now().astimezone().tzinfo
        name = str(zone)
    else:
        zone, name = tz, tz
    return times.tz_convert(zone).tz_localize(None).to_numpy(), name


def new_figure(width: float = 8.0, height: float = 3.5) -> Figure:
    """A figure that belongs to no pyplot state (safe in widget callbacks and threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_png(fig: Figure, *, dpi: int = 80) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def plot_frame(df: pd.DataFrame, *, ax: Axes | None = None, kind: PlotKind = "line",
               tz: str = "UTC", top_n: int = 10, title: str | None = None,
               legend: bool = True, max_lines: int = 200,
               figsize: tuple[float, float] = (8.0, 3.5),
               **style: Any) -> Axes:
    """Plot a PromQL result frame (see the module docstring); returns the Axes.

    Parameters
    ----------
    df
        A result frame (``timestamp``, ``value`` and label columns).
    ax
        The Axes to draw on; a new pyplot figure when None.
    kind
        ``"line"``, ``"stacked"`` or ``"heatmap"`` (``le``-labelled bucket series).
    tz
        Time axis zone: ``"UTC"``, ``"local"`` or an IANA name such as ``"Europe/Paris"``.
    top_n
        Legend entries at most; with more series the largest ``top_n`` are listed.
    title
        Axes title (default: the frame's query, from ``df.attrs``).
    legend
        Draw the legend.
    max_lines
        With more series than this, a line plot draws the ``top_n`` series as lines and the
        others as one grey min–max band.
    figsize
        Size of the new figure when ``ax`` is None (inches).
    style
        Line properties for ``kind="line"`` (``marker="."``, ``linewidth=2``, ...).
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    title = title if title is not None else str(df.attrs.get("query", ""))
    if title:
        ax.set_title(title, fontsize="medium", loc="left")
    native = df.prom.histograms() is not None
    if native and kind == "stacked":
        raise ValueError("native histograms plot as a heatmap, not stacked")
    if kind == "heatmap" or native:
        _heatmap(ax, native_bucket_matrix(df) if native else bucket_matrix(df), tz,
                 ylabel="bucket (upper bound)" if native else "le")
        return ax
    times, grid, labels = series_grid(df)
    times, grid = break_gaps(times, grid, df.attrs.get("step"))
    x, zone = _axis_times(times, tz)
    _date_axis(ax)
    ax.set_xlabel(f"time ({zone})")
    if not labels:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return ax
    names = legend_names(labels)
    top = top_series(grid, top_n)
    extra: list[tuple[Any, str]] = []
    if kind == "stacked":
        handles: list[Any] = list(ax.stackplot(x, np.nan_to_num(grid.T, nan=0.0), labels=names))
    elif kind == "line" and grid.shape[1] <= max_lines:
        # NaN breaks a Line2D: gaps stay gaps.
        handles = list(ax.plot(x, grid, **{"linewidth": 1.2, **style}))
    elif kind == "line":
        handles, extra = _top_lines_and_band(ax, x, grid, top, style)
    else:
        raise ValueError(f"unknown plot kind {kind!r}: line, stacked or heatmap")
    if legend:
        hs = [handles[i] for i in top] + [h for h, _ in extra]
        ns = [names[i] for i in top] + [n for _, n in extra]
        if len(top) < len(names) and not extra:
            from matplotlib.lines import Line2D

            hs.append(Line2D([], [], linestyle="none"))
            ns.append(f"… and {len(names) - len(top)} more series")
        ax.legend(hs, ns, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)
    return ax


def top_series(grid: np.ndarray, n: int) -> list[int]:
    """Columns of the ``n`` series with the highest peak value, in column order.

    Examples
    --------
    >>> top_series(np.array([[1.0, 5.0, np.nan], [2.0, 0.0, 9.0]]), 2)
    [1, 2]
    """
    if grid.shape[1] <= n:
        return list(range(grid.shape[1]))
    peak = np.where(np.isfinite(grid), grid, -np.inf).max(axis=0)
    return sorted(np.argsort(-peak, kind="stable")[:n].tolist())


def _top_lines_and_band(ax: Axes, x: np.ndarray, grid: np.ndarray, top: list[int],
                        style: dict[str, Any]) -> tuple[list[Any], list[tuple[Any, str]]]:
    """The ``top`` series as lines, every other one inside a grey min–max band.

    A thousand overlapping noisy lines cost Agg seconds to rasterise and cannot be told apart
    anyway; the band shows where the rest lie in a fraction of the time.
    """
    rest = np.ones(grid.shape[1], bool)
    rest[top] = False
    others = grid[:, rest]
    ok = np.isfinite(others)
    lo = np.where(ok, others, np.inf).min(axis=1)
    hi = np.where(ok, others, -np.inf).max(axis=1)
    none = ~ok.any(axis=1)  # a step where no other series has a sample: a gap in the band
    lo[none], hi[none] = np.nan, np.nan
    band = ax.fill_between(x, lo, hi, color="0.8", linewidth=0, where=~none)
    lines = ax.plot(x, grid[:, top], **{"linewidth": 1.2, **style})
    handles: list[Any] = [None] * grid.shape[1]
    for i, line in zip(top, lines, strict=True):
        handles[i] = line
    return handles, [(band, f"{int(rest.sum())} more series (min–max)")]


@dataclass(frozen=True)
class BucketMatrix:
    """Histogram buckets over time: ``counts[t, b]`` is the value in bucket ``b`` alone.

    ``upper`` holds the buckets' upper bounds (``le``, ascending, ``inf`` last); ``times`` the
    UTC timestamps. Series that differ in other labels than ``le`` are summed.
    """

    times: pd.DatetimeIndex
    upper: np.ndarray
    counts: np.ndarray


def bucket_matrix(df: pd.DataFrame) -> BucketMatrix:
    """Per-bucket values from cumulative ``le`` series (summed over every other label).

    Raises
    ------
    ValueError
        When the frame has no ``le`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp(0, tz="UTC")
    >>> df = pd.DataFrame({"le": ["0.1", "1", "+Inf"], "timestamp": [t] * 3,
    ...                    "value": [2.0, 5.0, 6.0]})
    >>> bucket_matrix(df).counts.tolist()
    [[2.0, 3.0, 1.0]]
    """
    if "le" not in df.columns:
        raise ValueError("a heatmap needs histogram bucket series (an 'le' label)")
    le = pd.to_numeric(df["le"].astype(str).replace({"+Inf": "inf", "Inf": "inf"}),
                       errors="coerce")
    sub = pd.DataFrame({"le": le.to_numpy(), "timestamp": df["timestamp"].to_numpy(),
                        "value": df["value"].to_numpy(np.float64)}).dropna(subset=["le"])
    table = sub.pivot_table(index="timestamp", columns="le", values="value", aggfunc="sum")
    table = table.sort_index(axis=1)
    cum = table.to_numpy(np.float64)
    counts = np.diff(cum, axis=1, prepend=0.0) if cum.size else cum
    times = pd.DatetimeIndex(table.index)
    if times.tz is None:
        times = times.tz_localize("UTC")
    return BucketMatrix(times=times, upper=table.columns.to_numpy(np.float64),
                        counts=np.clip(counts, 0.0, None))


def native_bucket_matrix(df: pd.DataFrame) -> BucketMatrix:
    """Per-bucket counts of a frame's native histograms (``df.prom.buckets()``), summed over
    series with the same bucket bounds; a bucket a histogram does not list counts 0 there.

    ``upper`` is ordered by upper then lower bound (negative buckets, the zero bucket, then
    the positive ones); a timestamp without any histogram is not a row.

    Raises
    ------
    ValueError
        When the frame has no native histogram rows.
    """
    if df.prom.histograms() is None:
        raise ValueError("the frame has no native histogram rows")
    b = df.prom.buckets()
    table = b.pivot_table(index="timestamp", columns=["upper", "lower"], values="count",
                          aggfunc="sum", fill_value=0.0).sort_index(axis=1)
    times = pd.DatetimeIndex(table.index)
    if times.tz is None:
        times = times.tz_localize("UTC")
    upper = table.columns.get_level_values(0).to_numpy(np.float64)
    return BucketMatrix(times=times, upper=upper, counts=table.to_numpy(np.float64))


def _heatmap(ax: Axes, bm: BucketMatrix, tz: str, ylabel: str = "le") -> None:
    x, zone = _axis_times(bm.times, tz)
    _date_axis(ax)
    ax.set_xlabel(f"time ({zone})")
    if not bm.counts.size:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    from matplotlib import dates as mdates

    xn = np.asarray(mdates.date2num(x), np.float64)  # type: ignore[no-untyped-call]
    step = float(np.median(np.diff(xn))) if len(xn) > 1 else 1 / 1440
    edges_x = np.append(xn - step / 2, xn[-1] + step / 2)
    edges_y = np.arange(len(bm.upper) + 1) - 0.5
    mesh = ax.pcolormesh(edges_x, edges_y, bm.counts.T, cmap="viridis", shading="flat")
    ax.xaxis_date()
    every = max(1, math.ceil(len(bm.upper) / 24))  # at most ~24 tick labels
    ticks = np.arange(0, len(bm.upper), every)
    ax.set_yticks(ticks)
    ax.set_yticklabels([("+Inf" if u > 0 else "-Inf") if math.isinf(u) else f"{u:g}"
                        for u in bm.upper[ticks].tolist()])
    ax.set_ylabel(ylabel)
    ax.figure.colorbar(mesh, ax=ax)

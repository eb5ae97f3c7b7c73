"""Classic histograms as native histograms with custom buckets (NHCB, schema -53).

One conversion for every input that carries classic histograms:

* :func:`nhcb_from_cumulative` — one classic histogram point (finite upper bounds with their
  cumulative counts, the ``+Inf`` count, the total count and the sum) as a native histogram with
  custom buckets; the protobuf parser (``convert_classic_histograms_to_nhcb``) and
  :class:`ClassicConverter` both build their histograms with it.
* :class:`ClassicConverter` — over parsed text columns (a page of a scrape, a chunk of an import):
  the ``_bucket``/``_count``/``_sum`` rows of every family typed ``histogram`` become one
  histogram row per (series, timestamp), the other rows pass through. Like Prometheus's text
  NHCB conversion it converts only ``histogram`` families (a ``gaugehistogram`` or an untyped
  ``_bucket`` series stays as it is), and it keeps the classic rows too only when asked
  (``keep_classic``, Prometheus's ``always_scrape_classic_histograms``). A histogram point
  whose buckets do not make a valid histogram (counts going down) is kept as classic rows.

The converter keeps its own series table (:attr:`ClassicConverter.series`, append-only, like a
parser's) so the refs it hands out stay stable across pages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.exposition.page import MetricMetadata
from promlab.model import Labels
from promlab.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    CounterResetHint,
    FloatHistogram,
    Histogram,
    HistogramError,
    from_bucket_map,
)

__all__ = ["ClassicConverter", "Converted", "nhcb_from_cumulative"]

_OTHER, _BUCKET, _COUNT, _SUM, _CREATED = 0, 1, 2, 3, 4
_SUFFIX_KIND = (("_bucket", _BUCKET), ("_count", _COUNT), ("_sum", _SUM), ("_created", _CREATED))


def nhcb_from_cumulative(bounds: Sequence[float], cumulative: Sequence[float], inf_count: float,
                         count: float, sum: float, *, gauge: bool = False,
                         integer: bool = True) -> Histogram | FloatHistogram:
    """One classic histogram point as an NHCB.

    Parameters
    ----------
    bounds, cumulative
        The finite upper bounds (ascending) and their cumulative counts.
    inf_count
        The cumulative count of the ``+Inf`` bucket (the total when the input has none).
    count, sum
        The histogram's count and sum.
    gauge
        A gauge histogram (counter reset hint ``GAUGE``).
    integer
        Return an integer :class:`Histogram` when every count is integral.

    Examples
    --------
    >>> h = nhcb_from_cumulative([0.1, 1.0], [2.0, 5.0], 6.0, 6.0, 3.5)
    >>> h.schema, h.custom_values, h.positive_buckets, h.count
    (-53, (0.1, 1.0), (2, 1, -2), 6)
    """
    counts: dict[int, float] = {}
    prev = 0.0
    for k, cum in enumerate(cumulative):
        counts[k] = cum - prev
        prev = cum
    counts[len(cumulative)] = inf_count - prev
    f = from_bucket_map(CUSTOM_BUCKETS_SCHEMA, counts, count=count, sum=sum,
                        custom_values=tuple(float(b) for b in bounds), keep_empty=True,
                        counter_reset_hint=CounterResetHint.GAUGE if gauge else CounterResetHint.UNKNOWN)
    return f.to_int() if integer and f.is_integer() else f


@dataclass(slots=True)
class Converted:
    """A converted page or chunk: float rows (refs into :attr:`ClassicConverter.series`) and
    histogram rows. ``float_rows`` are the positions of the float rows in the input (to move
    per-row data such as exemplars along); ``hist_rows`` the input position of each histogram's
    first row."""

    refs: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    timestamps_ms: npt.NDArray[np.int64]
    float_rows: npt.NDArray[np.int64]
    hist_refs: npt.NDArray[np.int64]
    hist_timestamps_ms: npt.NDArray[np.int64]
    histograms: list[Histogram | FloatHistogram] = field(default_factory=list)
    hist_rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


class ClassicConverter:
    """Converts the classic histograms of parsed text columns to NHCB rows.

    Parameters
    ----------
    keep_classic
        Also keep the classic ``_bucket``/``_count``/``_sum`` rows of converted histograms.
    drop_created
        Drop the ``_created`` rows of converted histogram families (without ``keep_classic``
        they would be the only series left of the family).

    Examples
    --------
    >>> from promlab.exposition import Parser
    >>> p = Parser()
    >>> page = p.parse(b'# TYPE h histogram\\nh_bucket{le="1"} 2\\nh_bucket{le="+Inf"} 3\\n'
    ...                b'h_count 3\\nh_sum 4.5\\nup 1\\n')
    >>> c = ClassicConverter()
    >>> out = c.convert(page.series, page.refs, page.values, page.timestamps_ms, page.metadata)
    >>> [str(c.series[r]) for r in out.refs], [str(c.series[r]) for r in out.hist_refs]
    (['up'], ['h'])
    >>> out.histograms[0].count, out.histograms[0].custom_values
    (3, (1.0,))
    """

    def __init__(self, *, keep_classic: bool = False, drop_created: bool = True) -> None:
        self.keep_classic = keep_classic
        self.drop_created = drop_created
        self.series: list[Labels] = []
        self.types: dict[str, str] = {}
        self._own: dict[Labels, int] = {}
        self._mapped_n = 0
        self._out = np.zeros(0, np.int64)   # parser ref -> own ref of the same series
        self._kind = np.zeros(0, np.int8)   # parser ref -> _BUCKET/_COUNT/_SUM/_CREATED/_OTHER
        self._group = np.zeros(0, np.int64)  # parser ref -> own ref of its histogram series
        self._le = np.zeros(0, np.float64)  # parser ref -> bucket bound (buckets only)
        self._pending: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]] | None = None

    def __len__(self) -> int:
        return len(self.series)

    def own_ref(self, parser_ref: int) -> int:
        """This converter's ref of the parser's series ``parser_ref`` (mapped by a convert call)."""
        return int(self._out[parser_ref])

    def group_of_rows(self, refs: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """For rows of parser ``refs``: the ref of the histogram series each classic part
        belongs to, -1 for other rows."""
        return self._group[np.asarray(refs, np.int64)]

    def _ref(self, ls: Labels) -> int:
        r = self._own.get(ls)
        if r is None:
            r = self._own[ls] = len(self.series)
            self.series.append(ls)
        return r

    def _classify(self, ls: Labels) -> tuple[int, int, float]:
        name = ls.name
        for suffix, kind in _SUFFIX_KIND:
            if name.endswith(suffix) and self.types.get(name[:-len(suffix)]) == "histogram":
                le = math.nan
                base = ls.without(("le",)) if kind == _BUCKET else ls
                if kind == _BUCKET:
                    raw = ls.get("le")
                    try:
                        le = float(raw) if raw is not None else math.nan
                    except ValueError:
                        return _OTHER, -1, le
                    if math.isnan(le):
                        return _OTHER, -1, le
                return kind, self._ref(base.set("__name__", name[:-len(suffix)])), le
        return _OTHER, -1, math.nan

    def _map(self, parser_series: Sequence[Labels]) -> None:
        n_old, n_new = self._mapped_n, len(parser_series)
        if n_new <= n_old:
            return
        out = np.empty(n_new - n_old, np.int64)
        kind = np.zeros(n_new - n_old, np.int8)
        group = np.full(n_new - n_old, -1, np.int64)
        le = np.full(n_new - n_old, math.nan)
        for i in range(n_old, n_new):
            ls = parser_series[i]
            out[i - n_old] = self._ref(ls)
            kind[i - n_old], group[i - n_old], le[i - n_old] = self._classify(ls)
        self._out = np.concatenate([self._out, out])
        self._kind = np.concatenate([self._kind, kind])
        self._group = np.concatenate([self._group, group])
        self._le = np.concatenate([self._le, le])
        self._mapped_n = n_new

    def convert(self, parser_series: Sequence[Labels], refs: npt.NDArray[np.integer],
                values: npt.NDArray[np.float64], timestamps_ms: npt.NDArray[np.int64],
                metadata: Mapping[str, MetricMetadata] | None = None, *, final: bool = True) -> Converted:
        """Convert one page or chunk.

        ``parser_series`` is the parser's growing series table (the same list every call);
        ``metadata`` the page's HELP/TYPE (types are remembered across calls). With
        ``final=False`` (a chunk of a stream) the last histogram point is held back until the
        next call, in case the chunk cut it in two; a final call flushes it.
        """
        if metadata:
            for name, md in metadata.items():
                self.types.setdefault(name, md.type)
        self._map(parser_series)
        refs64 = np.asarray(refs, np.int64)
        kind = self._kind[refs64] if refs64.shape[0] else np.zeros(0, np.int8)
        part = np.flatnonzero(kind != _OTHER)
        is_part = kind != _OTHER
        if self.keep_classic:
            keep = np.ones(refs64.shape[0], bool)
        else:
            keep = ~is_part
        if not self.drop_created and not self.keep_classic:
            keep |= kind == _CREATED
        rows_g = self._group[refs64[part]]
        rows_k = kind[part]
        rows_v = values[part]
        rows_t = timestamps_ms[part]
        rows_le = self._le[refs64[part]]
        rows_pos = part
        pend = self._pending
        self._pending = None
        if pend is not None:  # (group, kind, le) packed with values and timestamps
            meta, pv, pt = pend
            rows_g = np.concatenate([meta[0], rows_g])
            rows_k = np.concatenate([meta[1].astype(np.int8), rows_k])
            rows_le = np.concatenate([meta[2].view(np.float64), rows_le])
            rows_v = np.concatenate([pv, rows_v])
            rows_t = np.concatenate([pt, rows_t])
            rows_pos = np.concatenate([np.full(pv.shape[0], -1, np.int64), rows_pos])
        if not final and rows_g.shape[0]:
            last = (rows_g == rows_g[-1]) & (rows_t == rows_t[-1])
            held = np.flatnonzero(last)
            self._pending = (np.stack([rows_g[held], rows_k[held].astype(np.int64),
                                       rows_le[held].view(np.int64)]), rows_v[held], rows_t[held])
            rest = ~last
            rows_g, rows_k, rows_le = rows_g[rest], rows_k[rest], rows_le[rest]
            rows_v, rows_t, rows_pos = rows_v[rest], rows_t[rest], rows_pos[rest]
        h_refs, h_ts, hists, h_rows, bad = self._build(rows_g, rows_k, rows_le, rows_v, rows_t, rows_pos)
        if bad.shape[0]:  # invalid points stay classic
            keep[bad[bad >= 0]] = True
        sel = np.flatnonzero(keep)
        return Converted(refs=self._out[refs64[sel]], values=values[sel], timestamps_ms=timestamps_ms[sel],
                         float_rows=sel, hist_refs=h_refs, hist_timestamps_ms=h_ts, histograms=hists,
                         hist_rows=h_rows)

    def _build(self, g: npt.NDArray[np.int64], k: npt.NDArray[np.int8], le: npt.NDArray[np.float64],
               v: npt.NDArray[np.float64], t: npt.NDArray[np.int64], pos: npt.NDArray[np.int64]
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[Histogram | FloatHistogram],
                          npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        points: dict[tuple[int, int], list[int]] = {}
        for i, key in enumerate(zip(g.tolist(), t.tolist(), strict=True)):
            points.setdefault(key, []).append(i)
        h_refs: list[int] = []
        h_ts: list[int] = []
        h_rows: list[int] = []
        hists: list[Histogram | FloatHistogram] = []
        bad: list[int] = []
        kl, lel, vl, pl = k.tolist(), le.tolist(), v.tolist(), pos.tolist()
        for (grp, ts), rows in points.items():
            buckets: dict[float, float] = {}
            count: float | None = None
            total_sum = 0.0
            for i in rows:
                if kl[i] == _BUCKET:
                    buckets.setdefault(lel[i], vl[i])
                elif kl[i] == _COUNT:
                    count = vl[i] if count is None else count
                elif kl[i] == _SUM:
                    total_sum = vl[i]
            if not buckets and count is None:
                continue  # only a _created row
            finite = sorted(b for b in buckets if not math.isinf(b))
            inf = buckets.get(math.inf)
            if count is None:
                count = inf if inf is not None else (buckets[finite[-1]] if finite else 0.0)
            try:
                h = nhcb_from_cumulative(finite, [buckets[b] for b in finite],
                                         count if inf is None else inf, count, total_sum)
                h.validate()
            except (HistogramError, ValueError):
                bad.extend(pl[i] for i in rows)
                continue
            h_refs.append(grp)
            h_ts.append(ts)
            h_rows.append(min(p for p in (pl[i] for i in rows)) if rows else -1)
            hists.append(h)
        return (np.array(h_refs, np.int64), np.array(h_ts, np.int64), hists,
                np.array(h_rows, np.int64), np.array(bad, np.int64))

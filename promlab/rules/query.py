"""Query functions: how rules reach PromQL without holding an Engine.

Rules see two callables (DESIGN: rules evaluate through query functions):

* ``QueryFunc(expr, time_ms) -> Vector`` — an instant query (``T == 1``), for the live loop;
* ``RangeQueryFunc(expr, start_ms, end_ms, step_ms) -> Vector`` — a range query, ``(S, T)``
  frames over every step, for the backtest.

:func:`query_funcs` builds both over any Queryable; :class:`OverlayQueryable` lets rules
evaluated later read the series that earlier recording rules produced, without writing them
into the store.

Examples
--------
>>> from promlab.model import Labels
>>> from promlab.storage import MemoryStorage
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0, 60_000], [1.0, 0.0])
>>> instant, ranged = query_funcs(st)
>>> instant("up == 0", 60_000).values.tolist()
[[0.0]]
>>> ranged("up", 0, 60_000, 60_000).values.tolist()
[[1.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from promlab.model import Labels, Matcher
from promlab.promql.engine import Engine
from promlab.promql.values import Scalar, Vector
from promlab.storage.interface import Querier, Queryable, SelectHints, SeriesSet
from promlab.storage.merge import sort_dedup

__all__ = ["OverlayQueryable", "QueryFunc", "RangeQueryFunc", "query_funcs"]

QueryFunc = Callable[[str, int], Vector]
RangeQueryFunc = Callable[[str, int, int, int], Vector]


def _as_vector(value: object) -> Vector:
    if isinstance(value, Vector):
        return value
    if isinstance(value, Scalar):
        # A scalar rule result is one element without labels (Prometheus converts it so).
        vals = np.asarray(value.values, np.float64).reshape(1, -1)
        return Vector([Labels()], vals, np.ones_like(vals, bool))
    # Prometheus's wording (its EngineQueryFunc), for a string and a range vector alike.
    raise TypeError("rule result is not a vector or scalar")


def query_funcs(queryable: Queryable, engine: Engine | None = None) -> tuple[QueryFunc, RangeQueryFunc]:
    """An instant and a range query function over ``queryable`` (a new Engine if none given)."""
    eng = engine if engine is not None else Engine()

    def instant(expr: str, time_ms: int) -> Vector:
        return _as_vector(eng.instant(queryable, expr, int(time_ms)).value)

    def ranged(expr: str, start_ms: int, end_ms: int, step_ms: int) -> Vector:
        return _as_vector(eng.range(queryable, expr, int(start_ms), int(end_ms), int(step_ms)).value)

    return instant, ranged


class OverlayQueryable:
    """``base`` with ``overlay``'s series on top: series in both merge, ``overlay`` winning
    on equal timestamps. Neither store is written to."""

    def __init__(self, base: Queryable, overlay: Queryable) -> None:
        self.base = base
        self.overlay = overlay

    def querier(self, mint_ms: int, maxt_ms: int) -> _OverlayQuerier:
        return _OverlayQuerier(self.base.querier(mint_ms, maxt_ms),
                               self.overlay.querier(mint_ms, maxt_ms))


class _OverlayQuerier:
    def __init__(self, base: Querier, top: Querier) -> None:
        self.base = base
        self.top = top

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        a = self.base.select(matchers, hints)
        b = self.top.select(matchers, hints)
        if len(a) and len(b):
            a, b = a.compact(), b.compact()  # merged below from contiguous runs
        if not len(b):
            return a
        if not len(a):
            return b
        labels = sorted(set(a.labels) | set(b.labels))
        rank = {ls: i for i, ls in enumerate(labels)}

        def cols(ss: SeriesSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lo, hi = int(ss.offsets[0]), int(ss.offsets[-1])
            group = np.repeat(np.array([rank[ls] for ls in ss.labels], np.int64), ss.lengths())
            return group, ss.ts_ms[lo:hi], ss.values[lo:hi]

        (ga, ta, va), (gb, tb, vb) = cols(a), cols(b)
        # ``b`` after ``a``: the last write of an equal (series, ts) wins.
        g, ts_all, vs_all = sort_dedup(np.concatenate([ga, gb]),
                                       np.concatenate([ta, tb]).astype(np.int64),
                                       np.concatenate([va, vb]).astype(np.float64))
        offsets = np.searchsorted(g, np.arange(len(labels) + 1), side="left").astype(np.int64)
        return SeriesSet(labels, offsets, ts_all, vs_all)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return sorted(set(self.base.label_names(matchers)) | set(self.top.label_names(matchers)))

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return sorted(set(self.base.label_values(name, matchers))
                      | set(self.top.label_values(name, matchers)))

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        return sorted(set(self.base.series(matchers)) | set(self.top.series(matchers)))

    def close(self) -> None:
        self.base.close()
        self.top.close()

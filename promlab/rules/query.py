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
from promlab.promql.values import Scalar, String, Vector
from promlab.storage.interface import Querier, Queryable, SelectHints, SeriesSet

__all__ = ["OverlayQueryable", "QueryFunc", "RangeQueryFunc", "query_funcs"]

QueryFunc = Callable[[str, int], Vector]
RangeQueryFunc = Callable[[str, int, int, int], Vector]


def _as_vector(value: object, steps: int) -> Vector:
    if isinstance(value, Vector):
        return value
    if isinstance(value, Scalar):
        # A scalar rule result is one element without labels (Prometheus converts it so).
        vals = np.asarray(value.values, np.float64).reshape(1, -1)
        return Vector([Labels()], vals, np.ones_like(vals, bool))
    if isinstance(value, String):
        raise TypeError("rule expression evaluates to a string, not a vector")
    raise TypeError(f"rule expression must be an instant vector or scalar, not {type(value).__name__}")


def query_funcs(queryable: Queryable, engine: Engine | None = None) -> tuple[QueryFunc, RangeQueryFunc]:
    """An instant and a range query function over ``queryable`` (a new Engine if none given)."""
    eng = engine if engine is not None else Engine()

    def instant(expr: str, time_ms: int) -> Vector:
        return _as_vector(eng.instant(queryable, expr, int(time_ms)).value, 1)

    def ranged(expr: str, start_ms: int, end_ms: int, step_ms: int) -> Vector:
        res = eng.range(queryable, expr, int(start_ms), int(end_ms), int(step_ms))
        return _as_vector(res.value, int(res.steps_ms.shape[0]))

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
        if not len(b):
            return a
        if not len(a):
            return b
        merged: dict[Labels, tuple[np.ndarray, np.ndarray]] = {}
        for ss in (a, b):  # later sets win on equal timestamps
            for i in range(len(ss)):
                ls, ts, vs = ss.series(i)
                if ls in merged:
                    ts0, vs0 = merged[ls]
                    all_ts, all_vs = np.concatenate([ts0, ts]), np.concatenate([vs0, vs])
                    order = np.argsort(all_ts, kind="stable")
                    all_ts, all_vs = all_ts[order], all_vs[order]
                    keep = np.ones(all_ts.shape[0], bool)
                    keep[:-1] = all_ts[1:] != all_ts[:-1]
                    merged[ls] = (all_ts[keep], all_vs[keep])
                else:
                    merged[ls] = (ts, vs)
        labels = sorted(merged)
        lens = np.array([merged[ls][0].shape[0] for ls in labels], np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        ts_all = np.concatenate([merged[ls][0] for ls in labels]).astype(np.int64)
        vs_all = np.concatenate([merged[ls][1] for ls in labels]).astype(np.float64)
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

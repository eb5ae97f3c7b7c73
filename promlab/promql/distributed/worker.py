"""What a Dask worker runs: one remote node of a query over one shard of the store.

The worker opens the store itself (once per process, from its location) or uses the store
object it was given, evaluates the node with the ordinary evaluator on a shard-filtered
Queryable (its selections carry the shard in ``SelectHints.shard``, so storage decodes only
this shard's series; whatever storage returns beyond them is dropped here), and returns the
engine's own value frames: the node's frame (``gather``) or the aggregation's partial states
(``partial``), with the annotations raised and per-phase timings.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from promlab.model import Labels, Matcher
from promlab.promql.distributed.combine import sum_state
from promlab.promql.distributed.shard import ShardMap, shard_of, take_series
from promlab.promql.engine import data_time_range
from promlab.promql.eval.evaluator import Evaluator
from promlab.promql.eval.names import NAME_LABELS, finalize_names
from promlab.promql.eval.registry import AGGREGATIONS, AggregationCall
from promlab.promql.parser.ast import AggregateExpr, Expr
from promlab.promql.values import Annotations, EvalContext, String, Value, Vector, group_labels
from promlab.storage.interface import Querier, Queryable, SelectHints, SeriesSet

__all__ = ["PARTIAL_STATES", "ShardResult", "StoreLocation", "open_location", "run_shard"]

#: The partial states each splittable aggregation's shards return.
PARTIAL_STATES: dict[str, tuple[str, ...]] = {
    "sum": ("sum", "sum_c"), "count": ("count",), "min": ("min",), "max": ("max",), "group": ("group",),
    "avg": ("sum", "sum_c", "count", "avg"), "stddev": ("count", "avg", "stdvar"),
    "stdvar": ("count", "avg", "stdvar"), "topk": ("topk",), "bottomk": ("bottomk",),
    "count_values": ("count_values",),
}


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where workers open a store read-only: a directory or an fsspec URL, with options."""

    url: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)


_STORES: dict[tuple[str, str], Queryable] = {}
_STORES_LOCK = threading.Lock()


def open_location(loc: StoreLocation) -> Queryable:
    """The store at ``loc``, opened read-only once per process and kept open."""
    with _STORES_LOCK:
        key = (loc.url, repr(sorted(loc.options.items())))
        store = _STORES.get(key)
        if store is None:
            from promlab.storage import open_store

            store = open_store(loc.url, readonly=True, **loc.options)
            _STORES[key] = store
        return store


@dataclass(slots=True)
class ShardResult:
    """One shard's answer for one remote node.

    ``value`` is the node's frame (gather); ``states`` the partial states by name and
    ``first_keys`` each group's earliest input series (partial). ``fallback`` asks the client to
    gather the aggregation's input instead (a value kind the partial states do not cover).
    """

    shard: int
    value: Value | None = None
    states: dict[str, Vector] = field(default_factory=dict)
    first_keys: list[tuple[Labels, Labels]] = field(default_factory=list)
    annotations: Annotations = field(default_factory=Annotations)
    fallback: bool = False
    read_s: float = 0.0
    eval_s: float = 0.0
    samples: int = 0
    series: int = 0
    #: Bytes and requests fetched from object storage while the shard ran (a store at a URL;
    #: the worker process's counter, so concurrent shards in one process share it).
    store_bytes: int = 0
    store_requests: int = 0


class _TimedQuerier:
    """A shard's querier that times its reads and counts what they return."""

    def __init__(self, inner: Querier, shard: int, count: int, res: ShardResult,
                 shard_map: ShardMap | None) -> None:
        self._inner, self._shard, self._count, self._res = inner, shard, count, res
        self._map = shard_map

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        t0 = time.perf_counter()
        if self._map is None:
            ss = self._inner.select(matchers, hints)
            rows = [i for i, ls in enumerate(ss.labels)
                    if shard_of(ls, self._count) == self._shard]
        else:
            hints = dataclasses.replace(hints or SelectHints(), shard=self._map.hint(self._shard))
            ss = self._inner.select(matchers, hints)
            rows = self._map.rows(ss.labels, self._shard)
        ss = take_series(ss, rows)
        self._res.read_s += time.perf_counter() - t0
        self._res.samples += ss.num_samples
        self._res.series += len(ss.labels)
        return ss

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        return self._inner.series(matchers)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self._inner.label_names(matchers)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self._inner.label_values(name, matchers)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True, slots=True)
class _TimedShard:
    inner: Queryable
    shard: int
    count: int
    res: ShardResult
    shard_map: ShardMap | None

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        return _TimedQuerier(self.inner.querier(mint_ms, maxt_ms), self.shard, self.count,
                             self.res, self.shard_map)


def run_shard(source: StoreLocation | Queryable, shard: int, count: int, node: Expr, kind: str,
              ctx: EvalContext, *, max_samples: int, timeout_s: float | None,
              shard_map: ShardMap | None = None) -> ShardResult:
    """Evaluate ``node`` (``kind`` ``"gather"`` or ``"partial"``) on shard ``shard`` of ``count``.

    ``shard_map`` (the client's split of the node's series) says which series are the shard's;
    without one a series' shard is :func:`~promlab.promql.distributed.shard.shard_of`.
    """
    started = time.perf_counter()
    res = ShardResult(shard)
    store = open_location(source) if isinstance(source, StoreLocation) else source
    # Names are always kept (marked) on the worker: the client removes them where the query
    # removes them eagerly, after merging, so shards agree with one process on collisions.
    wctx = dataclasses.replace(ctx, annotations=res.annotations)
    if hasattr(wctx, "delayed_name_removal"):
        wctx.delayed_name_removal = True
    bounds = data_time_range(node, ctx.start_ms, ctx.end_ms, lookback_ms=ctx.lookback_ms) or (0, 0)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    ev = Evaluator(_TimedShard(store, shard, count, res, shard_map), mint_ms=bounds[0], maxt_ms=bounds[1],
                   max_samples=max_samples, deadline=deadline)
    io = _io_counters(store)
    try:
        if kind == "gather":
            res.value = ev.eval(node, wctx)
        else:
            assert isinstance(node, AggregateExpr)
            _partial(node, ev, wctx, eager=not getattr(ctx, "delayed_name_removal", True),
                     res=res)
    finally:
        ev.close()
    res.eval_s = time.perf_counter() - started - res.read_s
    if io is not None:
        after = _io_counters(store) or io
        res.store_bytes = after["bytes_read"] - io["bytes_read"]
        res.store_requests = after["requests"] - io["requests"]
    return res


def _io_counters(store: Queryable) -> dict[str, int] | None:
    """The object-storage counters of a store at a URL (None for others)."""
    counters = getattr(getattr(store, "fs", None), "counters", None)
    return counters() if callable(counters) else None


def _effective_labels(x: Vector, eager: bool) -> list[Labels]:
    if not eager:
        return list(x.labels)
    drop = x.drop_name_mask()
    return [ls.without(NAME_LABELS) if d else ls
            for ls, d in zip(x.labels, drop.tolist(), strict=True)]


def _partial(node: AggregateExpr, ev: Evaluator, ctx: EvalContext, *, eager: bool,
             res: ShardResult) -> None:
    param = ev.eval(node.param, ctx) if node.param is not None else None
    x = ev.eval(node.expr, ctx)
    assert isinstance(x, Vector)
    if getattr(x, "histograms", None) is not None:
        res.fallback = True
        return
    eff = _effective_labels(x, eager)
    if eager and x.drop_name is not None and x.drop_name.any():
        fin = finalize_names(x)
        assert isinstance(fin, Vector)
        xa = fin
    else:
        xa = x
    first: dict[Labels, Labels] = {}
    for e, orig in zip(eff, x.labels, strict=True):
        first.setdefault(e, orig)
    keys = [first[ls] for ls in xa.labels]
    gid, groups = group_labels(xa.labels, node.grouping, without=node.without)
    kg, kgroups = gid, groups
    if node.op == "count_values":
        assert isinstance(param, String)
        base = [ls.without((param.value,)) for ls in xa.labels]
        kg, kgroups = group_labels(base, node.grouping, without=node.without)
    seen: dict[int, Labels] = {}
    for row, g in enumerate(kg.tolist()):
        seen.setdefault(g, keys[row])
    res.first_keys = [(kgroups[g], k) for g, k in seen.items()]
    for state in PARTIAL_STATES[node.op]:
        if state == "sum_c":
            continue
        if state == "sum":
            rows = AGGREGATIONS["group"](AggregationCall(node, xa, param, gid, groups, ctx))
            res.states["sum"], res.states["sum_c"] = sum_state(xa, gid, rows, groups)
            continue
        impl = AGGREGATIONS[state]
        res.states[state] = impl(AggregationCall(node, xa, param, gid, groups, ctx))
    if not xa.present.size:
        res.states = {k: Vector.empty(ctx.num_steps) for k in res.states}

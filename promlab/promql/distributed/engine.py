"""The distributed engine: the ordinary :class:`~promlab.promql.engine.Engine` whose remote
nodes (see :mod:`promlab.promql.distributed.plan`) run on a Dask cluster, shard by shard.

For every query the planner marks the remote nodes; the client resolves each node's series
from the label index and splits them into shards of contiguous series
(:meth:`~promlab.promql.distributed.shard.ShardMap.split`), so each worker reads only its
shard's series; each node is submitted to the cluster as one task per shard as soon as the
query starts (all nodes at once), and the client's evaluator
waits for a node's tasks when evaluation reaches it, merges or combines their frames and goes
on as in one process. Timings per phase are kept in :attr:`DistributedEngine.last_stats`.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promlab.errors import PromlabError, QueryCanceled
from promlab.model import Labels
from promlab.promql.distributed.combine import combine_partials, merge_frames
from promlab.promql.distributed.plan import Plan, RemoteNode, plan_query
from promlab.promql.distributed.shard import ShardMap
from promlab.promql.distributed.worker import ShardResult, StoreLocation, run_shard
from promlab.promql.engine import Engine, data_time_range
from promlab.promql.eval.evaluator import Evaluator, sample_count
from promlab.promql.eval.names import finalize_names
from promlab.promql.parser.ast import AggregateExpr, Expr, VectorSelector, walk
from promlab.promql.values import EvalContext, Value, Vector
from promlab.storage.interface import Querier, Queryable, SeriesLayout

__all__ = ["DistributedEngine", "QueryStats", "SeriesSplitter"]


@dataclass(slots=True)
class QueryStats:
    """Where one distributed query spent its time (seconds) and what it moved.

    ``resolve_s`` is the client's time resolving and splitting the remote nodes' series,
    ``read_s``/``eval_s`` are summed over shards (worker time), ``wait_s`` is the client's
    wall time waiting for the workers, ``combine_s`` the client's merge/combine time.
    """

    shards: int = 0
    resolve_s: float = 0.0
    tasks: int = 0
    remote_nodes: list[str] = field(default_factory=list)
    read_s: float = 0.0
    eval_s: float = 0.0
    wait_s: float = 0.0
    combine_s: float = 0.0
    samples: int = 0
    series: int = 0
    bytes_to_client: int = 0
    #: Fetched from object storage by the workers (stores at a URL).
    store_bytes: int = 0
    store_requests: int = 0


class _Pending:
    """A remote node's shard tasks, combined on first use."""

    def __init__(self, remote: RemoteNode, futures: list[Any], stats: QueryStats) -> None:
        self.remote = remote
        self.futures = futures
        self.stats = stats
        self.value: Value | None = None

    def gather(self, client: Any, cancel: threading.Event | None) -> list[ShardResult]:
        from distributed import wait

        t0 = time.perf_counter()
        while cancel is not None:
            if cancel.is_set():
                client.cancel(self.futures)
                raise QueryCanceled("query was canceled in expression evaluation")
            if not wait(self.futures, timeout=0.2).not_done:  # type: ignore[no-untyped-call]
                break
        results: list[ShardResult] = client.gather(self.futures)
        self.stats.wait_s += time.perf_counter() - t0
        for r in results:
            self.stats.read_s += r.read_s
            self.stats.eval_s += r.eval_s
            self.stats.samples += r.samples
            self.stats.series += r.series
            self.stats.store_bytes += r.store_bytes
            self.stats.store_requests += r.store_requests
        return results


class _PlannedEvaluator(Evaluator):
    """An evaluator that takes remote nodes' values from the cluster instead of evaluating."""

    def __init__(self, queryable: Queryable, *, engine: DistributedEngine, plan: Plan,
                 pending: dict[int, _Pending], ctx: EvalContext, mint_ms: int, maxt_ms: int,
                 deadline: float | None, cancel: threading.Event | None) -> None:
        super().__init__(queryable, mint_ms=mint_ms, maxt_ms=maxt_ms,
                         max_samples=engine.max_samples, deadline=deadline, cancel=cancel)
        self._engine = engine
        self._plan = plan
        self._pending = pending
        self._steps = ctx.steps_ms

    def eval(self, node: Expr, ctx: EvalContext) -> Value:
        p = self._pending.get(id(node))
        if p is None or not np.array_equal(ctx.steps_ms, self._steps):
            return super().eval(node, ctx)
        self.check()
        if p.value is None:
            p.value = self._remote_value(p, ctx)
        value = p.value
        if not getattr(ctx, "delayed_name_removal", True) and isinstance(value, Vector) \
                and value.drop_name is not None and value.drop_name.any():
            fin = finalize_names(value)
            value = fin
        self.add_samples(sample_count(value))
        return value

    def _remote_value(self, p: _Pending, ctx: EvalContext) -> Value:
        results = p.gather(self._engine.client, self.cancel)
        stats = p.stats
        t0 = time.perf_counter()
        for r in results:
            ctx.annotations.merge(r.annotations)
        node = p.remote.node
        stats.bytes_to_client += sum(_frame_bytes(r.value) for r in results) + sum(
            _frame_bytes(v) for r in results for v in r.states.values())
        try:
            if p.remote.kind == "gather":
                vals = [r.value for r in results if r.value is not None]
                return merge_frames(vals, ctx.num_steps)
            assert isinstance(node, AggregateExpr)
            if any(r.fallback for r in results):
                return super().eval(node, ctx)
            param = super().eval(node.param, ctx) if node.param is not None else None
            first: dict[Labels, Labels] = {}
            for r in results:
                for g, k in r.first_keys:
                    if g not in first or k < first[g]:
                        first[g] = k
            return combine_partials(node, [r.states for r in results], first, param, ctx)
        finally:
            stats.combine_s += time.perf_counter() - t0


class SeriesSplitter:
    """Splits the series of one query's remote nodes into ``count`` shards (client side).

    A node's series are resolved from the label index over the time range the workers read
    for it (no samples are decoded), in the storage's order when the querier tells it
    (:class:`~promlab.storage.interface.SeriesLayout`), else in label order, and cut by
    :meth:`ShardMap.split <promlab.promql.distributed.shard.ShardMap.split>`. Nodes over the
    same time range share one querier (one listing of a remote store), nodes over the same
    selection share the split. Close it when the query's tasks are submitted.
    """

    def __init__(self, queryable: Queryable, count: int) -> None:
        self.queryable = queryable
        self.count = count
        self._queriers: dict[tuple[int, int], Querier] = {}
        self._splits: dict[Any, ShardMap] = {}

    def split(self, node: Expr, ctx: EvalContext) -> ShardMap | None:
        """The split of ``node``'s series; None for one shard or a node without selectors."""
        if self.count <= 1:
            return None
        bounds = data_time_range(node, ctx.start_ms, ctx.end_ms, lookback_ms=ctx.lookback_ms)
        selections = sorted({tuple(sorted((m.name, m.type.value, m.value) for m in n.matchers)):
                             n.matchers for n in walk(node) if isinstance(n, VectorSelector)
                             }.items())
        if bounds is None or not selections:
            return None
        key = (bounds, tuple(k for k, _ in selections))
        hit = self._splits.get(key)
        if hit is not None:
            return hit
        querier = self._queriers.get(bounds)
        if querier is None:
            querier = self._queriers[bounds] = self.queryable.querier(*bounds)
        if isinstance(querier, SeriesLayout):
            # Runs of the storage's order, not of label order: fewer row groups per worker.
            ordered = [ls for _, matchers in selections
                       for ls in querier.series_layout(list(matchers))]
        else:
            ordered = sorted({ls for _, matchers in selections
                              for ls in querier.series(list(matchers))})
        out = self._splits[key] = ShardMap.split(list(dict.fromkeys(ordered)), self.count)
        return out

    def close(self) -> None:
        queriers, self._queriers = list(self._queriers.values()), {}
        for q in queriers:
            q.close()


def _frame_bytes(value: Value | None) -> int:
    """The array bytes of a frame (what a worker sends back, labels aside)."""
    if value is None:
        return 0
    return sum(int(getattr(value, name).nbytes) for name in ("values", "present", "ts_ms", "offsets")
               if getattr(value, name, None) is not None)


class DistributedEngine(Engine):
    """An :class:`~promlab.promql.engine.Engine` that evaluates on a Dask cluster.

    Parameters
    ----------
    client
        A ``dask.distributed.Client``.
    location
        Where workers open the store (a directory or fsspec URL, with ``storage_options``) when
        a query runs over the store it names; other stores are sent to the workers as objects
        (in-process clusters, tests).
    shards
        Series shards per query (default: one per worker).
    engine_options
        As :class:`~promlab.promql.engine.Engine` (``lookback_delta``, ``max_samples``, ...).
    """

    def __init__(self, client: Any, *, location: StoreLocation | None = None,
                 location_store: Queryable | None = None, shards: int | None = None,
                 **engine_options: Any) -> None:
        super().__init__(**engine_options)
        self.client = client
        self.location = location
        self.location_store = location_store
        self.shards = shards
        self._scattered: dict[int, tuple[weakref.ref[Any], Any]] = {}
        #: Phases of the last query evaluated (see :class:`QueryStats`).
        self.last_stats = QueryStats()

    @classmethod
    def from_engine(cls, engine: Engine, client: Any, **options: Any) -> DistributedEngine:
        """A distributed engine with ``engine``'s settings (lookback, limits, features)."""
        out = cls.__new__(cls)
        out.__dict__.update(vars(engine))
        out.client = client
        out.location = options.get("location")
        out.location_store = options.get("location_store")
        out.shards = options.get("shards")
        out._scattered = {}
        out.last_stats = QueryStats()
        return out

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's URL (None without one)."""
        return getattr(self.client, "dashboard_link", None)

    def shard_count(self) -> int:
        """Shards per query: ``shards``, else the cluster's worker count (rechecked every 5 s)."""
        if self.shards:
            return int(self.shards)
        now = time.monotonic()
        cached = getattr(self, "_workers_seen", None)
        if cached is None or now - cached[0] > 5.0:
            workers = self.client.scheduler_info().get("workers", {})
            cached = (now, max(1, len(workers)))
            self._workers_seen = cached
        return int(cached[1])

    def _source(self, queryable: Queryable) -> Any:
        if self.location is not None and (self.location_store is None
                                          or queryable is self.location_store):
            return self.location
        # A store object goes to the workers once (and again if it is a new object).
        key = id(queryable)
        hit = self._scattered.get(key)
        if hit is None or hit[0]() is not queryable:
            fut = self.client.scatter(queryable, broadcast=True, hash=False)
            hit = (weakref.ref(queryable), fut)
            self._scattered[key] = hit
        return hit[1]

    def new_evaluator(self, queryable: Queryable, node: Expr, ctx: EvalContext, *, mint_ms: int,
                      maxt_ms: int, deadline: float | None,
                      cancel: threading.Event | None) -> Evaluator:
        plan = plan_query(node)
        stats = QueryStats()
        self.last_stats = stats
        if not plan.remote:
            return super().new_evaluator(queryable, node, ctx, mint_ms=mint_ms, maxt_ms=maxt_ms,
                                         deadline=deadline, cancel=cancel)
        n = self.shard_count()
        stats.shards = n
        source = self._source(queryable)
        timeout_s = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        pending: dict[int, _Pending] = {}
        splitter = SeriesSplitter(queryable, n)
        try:
            for remote in plan.remote:
                t0 = time.perf_counter()
                shard_map = splitter.split(remote.node, ctx)
                stats.resolve_s += time.perf_counter() - t0
                futures = self.client.map(run_shard, [source] * n, range(n), [n] * n,
                                          [remote.node] * n, [remote.kind] * n, [ctx] * n,
                                          max_samples=self.max_samples, timeout_s=timeout_s,
                                          shard_map=shard_map, pure=False)
                stats.tasks += n
                stats.remote_nodes.append(remote.kind)
                pending[id(remote.node)] = _Pending(remote, futures, stats)
        except PromlabError:
            raise
        finally:
            splitter.close()
        return _PlannedEvaluator(queryable, engine=self, plan=plan, pending=pending, ctx=ctx,
                                 mint_ms=mint_ms, maxt_ms=maxt_ms, deadline=deadline,
                                 cancel=cancel)

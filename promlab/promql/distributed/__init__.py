"""PromQL on a Dask cluster: shard-local subtrees and partial aggregations run on workers.

See :mod:`promlab.promql.distributed.plan` for what runs where and
:class:`~promlab.promql.distributed.engine.DistributedEngine` for the engine. Dask is an optional
dependency (``pip install promlab[dask]``); nothing here imports it.
"""

from promlab.promql.distributed.engine import DistributedEngine, QueryStats
from promlab.promql.distributed.plan import Plan, RemoteNode, plan_query
from promlab.promql.distributed.worker import StoreLocation

__all__ = ["DistributedEngine", "Plan", "QueryStats", "RemoteNode", "StoreLocation", "plan_query"]

"""PromQL: the parser, the evaluator and the engine that runs queries over any Queryable.

:class:`Engine` evaluates over a :class:`~promlab.storage.interface.Queryable` and returns a
:class:`Result` (the engine's value frames); ``Result.to_frame()`` gives the tidy DataFrame with
the ``df.prom`` accessor (see :mod:`promlab.promql.results`). People query through a
:class:`promlab.Session` or :func:`promlab.query`, which wrap this.
"""

from __future__ import annotations

from promlab.promql.engine import Engine, Result
from promlab.promql.results import PromAccessor

__all__ = ["Engine", "PromAccessor", "Result"]

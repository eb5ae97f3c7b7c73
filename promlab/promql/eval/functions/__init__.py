"""PromQL function implementations of the numpy evaluator.

Each module declares its implementations in its own ``function`` table;
:mod:`promlab.promql.eval.registry` merges them into ``FUNCTION_IMPLS``.
"""

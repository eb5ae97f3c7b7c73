"""Series and label lookups over several matcher sets: what the API's ``series``, ``labels`` and
``label/<name>/values`` endpoints and the Session's methods of the same names answer.

Each matcher set selects series as one PromQL selector does; the answer is the union over the
sets (Prometheus's repeated ``match[]``), sorted.

Examples
--------
>>> from promlab.model import Labels, Matcher, MatchType
>>> from promlab.storage import MemoryStorage
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0], [1.0])
>>> st.add_series(Labels({"__name__": "up", "job": "b"}), [0], [1.0])
>>> label_lookup(st, 0, 10, [[Matcher(MatchType.EQUAL, "job", "b")]], name="job")
['b']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from promlab.model import Labels, Matcher
from promlab.storage.interface import Queryable

__all__ = ["label_lookup", "series_lookup"]


def series_lookup(store: Queryable, mint_ms: int, maxt_ms: int,
                  matcher_sets: Iterable[Sequence[Matcher]]) -> list[Labels]:
    """Sorted label sets of the series with samples in ``[mint_ms, maxt_ms]`` matching any set."""
    q = store.querier(mint_ms, maxt_ms)
    try:
        found: set[Labels] = set()
        for ms in matcher_sets:
            found.update(q.series(list(ms)))
    finally:
        q.close()
    return sorted(found)


def label_lookup(store: Queryable, mint_ms: int, maxt_ms: int,
                 matcher_sets: Iterable[Sequence[Matcher]], *, name: str | None = None,
                 ) -> list[str]:
    """Sorted label names (``name`` None) or values of label ``name`` over the series with
    samples in range matching any set (an empty set matches every series)."""
    q = store.querier(mint_ms, maxt_ms)
    try:
        out: set[str] = set()
        for ms in matcher_sets:
            out.update(q.label_names(list(ms)) if name is None else q.label_values(name, list(ms)))
    finally:
        q.close()
    return sorted(out)

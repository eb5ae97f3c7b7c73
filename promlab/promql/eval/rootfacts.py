"""What an evaluator needs from a query's root, worked out once per tree (issue 14).

Parsed trees are immutable and a notebook or a dashboard asks the same queries again and again,
so what depends on the tree alone (which selectors read through the histogram-stats reader,
which matcher sets more than one selector reads, the root below its parentheses, whether any
sample timestamps are read) is found once per tree and remembered by ``id``; an entry holds its
tree, so no other tree can have that id while it is kept. Matcher sets' keys are remembered per
tuple of matchers (a selector's own) the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from promlab.model import Matcher
from promlab.promql.eval import histstats
from promlab.promql.parser.ast import Call, Expr, ParenExpr, VectorSelector, walk

__all__ = ["MatcherKey", "RootFacts", "clear", "matcher_key", "root_facts"]

#: A set of matchers in any order: sorted (name, type, value) triples.
MatcherKey = tuple[tuple[str, str, str], ...]

# Functions that read the sample timestamps vector selectors record.
_TIMESTAMP_READERS = frozenset({"timestamp", "info"})

#: Entries kept before the memos start over (many distinct trees: one-off queries).
_MAX_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class RootFacts:
    """What the whole query needs from its root ``tree``."""

    tree: Expr
    #: ``id()`` of the selectors read through the stats reader (:func:`histstats.stats_selectors`).
    stats_nodes: frozenset[int]
    #: Matcher sets that more than one selector uses (their selections are kept for reuse).
    shared_keys: frozenset[MatcherKey]
    #: The root below its parentheses.
    top: Expr
    #: Whether vector selectors keep each cell's sample timestamp: ``timestamp()`` or
    #: ``info()`` reads them, or the root is a bare selector (its result carries them out).
    keep_timestamps: bool


_FACTS: dict[int, RootFacts] = {}
_KEYS: dict[int, tuple[tuple[Matcher, ...], MatcherKey]] = {}


def matcher_key(matchers: Sequence[Matcher]) -> MatcherKey:
    """``matchers`` in any order as one key (remembered for a tuple, a selector's own)."""
    if type(matchers) is tuple:
        hit = _KEYS.get(id(matchers))
        if hit is not None and hit[0] is matchers:
            return hit[1]
    key = tuple(sorted((m.name, m.type.value, m.value) for m in matchers))
    if type(matchers) is tuple:
        if len(_KEYS) >= _MAX_ENTRIES:
            _KEYS.clear()
        _KEYS[id(matchers)] = (matchers, key)
    return key


def root_facts(root: Expr) -> RootFacts:
    """The :class:`RootFacts` of ``root`` (remembered per tree)."""
    hit = _FACTS.get(id(root))
    if hit is not None and hit.tree is root:
        return hit
    facts = _work_out(root)
    if len(_FACTS) >= _MAX_ENTRIES:
        _FACTS.clear()
    _FACTS[id(root)] = facts
    return facts


def clear() -> None:
    """Forget every remembered tree and key."""
    _FACTS.clear()
    _KEYS.clear()


def _work_out(root: Expr) -> RootFacts:
    seen: set[MatcherKey] = set()
    shared: set[MatcherKey] = set()
    keep_ts = False
    found: list[VectorSelector] = []
    for n in walk(root):
        if isinstance(n, VectorSelector):
            found.append(n)
        elif isinstance(n, Call) and n.func.name in _TIMESTAMP_READERS:
            keep_ts = True
    for sel in found if len(found) > 1 else ():  # one: nothing shared
        k = matcher_key(sel.matchers)
        (shared if k in seen else seen).add(k)
    top = root
    while isinstance(top, ParenExpr):
        top = top.expr
    return RootFacts(root, histstats.stats_selectors(root), frozenset(shared), top,
                     keep_ts or isinstance(top, VectorSelector))

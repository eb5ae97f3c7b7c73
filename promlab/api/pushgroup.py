"""One pushed group's state: its families as the Pushgateway holds them, their types, HELP
texts and push times (:class:`Group`, kept by :class:`promlab.api.push.PushStore`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from promlab.api.pushcheck import Pairs, Samples, go_type, identity
from promlab.model import Labels

__all__ = ["Group", "labels_of"]


def labels_of(pairs: tuple[tuple[str, str], ...]) -> Labels:
    """Labels of pairs sorted and unique by name (as :meth:`PushStore.push` keeps them)."""
    if all(v for _, v in pairs):
        return Labels.from_sorted_pairs(pairs)
    return Labels(pairs)  # drops the empty values


def _json_number(v: float) -> float | str:
    """``v`` for the state file: NaN and infinities as the strings ``float()`` reads back
    (strict JSON has no such numbers; files of earlier versions hold bare ``NaN`` tokens, which
    ``json.load`` reads too)."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


@dataclass
class Group:
    """One grouping key's metrics: family -> [(label pairs, value)], their types and HELP
    texts, and its push times."""

    key: Pairs
    families: dict[str, Samples] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    push_time: float = 0.0
    failure_time: float = 0.0
    helps: dict[str, str] = field(default_factory=dict)
    #: When each family (the two push-time ones too) was last set, as the Pushgateway's
    #: ``/api/v1/metrics`` shows it (:mod:`promlab.api.pushapi`).
    stamps: dict[str, float] = field(default_factory=dict)
    #: Per histogram family, its metrics (:func:`pushcheck.identity`) whose ``+Inf`` bucket
    #: was added by :func:`pushcheck.complete`, not pushed.
    implied: dict[str, frozenset[Pairs]] = field(default_factory=dict)
    # The families' samples as Labels and as state-file JSON, made once per change
    # (:meth:`changed`): a push rewrites the state of every group but changes one.
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def changed(self) -> None:
        """Call after changing :attr:`families`."""
        self._cache.clear()

    def metric_ids(self) -> dict[str, tuple[str, frozenset[Pairs]]]:
        """Family -> type and the identities of its metrics (see :func:`pushcheck.check`)."""
        out = self._cache.get("ids")
        if out is None:
            out = self._cache["ids"] = {}
            for name, samples in self.families.items():
                typ = go_type(self.types.get(name, ""))
                out[name] = (typ, frozenset(identity(p, typ) for p, _ in samples))
        return out

    def families_json(self) -> orjson.Fragment:
        """:attr:`families` as the state file holds them (NaN/Inf as strings)."""
        out = self._cache.get("json")
        if out is None:
            out = self._cache["json"] = orjson.Fragment(orjson.dumps(
                {n: s if all(math.isfinite(v) for _, v in s) else
                 [(p, _json_number(v)) for p, v in s] for n, s in self.families.items()}))
        return out

    def samples(self, labels_of: Callable[[tuple[tuple[str, str], ...]], Labels] = labels_of,
                ) -> list[tuple[Labels, float]]:
        """The samples, then ``push_time_seconds`` and ``push_failure_time_seconds``;
        ``labels_of`` makes Labels of sorted pairs (PushStore's: the same objects each push)."""
        fams = self._cache.get("samples")
        if fams is None:
            # -0 as 0: what a scrape of the Pushgateway's /metrics stores (Go writes it as 0)
            fams = self._cache["samples"] = [(labels_of(pairs), v + 0.0)
                                             for fam in self.families.values() for pairs, v in fam]
        out = list(fams)
        out.append((labels_of(_meta_pairs(self.key, "push_time_seconds")), self.push_time))
        out.append((labels_of(_meta_pairs(self.key, "push_failure_time_seconds")),
                    self.failure_time))
        return out


def _meta_pairs(key: tuple[tuple[str, str], ...], name: str) -> tuple[tuple[str, str], ...]:
    """The sorted pairs of a group's ``name`` series (its grouping labels and the name)."""
    return tuple(sorted({**dict(key), "__name__": name}.items()))

"""The storage boundary: what the engine, the scraper and the front ends may rely on.

Writers get an :class:`Appender`; readers get a :class:`Querier` from a :class:`Queryable`.
Nothing above storage imports anything but this module (and ``promlab.model``).

Times are int milliseconds since the epoch. Ranges are closed: ``[mint_ms, maxt_ms]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher

__all__ = [
    "AppendStats",
    "Appender",
    "Querier",
    "Queryable",
    "SelectHints",
    "SeriesSet",
    "Storage",
    "clamp_range",
]


@dataclass(frozen=True, slots=True)
class SeriesSet:
    """A columnar set of series (CSR layout).

    Series ``i`` has labels ``labels[i]`` and its samples are
    ``ts_ms[offsets[i]:offsets[i+1]]`` / ``values[offsets[i]:offsets[i+1]]``.

    Contract: ``labels`` are unique and sorted (``Labels`` ordering, as Prometheus's
    ``labels.Compare``); within a series timestamps are strictly increasing. Values may contain
    the staleness marker (:data:`promlab.model.STALE_NAN`). Arrays are read-only views that stay
    valid after the querier is closed. Series with no samples in range may be omitted.
    """

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @classmethod
    def empty(cls) -> SeriesSet:
        return cls([], np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_samples(self) -> int:
        return int(self.ts_ms.shape[0])

    def series(self, i: int) -> tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.labels[i], self.ts_ms[a:b], self.values[a:b]

    def lengths(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)


@dataclass(frozen=True, slots=True)
class SelectHints:
    """What the caller is about to do with a selection. Every field may be ignored by storage.

    ``start_ms``/``end_ms`` narrow the time range further than the querier's; ``step_ms``,
    ``range_ms`` and ``func`` describe the query (Prometheus's ``SelectHints``).
    """

    start_ms: int | None = None
    end_ms: int | None = None
    step_ms: int = 0
    range_ms: int = 0
    func: str = ""


def clamp_range(mint_ms: int, maxt_ms: int, hints: SelectHints | None) -> tuple[int, int]:
    """``[mint_ms, maxt_ms]`` narrowed by the hints' ``start_ms``/``end_ms`` when set."""
    if hints is not None:
        if hints.start_ms is not None:
            mint_ms = max(mint_ms, hints.start_ms)
        if hints.end_ms is not None:
            maxt_ms = min(maxt_ms, hints.end_ms)
    return mint_ms, maxt_ms


@runtime_checkable
class Querier(Protocol):
    """Read access to ``[mint_ms, maxt_ms]`` of a store. Close it when done."""

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        """Series matching all ``matchers`` with their samples in range (sorted by labels)."""
        ...

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted label names of series in range (of those matching ``matchers``, if given)."""
        ...

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted values of label ``name`` in range (of series matching ``matchers``)."""
        ...

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        """Label sets of series with samples in range matching ``matchers`` (sorted)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Queryable(Protocol):
    def querier(self, mint_ms: int, maxt_ms: int) -> Querier: ...


@dataclass(slots=True)
class AppendStats:
    """What a commit did: samples written and samples refused, by reason."""

    appended: int = 0
    out_of_order: int = 0
    out_of_bounds: int = 0
    duplicates: int = 0
    new_series: int = 0
    errors: list[str] = field(default_factory=list)


@runtime_checkable
class Appender(Protocol):
    """A batch of appends. Nothing is visible or durable before :meth:`commit`.

    An appender is used by one thread. ``commit`` makes the batch durable (written to the WAL
    and fsynced per the store's policy) and visible to queriers; ``rollback`` drops it. After
    either, the appender may be reused for a new batch.
    """

    def append(self, labels: Labels, ts_ms: int, value: float) -> None: ...

    def append_batch(
        self,
        series: Sequence[Labels],
        index: npt.NDArray[np.integer],
        ts_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Append ``len(index)`` samples; sample ``k`` belongs to ``series[index[k]]``."""
        ...

    def commit(self) -> AppendStats: ...

    def rollback(self) -> None: ...


@runtime_checkable
class Storage(Queryable, Protocol):
    """A store: appenders for writers, queriers for readers."""

    def appender(self) -> Appender: ...

    def close(self) -> None: ...

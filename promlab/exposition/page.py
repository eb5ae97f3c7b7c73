"""What a parsed exposition page is: columns, not objects.

A :class:`Page` holds the samples of one scrape body (or one chunk of an import file) as numpy
columns. Sample ``k`` belongs to series ``series[refs[k]]`` where ``series`` is the parser's
growing list of label sets (a parser caches each distinct series text to a ref, so a target's
second scrape re-uses every ``Labels`` object of the first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.model import Labels

__all__ = ["NO_TIMESTAMP", "Exemplar", "MetricMetadata", "Page", "RefusedSeries"]

# Sentinel in Page.timestamps_ms for "the line had no timestamp".
NO_TIMESTAMP = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """HELP/TYPE/UNIT of one metric family. ``type`` is Prometheus's word: counter, gauge,
    histogram, gaugehistogram, summary, info, stateset or unknown."""

    name: str
    type: str = "unknown"
    help: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Exemplar:
    """An OpenMetrics exemplar attached to sample ``index`` of the page."""

    index: int
    labels: Labels
    value: float
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RefusedSeries:
    """A series Prometheus's parser reads and its scrape refuses unless relabeling mends it.

    ``pairs`` are its labels as Prometheus reads them: sorted by name only (a repeated name
    keeps its line order, and a lookup sees the first), empty values kept, blanks read before
    the metric name kept in it. ``reason`` says what is wrong with the line as written.
    """

    reason: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Page:
    refs: npt.NDArray[np.int32]            # (n,) index into ``series``
    values: npt.NDArray[np.float64]        # (n,)
    timestamps_ms: npt.NDArray[np.int64]   # (n,) NO_TIMESTAMP where the line had none
    series: list[Labels]                   # the parser's series table (shared, append-only)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    exemplars: list[Exemplar] = field(default_factory=list)
    # Series ref -> names of labels the page wrote with an empty value (``instance=""``); the
    # series' Labels drop them (as Prometheus does), but scrape ``honor_labels`` handling needs
    # to know they were present. Only refs of this page that had such labels are listed.
    empty_labels: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # Series ref -> the sample Prometheus reads and refuses once relabeled (a parser's
    # ``keep_refused`` mode; the parser's table, shared and append-only). ``series[ref]`` holds
    # only the first value of each name; the scrape relabels ``RefusedSeries.pairs``.
    refused: Mapping[int, RefusedSeries] = field(default_factory=dict)
    # OpenMetrics: family name -> created timestamp (seconds) seen as *_created samples are
    # kept as ordinary samples too; nothing is dropped.

    def __len__(self) -> int:
        return int(self.refs.shape[0])

    def iter_samples(self) -> list[tuple[Labels, float, int | None]]:
        """Materialise ``(labels, value, timestamp_ms or None)`` tuples (slow; tests, small pages)."""
        out = []
        for r, v, t in zip(self.refs.tolist(), self.values.tolist(), self.timestamps_ms.tolist(), strict=True):
            out.append((self.series[r], v, None if t == NO_TIMESTAMP else t))
        return out

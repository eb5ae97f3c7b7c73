"""Per-target series cache: parsed-series ref → final (relabeled) series, computed once.

The exposition parser gives every distinct series text of a target a stable ref. The first time
a ref is seen, :class:`SeriesCache` attaches the target labels (``honor_labels`` rules,
``exported_`` prefixes), applies ``metric_relabel_configs`` and checks the label limits; later
scrapes only index numpy arrays with the page's refs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from promlab.config import ScrapeConfig
from promlab.config.relabel import process_dict
from promlab.model import METRIC_NAME, Labels

__all__ = ["DROPPED", "SeriesCache", "mutate_sample_labels", "report_labels"]

DROPPED = -1
EXPORTED_PREFIX = "exported_"


def mutate_sample_labels(lset: Labels, target: Labels, honor: bool,
                         empty: frozenset[str] = frozenset()) -> dict[str, str]:
    """Attach ``target`` labels to a scraped series as Prometheus's ``mutateSampleLabels``.

    ``empty`` names labels the page set to ``""`` explicitly: with ``honor`` they block the
    target's label of that name.
    """
    d = lset.to_dict()
    if honor:
        for k, v in target.pairs:
            if k not in d and k not in empty:
                d[k] = v
        return d
    conflicts: list[tuple[str, str]] = []
    for k, v in target.pairs:
        old = d.get(k)
        if old:
            conflicts.append((k, old))
        d[k] = v
    if conflicts:
        conflicts.sort(key=lambda kv: len(kv[0]))
        resolved: list[str] = []
        for k, v in conflicts:
            name = k
            while True:
                name = EXPORTED_PREFIX + name
                if name not in lset and name not in target and name not in resolved:
                    break
            resolved.append(name)
            d[name] = v
    return d


def report_labels(name: str, target: Labels) -> Labels:
    """Labels of a synthetic series (``up`` ...): the name plus the target's labels."""
    d = {METRIC_NAME: name}
    d.update(target.to_dict())
    return Labels(d)


class SeriesCache:
    """Maps parser refs to indices into :attr:`series` (the final label sets) or ``DROPPED``."""

    def __init__(self, cfg: ScrapeConfig, target_labels: Labels) -> None:
        self.cfg = cfg
        self.target_labels = target_labels
        self.series: list[Labels] = []
        self._index: dict[Labels, int] = {}
        self.ref_map: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.errors: dict[int, str] = {}  # final index -> label limit / validity error
        self.bad: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self._target_names = frozenset(target_labels)
        self._checks = bool(cfg.label_limit or cfg.label_name_length_limit or cfg.label_value_length_limit)

    def __len__(self) -> int:
        return len(self.series)

    def map(self, parser_series: Sequence[Labels],
            empty_labels: Mapping[int, tuple[str, ...]] | None = None) -> npt.NDArray[np.int64]:
        """The ref → index array, extended for refs the parser added since the last call.

        ``empty_labels`` is the page's :attr:`~promlab.exposition.Page.empty_labels` (parser
        ref → labels written with empty values; used only with ``honor_labels``).
        """
        n_old = self.ref_map.shape[0]
        n_new = len(parser_series)
        if n_new > n_old:
            empties = empty_labels if self.cfg.honor_labels and empty_labels else {}
            ext = np.empty(n_new - n_old, np.int64)
            for i in range(n_old, n_new):
                names = empties.get(i) if empties else None
                ext[i - n_old] = self._final(parser_series[i], frozenset(names) if names else frozenset())
            self.ref_map = np.concatenate([self.ref_map, ext])
            if len(self.series) > self.bad.shape[0]:
                bad = np.zeros(len(self.series), bool)
                bad[list(self.errors)] = True
                self.bad = bad
        return self.ref_map

    def _final(self, lset: Labels, empty: frozenset[str] = frozenset()) -> int:
        pairs = lset.pairs
        final: Labels | None = None
        if not self.cfg.metric_relabel_configs and not empty:
            # Fast path (the common case): no label of the page collides with a target label,
            # so the result is the two sorted pair lists merged.
            tnames = self._target_names
            if not any(k in tnames for k, _ in pairs):
                final = Labels.from_sorted_pairs(tuple(sorted(pairs + self.target_labels.pairs)))
        if final is None:
            d = mutate_sample_labels(lset, self.target_labels, self.cfg.honor_labels, empty)
            if self.cfg.metric_relabel_configs:
                out = process_dict(d, self.cfg.metric_relabel_configs)
                if out is None:
                    return DROPPED
                d = out
            final = Labels(d)
            if len(final) == 0:
                return DROPPED
        idx = self._index.get(final)
        if idx is None:
            idx = len(self.series)
            self.series.append(final)
            self._index[final] = idx
            if self._checks or self.cfg.metric_relabel_configs:
                err = self._check(final)
                if err:
                    self.errors[idx] = err
        return idx

    def _check(self, ls: Labels) -> str:
        cfg = self.cfg
        if METRIC_NAME not in ls:
            return f"missing metric name ({METRIC_NAME} label)"
        metric = ls.name[:50]
        if cfg.label_limit and len(ls) > cfg.label_limit:
            return f"label_limit exceeded (metric: {metric}, number of labels: {len(ls)}, limit: {cfg.label_limit})"
        for k, v in ls.pairs:
            if cfg.label_name_length_limit and len(k) > cfg.label_name_length_limit:
                return (f"label_name_length_limit exceeded (metric: {metric}, label name: {k[:50]}, "
                        f"length: {len(k)}, limit: {cfg.label_name_length_limit})")
            if cfg.label_value_length_limit and len(v) > cfg.label_value_length_limit:
                return (f"label_value_length_limit exceeded (metric: {metric}, label name: {k[:50]}, "
                        f'value: "{v[:50]}", length: {len(v)}, limit: {cfg.label_value_length_limit})')
        return ""

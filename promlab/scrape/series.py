"""Per-target series cache: parsed-series ref → final (relabeled) series, computed once.

The exposition parser gives every distinct series text of a target a stable ref. The first time
a ref is seen, :class:`SeriesCache` attaches the target labels (``honor_labels`` rules,
``exported_`` prefixes), applies ``metric_relabel_configs`` and checks the label limits; later
scrapes only index numpy arrays with the page's refs.

Samples Prometheus reads and refuses (a repeated label name, ``__name__`` beside a metric name,
text blanks before the name; the parser lists them as ``Page.refused``) are judged here, where
Prometheus judges them: its scrape loop (``scrapeLoop.append``, 2.42 and 3.x alike) attaches the
target labels and relabels a new series first, then drops an empty result, then requires a
name, then checks the names' validity, then the label limits; the head refuses a repeated label
name only when the series is appended. So a sample that relabeling drops, or whose repeat or
bad name relabeling removes, is no error, and one that stays bad fails the page there (it
counts as scraped, not as kept after relabeling). Relabeling a repeated name follows
Prometheus's label builder: a lookup sees the name's first value, a rule that sets or deletes
the name removes every copy of it, ``labelmap`` reads every copy (the last one wins).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from promlab.config import ScrapeConfig
from promlab.config.relabel import RelabelConfig, process_dict
from promlab.exposition.page import RefusedSeries
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


class _Touched(dict[str, str]):
    """A label dict that notes every name a relabel rule sets or deletes: Prometheus's label
    builder then drops all the page's copies of that name, a repeated one included."""

    def __init__(self, labels: dict[str, str]) -> None:
        super().__init__(labels)
        self.touched: set[str] = set()

    def __setitem__(self, key: str, value: str) -> None:
        self.touched.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.touched.add(key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.touched.add(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: str = "") -> str:
        self.touched.add(key)
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: str) -> None:
        changes = dict(*args, **kwargs)
        self.touched.update(changes)
        super().update(changes)


def _relabel_step(d: dict[str, str], extra: list[tuple[str, str]],
                  rc: RelabelConfig) -> tuple[dict[str, str] | None, list[tuple[str, str]]]:
    """One relabel rule on a label set with repeated names: ``d`` holds each name's first
    value, ``extra`` the later copies. Returns the new ``d`` (None: dropped) and ``extra``."""
    if not extra:
        return process_dict(d, [rc]), extra
    td = _Touched(d)
    if rc.action == "labelmap":  # Prometheus's labelmap walks every copy: the last one wins
        for k, v in extra:
            dict.__setitem__(td, k, v)
    out = process_dict(td, [rc])
    if out is None:
        return None, extra
    if rc.action == "labelmap":
        for k in {k for k, _ in extra} - td.touched:
            dict.__setitem__(td, k, d[k])
    return dict(td), [(k, v) for k, v in extra if k not in td.touched]


def _name_of(pair: tuple[str, str]) -> str:
    return pair[0]


def _show(pairs: Sequence[tuple[str, str]]) -> str:
    """A label list as Prometheus prints one (``{a="1", b="2"}``), repeats included."""
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in pairs) + "}"


def _invalid_names(pairs: Sequence[tuple[str, str]]) -> str:
    """Prometheus's refusal of a label set with an invalid name. Names are UTF-8 as in 3.x
    (promlab takes quoted UTF-8 names from pages), so only an empty name is invalid: a
    ``labelmap`` whose replacement expands to nothing makes one. 2.42 refuses legacy-invalid
    names (``1abc``, ``a.b``) here too."""
    return f"invalid metric name or label names: {_show(pairs)}"


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
        self._checks = bool(cfg.label_limit or cfg.label_name_length_limit or cfg.label_value_length_limit
                            # target relabeling (labelmap) can name a label "": every series fails
                            or "" in target_labels)

    def __len__(self) -> int:
        return len(self.series)

    def map(self, parser_series: Sequence[Labels],
            empty_labels: Mapping[int, tuple[str, ...]] | None = None,
            refused: Mapping[int, RefusedSeries] | None = None) -> npt.NDArray[np.int64]:
        """The ref → index array, extended for refs the parser added since the last call.

        ``empty_labels`` is the page's :attr:`~promlab.exposition.Page.empty_labels` (parser
        ref → labels written with empty values; used only with ``honor_labels``), ``refused``
        its :attr:`~promlab.exposition.Page.refused` (see the module).
        """
        n_old = self.ref_map.shape[0]
        n_new = len(parser_series)
        if n_new > n_old:
            empties = empty_labels if self.cfg.honor_labels and empty_labels else {}
            ext = np.empty(n_new - n_old, np.int64)
            for i in range(n_old, n_new):
                rs = refused.get(i) if refused else None
                if rs is not None:
                    ext[i - n_old] = self._final_refused(rs)
                    continue
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
        return self._index_of(final)

    def _index_of(self, final: Labels) -> int:
        """The index of a final label set, added (and checked) when new."""
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

    def _final_refused(self, bad: RefusedSeries) -> int:
        """:meth:`_final` of a refused sample (see the module): its index, with an error when
        it stays bad (such an index is its own, never shared with a valid series)."""
        cfg = self.cfg
        empties = {k for k, v in bad.pairs if not v}  # the builder deletes every copy of these
        first: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        for k, v in bad.pairs:
            if k in empties:
                continue
            if k in first:
                extra.append((k, v))
            else:
                first[k] = v
        d = mutate_sample_labels(Labels(first), self.target_labels, cfg.honor_labels, frozenset(empties))
        if not cfg.honor_labels:  # every target label was set: its page copies are gone
            extra = [(k, v) for k, v in extra if k not in self._target_names]
        for rc in cfg.metric_relabel_configs:
            out, extra = _relabel_step(d, extra, rc)
            if out is None:
                return DROPPED
            d = out
        if not d:
            return DROPPED
        names = [v for k, v in extra if k == METRIC_NAME] + [d.get(METRIC_NAME, "")]
        pairs = sorted([*d.items(), *extra], key=_name_of)
        err = ""
        if METRIC_NAME not in d:
            err = f"missing metric name ({METRIC_NAME} label)"
        elif "" in d:
            err = _invalid_names(pairs)
        elif any(n[:1] in (" ", "\t") for n in names):
            err = f"invalid metric name or label names: {_show(pairs)} ({bad.reason})"
        else:
            err = self._check_pairs(pairs, d[METRIC_NAME])
        if not err and extra:
            err = f'label name "{extra[0][0]}" is not unique: invalid sample (series {_show(pairs)})'
        if not err:
            return self._index_of(Labels(d))
        idx = len(self.series)
        self.series.append(Labels(d))
        self.errors[idx] = err
        return idx

    def _check(self, ls: Labels) -> str:
        if METRIC_NAME not in ls:
            return f"missing metric name ({METRIC_NAME} label)"
        if "" in ls:
            return _invalid_names(ls.pairs)
        return self._check_pairs(ls.pairs, ls.name)

    def _check_pairs(self, pairs: Sequence[tuple[str, str]], name: str) -> str:
        """The label limits (Prometheus's ``verifyLabelLimits``) of a named label set."""
        cfg = self.cfg
        metric = name[:50]
        if cfg.label_limit and len(pairs) > cfg.label_limit:
            return f"label_limit exceeded (metric: {metric}, number of labels: {len(pairs)}, limit: {cfg.label_limit})"
        for k, v in pairs:
            if cfg.label_name_length_limit and len(k) > cfg.label_name_length_limit:
                return (f"label_name_length_limit exceeded (metric: {metric}, label name: {k[:50]}, "
                        f"length: {len(k)}, limit: {cfg.label_name_length_limit})")
            if cfg.label_value_length_limit and len(v) > cfg.label_value_length_limit:
                return (f"label_value_length_limit exceeded (metric: {metric}, label name: {k[:50]}, "
                        f'value: "{v[:50]}", length: {len(v)}, limit: {cfg.label_value_length_limit})')
        return ""

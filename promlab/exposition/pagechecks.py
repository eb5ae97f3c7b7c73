"""Whole-page checks of the exposition parser and the choice of the error it reports.

:class:`PageChecks` sits between :class:`~promlab.exposition.cache.SeriesCache` (the series
table and prefix cache) and :class:`~promlab.exposition.parser.Parser` (page assembly): the
checks that need a page's lines and refs together, run once the lines are read, and the
search for the earliest bad line when one fails.

* :meth:`PageChecks._check_rules` — the OpenMetrics type rules of a whole exposition
  (:mod:`promlab.exposition.omrules`), their structural part memoised per target.
* :meth:`PageChecks._check_exemplar_names` — a Prometheus scrape's own exemplar rule.
* :meth:`PageChecks._empty_labels` — the labels written empty per series (``honor_labels``).
* :meth:`PageChecks._raise_earliest` / :meth:`PageChecks._first_bad_line` — Prometheus's
  parser streams, so the error of the earliest bad line wins, whichever pass found it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition.cache import SeriesCache
from promlab.exposition.comments import Comment
from promlab.exposition.metadata import build_metadata
from promlab.exposition.omrules import RuleError, build_plan, check_values
from promlab.exposition.syntax import LineError, RejectedSample, parse_sample

__all__ = ["PageChecks"]


class PageChecks(SeriesCache):
    """The parser's page-level checks and error choice (see the module); not used alone."""

    #: prometheus_client's rules (True) or a Prometheus scrape's (False); set by the parser.
    strict: bool
    #: Whether lines Prometheus refuses only after relabeling are kept (set by the parser).
    keep_refused: bool

    def _check_rules(self, events: list[tuple[int, Comment]],
                     events_key: tuple[tuple[int, Comment], ...], refs: npt.NDArray[np.int64],
                     values: npt.NDArray[np.float64], ts: npt.NDArray[np.int64],
                     ex_lines: list[tuple[int, tuple[list[tuple[str, str]], float, int | None]]],
                     lines: list[bytes], first_lineno: int) -> None:
        """OpenMetrics type rules (:mod:`promlab.exposition.omrules`) of a whole exposition;
        the structural part is memoised like the metadata."""
        try:
            memo = self._om_memo
            if memo is not None and memo[0] == events_key and np.array_equal(memo[1], refs):
                plan = memo[2]
            else:
                plan = build_plan(events, refs, self.series)
                self._om_memo = (events_key, refs.copy(), plan)
            check_values(plan, refs, values, ts, [i for i, _ in ex_lines])
        except RuleError as exc:
            raise ExpositionError(exc.reason, lineno=first_lineno + exc.index,
                                  line=lines[exc.index].decode(errors="replace")) from None

    def _check_exemplar_names(self, ex_lines: Sequence[tuple[int, object]], refs: npt.NDArray[np.int64],
                              lines: list[bytes], first_lineno: int) -> None:
        """Without the type rules, Prometheus's own check: only samples named ``*_total`` or
        ``*_bucket`` may carry an exemplar."""
        for i, _ in ex_lines:
            name = self.series[int(refs[i])].get("__name__", "")
            if not name.endswith(("_total", "_bucket")):
                raise ExpositionError(f"metric name {name!r} does not support exemplars (only "
                                      "*_total and *_bucket samples may carry one)",
                                      lineno=first_lineno + i, line=lines[i].decode(errors="replace"))

    def _empty_labels(self, lines: list[bytes], refs: npt.NDArray[np.int64],
                      line_empty: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        """Ref -> names of labels written empty, for the lines of series ever seen that way."""
        if self._empty_refs_arr.shape[0] != len(self._empty_refs):
            self._empty_refs_arr = np.array(sorted(self._empty_refs), np.int64)
        out: dict[int, tuple[str, ...]] = {}
        keys = self._empty_keys
        for i in np.flatnonzero(np.isin(refs, self._empty_refs_arr)).tolist():
            names = line_empty.get(i)
            if names is None:
                head = lines[i].rpartition(b" ")[0]
                names = keys.get(head) or keys.get(head.rpartition(b" ")[0])
            if names:
                out[int(refs[i])] = names
        return out

    def _first_bad_line(self, lines: list[bytes], om: bool, first_lineno: int) -> ExpositionError | None:
        """The error of the first malformed sample line (full grammar), if any."""
        for i, line in enumerate(lines):
            stripped = line.lstrip(b" \t")
            if not stripped or stripped[0] == 35:
                continue
            text = line.decode(errors="replace")
            try:
                parse_sample(text, om, refuse=not self.keep_refused)
            except LineError as exc:
                return ExpositionError(str(exc), lineno=first_lineno + i, line=text,
                                       read_as_sample=isinstance(exc, RejectedSample))
        return None

    def _raise_earliest(self, err: ExpositionError, before: list[bytes],
                        events: list[tuple[int, Comment]], refs: npt.NDArray[np.int64], om: bool,
                        first_lineno: int) -> NoReturn:
        """Raise ``err`` unless an earlier line is also wrong: a cached line's bad value in
        ``before`` (the lines ahead of ``err``'s) or a metadata problem among ``events``."""
        found = [err]
        earlier = self._first_bad_line(before, om, first_lineno)
        if earlier is not None:
            found.append(earlier)
        try:
            build_metadata(events, refs, self.names_of_refs(), self.name_ids, om, first_lineno,
                           strict=self.strict)
        except ExpositionError as exc:
            found.append(exc)
        raise min(found, key=lambda e: e.lineno)

"""The exposition parser: scrape bodies to numpy columns, with a per-target series cache.

How it is fast (pure Python + numpy, no loop over samples doing real work):

1. The body is split into lines with one ``bytes.split``; every line is split at its last space
   with ``map(bytes.rpartition, ...)`` (C speed, no Python frame per line), in slices of
   :data:`~promlab.exposition.cache.BULK_LINES` lines so other threads get the GIL in between.
2. The part before the last space is looked up in the parser's *prefix cache*, a dict from the
   raw bytes of a line's series text (``name{labels}`` plus any whitespace before the value) to a
   series ref. On a target's second scrape nearly every line hits, so labels are never parsed
   again and the same :class:`~promlab.model.Labels` objects are reused.
   The cache, the series table and the bulk token conversion live in :mod:`~.cache`
   (:class:`~.cache.SeriesCache`, a base of :class:`Parser`); the checks of a whole page and
   the choice of the error to report in :mod:`~.pagechecks`; here pages are made.
3. Lines that miss are split once more (``series value timestamp``) and looked up again.
4. What still misses (comments, new series, exemplars, odd spacing, errors) goes through the full
   line grammar in :mod:`promlab.exposition.syntax`, in line order; that is the only place new
   cache entries are made, and only for lines that parsed completely, so a malformed line never
   leaves a wrong entry behind.
5. Value and timestamp tokens of the cached lines are checked for stray characters with one
   ``bytes.translate`` over all of them and converted with ``map(float, ...)`` into a numpy
   array; if that fails, the page is re-read line by line to name the first bad line.
6. A whole OpenMetrics exposition is then checked against the type-specific rules
   (:mod:`promlab.exposition.omrules`): the structural part is memoised per target like the
   metadata, the value rules are a few numpy operations per page.

A cache key ``K`` is only ever the series text of a valid line followed by optional whitespace,
so ``K + b" " + token`` is a valid sample of that series with value ``token``: a hit can never
misread a line.
"""

from __future__ import annotations

import gc
from itertools import compress

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition.cache import (
    FIRST,
    LAST,
    SECOND,
    BadTokens,
    TokensNeedGrammar,
    bulk_lookup,
    bulk_map,
    drop,
    parse_floats,
    parse_timestamps,
    split_lines,
    take_at,
)
from promlab.exposition.comments import Comment, parse_comment
from promlab.exposition.linebreaks import join_broken_values
from promlab.exposition.metadata import build_metadata
from promlab.exposition.negotiate import negotiate
from promlab.exposition.page import NO_TIMESTAMP, Exemplar, Page
from promlab.exposition.pagechecks import PageChecks
from promlab.exposition.syntax import LineError, RejectedSample, parse_sample
from promlab.model import Labels

__all__ = ["Parser", "parse"]


class Parser(PageChecks):
    """Parses the scrape bodies of one target (or one import stream) into :class:`Page` columns.

    Keep one parser per target: it remembers every series text it has seen, so later scrapes
    skip label parsing and reuse the ``Labels`` objects in :attr:`series` (append-only; a
    page's ``refs`` index into it). Not thread-safe; different parsers may run in different
    threads (each :meth:`parse` pauses the cyclic garbage collector while it runs).

    Memory grows with the number of distinct series texts ever seen; a scrape loop whose
    target churns series can start a fresh parser when ``len(parser)`` grows far beyond the
    page size.

    Lines without a timestamp get :data:`~promlab.exposition.page.NO_TIMESTAMP` (int64 min,
    which is therefore not accepted as a timestamp). Parsed ``NaN`` values are ordinary NaNs,
    never the staleness marker.

    ``strict`` (the default) validates a page as prometheus_client does: at most one HELP/TYPE/
    UNIT per family, TYPE before the family's samples and, for a whole OpenMetrics exposition,
    the type rules of :mod:`promlab.exposition.omrules`. ``strict=False`` accepts what a
    Prometheus scrape accepts (the scraper's mode): only the line grammar and ``# EOF`` are
    checked, and a repeated metadata line replaces the earlier one.

    ``keep_refused`` (the scraper's, with ``strict=False``): a sample line Prometheus reads and
    refuses only after relabeling it (a repeated label name, ``__name__`` beside a name, text
    blanks before the name) does not fail the page; it gets a ref of its own, listed in the
    page's ``refused`` with the labels as Prometheus reads them, and the scrape decides.

    Examples
    --------
    >>> p = Parser()
    >>> page = p.parse(b'# TYPE up gauge\\nup{job="a"} 1\\nup{job="b"} 0 1700000000000\\n')
    >>> page.iter_samples()
    [(Labels({'__name__': 'up', 'job': 'a'}), 1.0, None), (Labels({'__name__': 'up', 'job': 'b'}), 0.0, 1700000000000)]
    >>> page.metadata["up"].type
    'gauge'
    """

    def __init__(self, *, strict: bool = True, keep_refused: bool = False) -> None:
        super().__init__()
        self.strict = strict
        self.keep_refused = keep_refused
        self._had_breaks = False

    # --- parsing ---------------------------------------------------------------------------------
    def parse(
        self,
        data: bytes | str,
        content_type: str | None = None,
        *,
        first_lineno: int = 1,
        require_eof: bool | None = None,
    ) -> Page:
        """Parse one body.

        Parameters
        ----------
        data
            The body (UTF-8 bytes; ``str`` is encoded).
        content_type
            The response ``Content-Type`` (see :func:`negotiate`), or ``"openmetrics"`` /
            ``"text"``; ``None`` means the Prometheus text format.
        first_lineno
            Line number of the first line of ``data`` in error messages (for chunked input).
        require_eof
            OpenMetrics only: whether ``# EOF`` must end the data (default ``True``). With
            ``False`` it may be missing, but if present it must still be the last line. The
            OpenMetrics type rules (:mod:`promlab.exposition.omrules`: contiguous families,
            suffixes by type, bucket order, ...) describe a whole exposition and are checked
            only when ``require_eof`` is true; ``False`` means a chunk of a stream (an import).

        Returns
        -------
        Page
            Samples in line order; lines without a timestamp have ``NO_TIMESTAMP``.

        Raises
        ------
        ExpositionError
            The data is malformed; ``lineno`` names the line. The parser stays usable.
        """
        # The bulk passes allocate a few objects per line; cyclic GC passes over them are pure
        # overhead (nothing here makes cycles), so collection is paused for the call.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        # Scraper's mode: text label values may span lines as Prometheus reads them (linebreaks).
        breaks = not self.strict and negotiate(content_type) == "text"
        try:
            joined = join_broken_values(data) if breaks and self._had_breaks else None
            self._had_breaks = joined is not None
            try:
                return self._parse_page(joined or data, content_type, first_lineno, require_eof)
            except ExpositionError:
                joined = join_broken_values(data) if breaks and joined is None else None
                if joined is None:
                    raise
                self._had_breaks = True
                return self._parse_page(joined, content_type, first_lineno, require_eof)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _parse_page(self, data: bytes | str, content_type: str | None, first_lineno: int,
                    require_eof: bool | None) -> Page:
        try:
            return self._parse(data, content_type, first_lineno, require_eof, bulk=True)
        except TokensNeedGrammar:  # a cached line's tokens were not plain "value [timestamp]"
            # (a tab inside, say) although every line is valid: the full grammar only.
            return self._parse(data, content_type, first_lineno, require_eof, bulk=False)

    def _parse(self, data: bytes | str, content_type: str | None, first_lineno: int,
               require_eof: bool | None, *, bulk: bool) -> Page:
        fmt = negotiate(content_type)
        om = fmt == "openmetrics"
        if isinstance(data, str):
            data = data.encode()
        if require_eof is None:
            require_eof = om
        lines = split_lines(data)
        if lines[-1] == b"":
            lines.pop()
        missing_eof: ExpositionError | None = None
        if om:
            if lines and lines[-1] == b"# EOF":
                lines.pop()
            elif require_eof:
                # Raised once the lines are read: like Prometheus's streaming parser, an error
                # in a line comes first (and a scrape counts the samples before the end).
                last = first_lineno + max(len(lines) - 1, 0)
                missing_eof = ExpositionError("data does not end with '# EOF'", lineno=last)
        n = len(lines)
        if n == 0:
            if missing_eof is not None:
                raise missing_eof
            return Page(np.zeros(0, np.int32), np.zeros(0, np.float64),
                        np.zeros(0, np.int64), self.series, refused=self.refused)
        cache = self.prefix_refs[fmt]

        idx2_parts: list[npt.NDArray[np.intp]] = []
        vtok2: list[bytes] = []
        ttok2: list[bytes] = []
        slow: list[int] = []

        # Pass 0 (when this parser's last page was mostly "series value timestamp", as in an
        # import): one rsplit per line instead of two rpartitions.
        todo: list[int] | None = None
        if bulk and self._ts_mode[fmt]:
            parts3 = bulk_map(bytes.rsplit, lines, b" ", 2)
            if min(map(len, parts3)) == 3:
                refs = np.full(n, -1, np.int64)
                s3 = bulk_map(FIRST, parts3)
                v3 = bulk_map(SECOND, parts3)
                t3 = bulk_map(LAST, parts3)
                todo = self._pass2(cache, np.arange(n), s3, v3, t3, refs, idx2_parts, vtok2, ttok2)
                if len(todo) > 256:
                    keep = (refs < 0).tolist()
                    todo = self._discover_many(lines, todo, list(compress(s3, keep)),
                                               list(compress(v3, keep)), list(compress(t3, keep)),
                                               om, cache, refs, idx2_parts, vtok2, ttok2)
            drop(parts3)

        # Pass 1: "series value".
        if todo is None:
            parts = bulk_map(bytes.rpartition, lines, b" ")
            heads = bulk_map(FIRST, parts)
            lasts = bulk_map(LAST, parts)
            refs = (bulk_lookup(cache, heads) if bulk
                    else np.full(n, -1, np.int64))
            hit1 = refs >= 0
        else:
            heads = [b""] * n
            lasts = [b""] * n
            parts = bulk_map(bytes.rpartition, take_at(lines, todo), b" ")
            for i, (h, _, t) in zip(todo, parts, strict=True):
                heads[i] = h
                lasts[i] = t
            todo_arr = np.array(todo, np.intp)
            r1 = bulk_lookup(cache, take_at(heads, todo))
            refs[todo_arr] = r1
            hit1 = np.zeros(n, bool)
            hit1[todo_arr[r1 >= 0]] = True
        drop(parts)
        miss = np.flatnonzero(refs < 0)

        # Pass 2: "series value timestamp".
        if not bulk:
            slow = miss.tolist()
        elif miss.size:
            ml = miss.tolist()
            every = len(ml) == n  # e.g. an import chunk where every line has a timestamp
            sub_lasts = lasts if every else take_at(lasts, ml)
            parts = bulk_map(bytes.rpartition, heads if every else take_at(heads, ml), b" ")
            h2 = bulk_map(FIRST, parts)
            v2 = bulk_map(LAST, parts)
            del parts
            slow = self._pass2(cache, miss, h2, v2, sub_lasts, refs, idx2_parts, vtok2, ttok2)
            if len(slow) > 256:
                keep = (refs[miss] < 0).tolist()
                slow = self._discover_many(lines, slow, list(compress(h2, keep)),
                                           list(compress(v2, keep)), list(compress(sub_lasts, keep)),
                                           om, cache, refs, idx2_parts, vtok2, ttok2)
        idx2 = np.concatenate(idx2_parts) if idx2_parts else np.zeros(0, np.intp)
        self._ts_mode[fmt] = bulk and idx2.shape[0] * 10 >= n * 9

        # Pass 3: the full grammar, in line order.
        slow_idx: list[int] = []
        slow_val: list[float] = []
        slow_ts_idx: list[int] = []
        slow_ts: list[int] = []
        events: list[tuple[int, Comment]] = []
        ex_lines: list[tuple[int, tuple[list[tuple[str, str]], float, int | None]]] = []
        comments = self.comment_cache[fmt]
        late1: list[int] = []
        late2: list[int] = []
        line_empty: dict[int, tuple[str, ...]] = {}
        for i in slow:
            line = lines[i]
            c = comments.get(line)
            if c is not None:
                events.append((i, c))
                continue
            # An earlier line of this page may have cached the series by now.
            last = lasts[i]
            ref = cache.get(heads[i], -1) if bulk else -1
            if ref >= 0 and last:
                refs[i] = ref
                late1.append(i)
                continue
            head2, _, tok = heads[i].rpartition(b" ")
            ref = cache.get(head2, -1) if bulk else -1
            if ref >= 0 and tok and last:
                refs[i] = ref
                late2.append(i)
                vtok2.append(tok)
                ttok2.append(last)
                continue
            if om:
                if not line:
                    self._raise_earliest(ExpositionError("empty line", lineno=first_lineno + i, line=""),
                                         lines[:i], events, refs, om, first_lineno)
                is_comment = line[0] == 35
            else:
                stripped = line.lstrip(b" \t")
                if not stripped:
                    continue
                is_comment = stripped[0] == 35
            try:
                text = line.decode()
            except UnicodeDecodeError:
                if is_comment and not om and _plain_comment(line):
                    continue  # a Prometheus scrape does not look inside other comments
                self._raise_earliest(ExpositionError("invalid UTF-8", lineno=first_lineno + i,
                                                     line=line.decode(errors="replace")),
                                     lines[:i], events, refs, om, first_lineno)
            try:
                if is_comment:
                    c = parse_comment(text, om)
                    comments[line] = c
                    events.append((i, c))
                    continue
                s = parse_sample(text, om, refuse=not self.keep_refused)
            except LineError as exc:
                self._raise_earliest(ExpositionError(str(exc), lineno=first_lineno + i, line=text,
                                                     read_as_sample=isinstance(exc, RejectedSample)),
                                     lines[:i], events, refs, om, first_lineno)
            if s.refused is None:
                empty = self._empties(s.pairs)
                ref = self._intern(s.pairs)
            else:
                empty = ()
                ref = self._intern_refused(s.pairs, s.refused)
            self._remember(cache, line, text, s.prefix_end, ref, empty)
            if empty:
                line_empty[i] = empty
            refs[i] = ref
            slow_idx.append(i)
            slow_val.append(s.value)
            if s.timestamp_ms is not None:
                slow_ts_idx.append(i)
                slow_ts.append(s.timestamp_ms)
            if s.exemplar_error is not None:
                if self.strict:
                    self._raise_earliest(ExpositionError(s.exemplar_error, lineno=first_lineno + i, line=text),
                                         lines[:i], events, refs, om, first_lineno)
                # A Prometheus scrape keeps the sample and drops the exemplar it cannot store.
            elif s.exemplar is not None:
                ex_lines.append((i, s.exemplar))

        # Bulk conversion of the cached lines' tokens.
        values = np.empty(n, np.float64)
        ts = np.full(n, NO_TIMESTAMP, np.int64)
        if late1:
            hit1[late1] = True
        if late2:
            idx2 = np.concatenate([idx2, np.array(late2, np.intp)])
        try:
            all_hit1 = bool(hit1.all())
            if hit1.any():
                values[hit1] = parse_floats(lasts if all_hit1 else list(compress(lasts, hit1.tolist())))
            if vtok2:
                values[idx2] = parse_floats(vtok2)
                ts[idx2] = parse_timestamps(ttok2, om)
        except BadTokens:
            bad = self._first_bad_line(lines, om, first_lineno)
            if bad is None:
                raise TokensNeedGrammar from None
            self._raise_earliest(bad, [], events, refs, om, first_lineno)
        if slow_idx:
            values[slow_idx] = slow_val
        if slow_ts_idx:
            ts[slow_ts_idx] = slow_ts

        # Metadata and its order checks depend only on the comment lines and on which series
        # each line holds: a target's unchanged page reuses the last result.
        memo = self._meta_memo.get(fmt)
        events_key = tuple(events)
        if memo is not None and memo[0] == events_key and np.array_equal(memo[1], refs):
            metadata = dict(memo[2])
        else:
            metadata = build_metadata(events, refs, self.names_of_refs(), self.name_ids, om,
                                      first_lineno, strict=self.strict)
            self._meta_memo[fmt] = (events_key, refs.copy(), dict(metadata))
        if missing_eof is not None:
            raise missing_eof
        if om and require_eof and self.strict:
            self._check_rules(events, events_key, refs, values, ts, ex_lines, lines, first_lineno)
        elif ex_lines and not self.strict:
            self._check_exemplar_names(ex_lines, refs, lines, first_lineno)
        empty_labels = self._empty_labels(lines, refs, line_empty) if self._empty_refs else {}
        sel = refs >= 0
        all_samples = bool(sel.all())
        exemplars: list[Exemplar] = []
        if ex_lines:
            sample_index = np.cumsum(sel) - 1
            for i, (pairs, val, ets) in ex_lines:
                exemplars.append(Exemplar(int(sample_index[i]), Labels(pairs), val, ets))
        drop(lines, heads, lasts)
        if all_samples:
            return Page(refs.astype(np.int32), values, ts, self.series, metadata, exemplars,
                        empty_labels, self.refused)
        return Page(refs[sel].astype(np.int32), values[sel], ts[sel], self.series, metadata,
                    exemplars, empty_labels, self.refused)


def _plain_comment(line: bytes) -> bool:
    """Whether a text-format ``#`` line is neither HELP nor TYPE (whatever its encoding)."""
    words = line.lstrip(b" \t")[1:].split(None, 1)
    return not words or words[0] not in (b"HELP", b"TYPE")


def parse(data: bytes | str, content_type: str | None = None) -> Page:
    """Parse one body with a fresh :class:`Parser` (no cache carried over).

    Examples
    --------
    >>> page = parse(b'# TYPE x counter\\nx_total 3\\n# EOF\\n', "application/openmetrics-text")
    >>> page.values.tolist(), str(page.series[page.refs[0]])
    ([3.0], 'x_total')
    """
    return Parser().parse(data, content_type)

"""The exposition parser's per-target series cache and bulk token conversion.

:class:`SeriesCache` is the state and lookup half of :class:`~promlab.exposition.parser.Parser`:
the interned series table (``series``, one :class:`~promlab.model.Labels` per distinct label
set), the *prefix cache* from a line's raw series text to its series ref, and the helpers that
fill it (:meth:`SeriesCache.discover`, :meth:`SeriesCache._remember`) or resolve whole pages
of lines against it (:meth:`SeriesCache._pass2`). :func:`parse_floats` and
:func:`parse_timestamps` convert the value and timestamp tokens of cached lines in bulk (raising
:class:`BadTokens` so that the page is re-read line by line). Page assembly, rule checks and
error reporting live in :mod:`promlab.exposition.parser`.

The bulk passes (:func:`split_lines`, :func:`bulk_map`, :func:`bulk_lookup` and the conversions)
work in slices of :data:`BULK_LINES` lines. One C-level pass over a 200k-line page holds the GIL
for 50-200 ms without a break, and the interpreter can only hand the GIL to another thread (the
scrape event loop, when a big page is parsed on a worker thread) between bytecodes: slices bound
that wait to a few milliseconds for the price of a few list extensions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from promlab.exposition.comments import Comment
from promlab.exposition.omrules import OmPlan
from promlab.exposition.page import NO_TIMESTAMP, MetricMetadata, RefusedSeries
from promlab.exposition.syntax import LineError, parse_sample
from promlab.model import Labels

__all__ = ["BULK_LINES", "SeriesCache", "bulk_lookup", "bulk_map", "drop", "split_lines"]

_DIGITS = b"0123456789 "
_FLOAT_CHARS = b"0123456789.eE+-aAfFiInNtTyY "
_REAL_CHARS = b"0123456789.eE+- "
_I64 = np.iinfo(np.int64)
T = TypeVar("T")


class BadTokens(Exception):
    """Bulk conversion failed; the page is re-read line by line to name the line."""


class TokensNeedGrammar(Exception):
    """Bulk conversion failed but no line is malformed: parse with the full grammar."""


FIRST = itemgetter(0)
SECOND = itemgetter(1)
LAST = itemgetter(2)

BULK_LINES = 8192
"""Lines per C-level pass (a few milliseconds each); see the module docstring."""
_SPLIT_BYTES = BULK_LINES * 128


def split_lines(data: bytes) -> list[bytes]:
    """``data.split(b"\\n")``, in slices of about :data:`_SPLIT_BYTES` cut at newlines."""
    size = len(data)
    if size <= 2 * _SPLIT_BYTES:
        return data.split(b"\n")
    out: list[bytes] = []
    start = 0
    while True:
        end = data.find(b"\n", start + _SPLIT_BYTES) if start + _SPLIT_BYTES < size else -1
        if end < 0:
            out.extend(data[start:].split(b"\n"))
            return out
        out.extend(data[start:end].split(b"\n"))
        start = end + 1


def bulk_map(func: Callable[..., T], seq: Sequence[Any], *consts: Any) -> list[T]:
    """``list(map(func, seq, repeat(c), ...))`` in slices of :data:`BULK_LINES`."""
    n = len(seq)
    if n <= BULK_LINES:
        return list(map(func, seq, *map(repeat, consts)))
    out: list[T] = []
    for i in range(0, n, BULK_LINES):
        out.extend(map(func, seq[i:i + BULK_LINES], *map(repeat, consts)))
    return out


def drop(*lists: list[Any]) -> None:
    """Empty big lists in slices from the end: freeing 200k objects in one ``del`` is one long
    C-level pass too."""
    for lst in lists:
        while len(lst) > BULK_LINES:
            del lst[-BULK_LINES:]
        lst.clear()


def bulk_lookup(cache: dict[bytes, int], keys: Sequence[bytes]) -> npt.NDArray[np.int64]:
    """``cache.get(key, -1)`` of every key as an int64 array, in slices of :data:`BULK_LINES`."""
    return _fromiter(cache.get, keys, np.int64, -1)


def _fromiter(func: Callable[..., Any], seq: Sequence[Any], dtype: type[np.generic],
              *consts: Any) -> npt.NDArray[Any]:
    n = len(seq)
    if n <= BULK_LINES:
        return np.fromiter(map(func, seq, *map(repeat, consts)), dtype, n)
    out = np.empty(n, dtype)
    for i in range(0, n, BULK_LINES):
        j = min(i + BULK_LINES, n)
        out[i:j] = np.fromiter(map(func, seq[i:j], *map(repeat, consts)), dtype, j - i)
    return out


def take_at(seq: list[bytes], idx: list[int]) -> list[bytes]:
    if not idx:
        return []
    if len(idx) == 1:
        return [seq[idx[0]]]
    return list(itemgetter(*idx)(seq))


def parse_floats(tokens: list[bytes]) -> npt.NDArray[np.float64]:
    n = len(tokens)
    if n > BULK_LINES:  # slice by slice (each picks its own int or float path: same values)
        out = np.empty(n, np.float64)
        for i in range(0, n, BULK_LINES):
            out[i:i + BULK_LINES] = parse_floats(tokens[i:i + BULK_LINES])
        return out
    joined = b" ".join(tokens)
    if not joined.translate(None, _DIGITS):
        # Only unsigned integers (counters, bucket counts): int() is twice as fast as float().
        try:
            return _fromiter(int, tokens, np.float64)
        except (ValueError, OverflowError):
            pass
    if joined.translate(None, _FLOAT_CHARS):
        raise BadTokens
    try:
        out = _fromiter(float, tokens, np.float64)
    except ValueError:
        raise BadTokens from None
    if not np.isfinite(out).all():
        _check_specials(tokens, out)
    return out


def _check_specials(tokens: list[bytes], values: npt.NDArray[np.float64]) -> None:
    """Raise :class:`BadTokens` for an Inf or NaN that Go's ``ParseFloat`` would not produce:
    a finite literal out of the float64 range (``1e400``) or a signed NaN (``+NaN``)."""
    idx = np.flatnonzero(~np.isfinite(values)).tolist()
    # Checked once per distinct text (a page repeats a few: NaN, +Inf), gathered at C level.
    distinct = set(itemgetter(*idx)(tokens)) if len(idx) > 1 else {tokens[idx[0]]}
    for tok in distinct:
        word = tok.lstrip(b"+-")[:1]
        if word not in (b"i", b"I", b"n", b"N") or (word in (b"n", b"N") and tok[:1] in b"+-"):
            raise BadTokens


def parse_timestamps(tokens: list[bytes], om: bool) -> npt.NDArray[np.int64]:
    joined = b" ".join(tokens)
    if not om or not joined.translate(None, _DIGITS):
        # Text-format timestamps are unsigned digits only (Prometheus's lexer: ``[0-9]+``).
        if joined.translate(None, _DIGITS):
            raise BadTokens
        try:
            out = _fromiter(int, tokens, np.int64)
        except (ValueError, OverflowError):
            raise BadTokens from None
        if not om:
            if (out == NO_TIMESTAMP).any():
                raise BadTokens
            return out
        if (out <= 9_200_000_000_000_000 // 1000).all():
            return out * 1000  # OpenMetrics whole seconds
    if joined.translate(None, _REAL_CHARS):
        raise BadTokens
    try:
        secs = _fromiter(float, tokens, np.float64)
    except ValueError:
        raise BadTokens from None
    if not np.isfinite(secs).all() or (np.abs(secs) > 9.2e15).any():
        raise BadTokens
    return np.trunc(secs * 1000.0).astype(np.int64)  # as tokens.seconds_to_ms


class SeriesCache:
    """The interned series table and prefix cache of one exposition parser (see the module)."""

    def __init__(self) -> None:
        self.series: list[Labels] = []
        self._by_pairs: dict[tuple[tuple[str, str], ...], int] = {}
        # Per format: raw series text -> ref, and raw comment line -> parsed comment.
        self.prefix_refs: dict[str, dict[bytes, int]] = {"text": {}, "openmetrics": {}}
        self.comment_cache: dict[str, dict[bytes, Comment]] = {"text": {}, "openmetrics": {}}
        self.name_ids: dict[str, int] = {}  # metric name -> id
        self._ref_name: list[int] = []
        self._ref_name_arr = np.zeros(0, np.int64)
        self._ts_mode = {"text": False, "openmetrics": False}
        self._meta_memo: dict[str, tuple[tuple[tuple[int, Comment], ...], npt.NDArray[np.int64],
                                         dict[str, MetricMetadata]]] = {}
        self._om_memo: tuple[tuple[tuple[int, Comment], ...], npt.NDArray[np.int64], OmPlan] | None = None
        # Series texts (cache keys) written with empty label values -> those labels' names.
        self._empty_keys: dict[bytes, tuple[str, ...]] = {}
        self._empty_refs: set[int] = set()
        self._empty_refs_arr = np.zeros(0, np.int64)
        # Refs of samples Prometheus reads and refuses unless relabeling mends them (scraper's mode).
        self.refused: dict[int, RefusedSeries] = {}

    def __len__(self) -> int:
        return len(self.series)

    # --- series table ------------------------------------------------------------------------
    def _intern(self, pairs: list[tuple[str, str]]) -> int:
        pairs.sort()
        key = tuple(pairs)
        if not all(map(SECOND, pairs)):  # an empty value: the label is absent (as in Prometheus)
            key = tuple(p for p in key if p[1])
        ref = self._by_pairs.get(key)
        if ref is None:
            ref = len(self.series)
            self.series.append(Labels.from_sorted_pairs(key))
            self._by_pairs[key] = ref
            name = next(v for k, v in key if k == "__name__")
            self._ref_name.append(self.name_ids.setdefault(name, len(self.name_ids)))
        return ref

    def _intern_refused(self, pairs: list[tuple[str, str]], reason: str) -> int:
        """The ref of a refused sample (see :class:`~promlab.exposition.page.RefusedSeries`).

        Its key, the pairs as Prometheus reads them, never equals a valid one (it repeats a
        name or its name has blanks); its ``series`` entry keeps each name's first value.
        """
        key = tuple(sorted(pairs, key=FIRST))
        ref = self._by_pairs.get(key)
        if ref is None:
            ref = len(self.series)
            first: dict[str, str] = {}
            for k, v in key:
                first.setdefault(k, v)
            self.series.append(Labels(first))
            self._by_pairs[key] = ref
            self.refused[ref] = RefusedSeries(reason, key)
            name = next(v for k, v in key if k == "__name__")
            self._ref_name.append(self.name_ids.setdefault(name, len(self.name_ids)))
        return ref

    @staticmethod
    def _pass2(cache: dict[bytes, int], idx: npt.NDArray[np.intp], h2: list[bytes], v2: list[bytes],
               last: list[bytes], refs: npt.NDArray[np.int64], idx_out: list[npt.NDArray[np.intp]],
               vtok: list[bytes], ttok: list[bytes]) -> list[int]:
        """Look up "series value timestamp" keys; record hits, return the lines still unresolved."""
        r2 = bulk_lookup(cache, h2)
        hit = r2 >= 0
        if hit.any():
            # A hit needs non-empty value and timestamp tokens ("K  v" is not "K v ts").
            if b"" in v2:
                hit &= np.fromiter(map(len, v2), np.int64, len(v2)) > 0
            if b"" in last:
                hit &= np.fromiter(map(len, last), np.int64, len(last)) > 0
        if not hit.any():
            out: list[int] = idx.tolist()
            return out
        idx_out.append(idx[hit])
        refs[idx[hit]] = r2[hit]
        if hit.all():
            vtok.extend(v2)
            ttok.extend(last)
            return []
        keep = hit.tolist()
        vtok.extend(compress(v2, keep))
        ttok.extend(compress(last, keep))
        rest: list[int] = idx[~hit].tolist()
        return rest

    def _remember(self, cache: dict[bytes, int], line: bytes, text: str, prefix_end: int, ref: int,
                  empty: tuple[str, ...] = ()) -> None:
        """Cache the series text of a parsed line (not if whitespace other than one separator
        follows it, so that ``key + b" " + token`` always means "this series, value token").
        ``empty`` names the labels the line wrote with empty values."""
        key = line[: len(line) - len(text[prefix_end:].encode())]
        if key and key[-1] not in b" \t":
            cache[key] = ref
            if empty:
                self._empty_keys[key] = empty
        if empty:
            self._empty_refs.add(ref)

    @staticmethod
    def _empties(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
        """Names of the labels with empty values (before :meth:`_intern` drops them)."""
        if all(map(SECOND, pairs)):
            return ()
        return tuple(k for k, v in pairs if not v)

    def _discover_many(self, lines: list[bytes], todo: list[int], keys: list[bytes],
                       vtok: list[bytes], ttok: list[bytes], om: bool, cache: dict[bytes, int],
                       refs: npt.NDArray[np.int64], idx_out: list[npt.NDArray[np.intp]],
                       vtok_out: list[bytes], ttok_out: list[bytes]) -> list[int]:
        """Unresolved "series value timestamp" lines (``todo``, with their split ``keys``/
        ``vtok``/``ttok``) of series new to this parser: when few distinct series account for
        many lines (an import chunk), parse one line of each and look the rest up again."""
        first = dict(zip(reversed(keys), reversed(todo), strict=True))
        if len(first) * 4 >= len(todo):
            return todo
        for i in sorted(first.values()):
            self.discover(lines[i], om, cache)
        return self._pass2(cache, np.array(todo, np.intp), keys, vtok, ttok, refs, idx_out,
                           vtok_out, ttok_out)

    def discover(self, line: bytes, om: bool, cache: dict[bytes, int]) -> None:
        """Parse ``line`` only to learn its series (errors are left for the ordered pass)."""
        if not line or line.lstrip(b" \t")[:1] in (b"#", b""):
            return
        try:
            text = line.decode()
            s = parse_sample(text, om)
        except (UnicodeDecodeError, LineError):
            return
        empty = self._empties(s.pairs)
        self._remember(cache, line, text, s.prefix_end, self._intern(s.pairs), empty)

    def names_of_refs(self) -> npt.NDArray[np.int64]:
        """Per series ref, the id (in :attr:`name_ids`) of its metric name."""
        if self._ref_name_arr.shape[0] != len(self._ref_name):
            self._ref_name_arr = np.array(self._ref_name, np.int64)
        return self._ref_name_arr

"""The exposition parser: scrape bodies to numpy columns, with a per-target series cache.

How it is fast (pure Python + numpy, no loop over samples doing real work):

1. The body is split into lines with one ``bytes.split``; every line is split at its last space
   with ``map(bytes.rpartition, ...)`` (C speed, no Python frame per line).
2. The part before the last space is looked up in the parser's *prefix cache*, a dict from the
   raw bytes of a line's series text (``name{labels}`` plus any whitespace before the value) to a
   series ref. On a target's second scrape nearly every line hits, so labels are never parsed
   again and the same :class:`~promlab.model.Labels` objects are reused.
3. Lines that miss are split once more (``series value timestamp``) and looked up again.
4. What still misses (comments, new series, exemplars, odd spacing, errors) goes through the full
   line grammar in :mod:`promlab.exposition.syntax`, in line order; that is the only place new
   cache entries are made, and only for lines that parsed completely, so a malformed line never
   leaves a wrong entry behind.
5. Value and timestamp tokens of the cached lines are checked for stray characters with one
   ``bytes.translate`` over all of them and converted with ``map(float, ...)`` into a numpy
   array; if that fails, the page is re-read line by line to name the first bad line.

A cache key ``K`` is only ever the series text of a valid line followed by optional whitespace,
so ``K + b" " + token`` is a valid sample of that series with value ``token``: a hit can never
misread a line.
"""

from __future__ import annotations

import gc
from itertools import compress, repeat
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition.negotiate import negotiate
from promlab.exposition.page import NO_TIMESTAMP, Exemplar, MetricMetadata, Page
from promlab.exposition.syntax import Comment, LineError, parse_comment, parse_sample
from promlab.model import Labels

__all__ = ["Parser", "parse"]

_FLOAT_CHARS = b"0123456789.eE+-aAfFiInNtTyY "
_INT_CHARS = b"0123456789+- "
_REAL_CHARS = b"0123456789.eE+- "
_I64 = np.iinfo(np.int64)

# Sample names of a family, by type (text format / OpenMetrics).
_TEXT_SUFFIXES = {
    "summary": ("", "_sum", "_count"),
    "histogram": ("_bucket", "_sum", "_count"),
}
_OM_SUFFIXES = {
    "counter": ("_total", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


class _BadTokens(Exception):
    """Bulk conversion failed; the page is re-read line by line to name the line."""


_FIRST = itemgetter(0)
_LAST = itemgetter(2)


def _take(seq: list[bytes], idx: list[int]) -> list[bytes]:
    if not idx:
        return []
    if len(idx) == 1:
        return [seq[idx[0]]]
    return list(itemgetter(*idx)(seq))


def _floats(tokens: list[bytes]) -> npt.NDArray[np.float64]:
    if b" ".join(tokens).translate(None, _FLOAT_CHARS):
        raise _BadTokens
    try:
        return np.fromiter(map(float, tokens), np.float64, len(tokens))
    except ValueError:
        raise _BadTokens from None


def _timestamps(tokens: list[bytes], om: bool) -> npt.NDArray[np.int64]:
    if not om:
        if b" ".join(tokens).translate(None, _INT_CHARS):
            raise _BadTokens
        try:
            return np.fromiter(map(int, tokens), np.int64, len(tokens))
        except (ValueError, OverflowError):
            raise _BadTokens from None
    if b" ".join(tokens).translate(None, _REAL_CHARS):
        raise _BadTokens
    try:
        secs = np.fromiter(map(float, tokens), np.float64, len(tokens))
    except ValueError:
        raise _BadTokens from None
    if not np.isfinite(secs).all() or (np.abs(secs) > 9.2e15).any():
        raise _BadTokens
    return np.trunc(np.round(secs * 1e6) / 1000.0).astype(np.int64)


class Parser:
    """Parses the scrape bodies of one target (or one import stream) into :class:`Page` columns.

    Keep one parser per target: it remembers every series text it has seen, so later scrapes
    skip label parsing and reuse the ``Labels`` objects in :attr:`series` (append-only; a
    page's ``refs`` index into it). Not thread-safe.

    Examples
    --------
    >>> p = Parser()
    >>> page = p.parse(b'# TYPE up gauge\\nup{job="a"} 1\\nup{job="b"} 0 1700000000000\\n')
    >>> page.iter_samples()
    [(Labels({'__name__': 'up', 'job': 'a'}), 1.0, None), (Labels({'__name__': 'up', 'job': 'b'}), 0.0, 1700000000000)]
    >>> page.metadata["up"].type
    'gauge'
    """

    def __init__(self) -> None:
        self.series: list[Labels] = []
        self._by_pairs: dict[tuple[tuple[str, str], ...], int] = {}
        self._prefix: dict[str, dict[bytes, int]] = {"text": {}, "openmetrics": {}}
        self._comments: dict[str, dict[bytes, Comment]] = {"text": {}, "openmetrics": {}}
        self._name_ids: dict[str, int] = {}
        self._ref_name: list[int] = []
        self._ref_name_arr = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.series)

    # --- series table ------------------------------------------------------------------------
    def _intern(self, pairs: list[tuple[str, str]]) -> int:
        key = tuple(sorted(p for p in pairs if p[1] != ""))
        ref = self._by_pairs.get(key)
        if ref is None:
            ref = len(self.series)
            self.series.append(Labels.from_sorted_pairs(key))
            self._by_pairs[key] = ref
            name = next(v for k, v in key if k == "__name__")
            self._ref_name.append(self._name_ids.setdefault(name, len(self._name_ids)))
        return ref

    def _names_of_refs(self) -> npt.NDArray[np.int64]:
        if self._ref_name_arr.shape[0] != len(self._ref_name):
            self._ref_name_arr = np.array(self._ref_name, np.int64)
        return self._ref_name_arr

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
            ``False`` it may be missing, but if present it must still be the last line.

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
        try:
            return self._parse(data, content_type, first_lineno, require_eof)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _parse(self, data: bytes | str, content_type: str | None, first_lineno: int,
               require_eof: bool | None) -> Page:
        fmt = negotiate(content_type)
        om = fmt == "openmetrics"
        if isinstance(data, str):
            data = data.encode()
        if require_eof is None:
            require_eof = om
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        if om:
            if lines and lines[-1] == b"# EOF":
                lines.pop()
            elif require_eof:
                last = first_lineno + max(len(lines) - 1, 0)
                raise ExpositionError("data does not end with '# EOF'", lineno=last)
        n = len(lines)
        if n == 0:
            return Page(np.zeros(0, np.int32), np.zeros(0, np.float64),
                        np.zeros(0, np.int64), self.series)
        cache = self._prefix[fmt]

        # Pass 1: "series value".
        parts = list(map(bytes.rpartition, lines, repeat(b" ")))
        heads = list(map(_FIRST, parts))
        lasts = list(map(_LAST, parts))
        del parts
        refs = np.fromiter(map(cache.get, heads, repeat(-1)), np.int64, n)
        hit1 = refs >= 0
        miss = np.flatnonzero(~hit1)

        # Pass 2: "series value timestamp".
        idx2 = np.zeros(0, np.intp)
        vtok2: list[bytes] = []
        ttok2: list[bytes] = []
        slow: list[int] = []
        if miss.size:
            ml = miss.tolist()
            every = len(ml) == n  # e.g. an import chunk where every line has a timestamp
            parts = list(map(bytes.rpartition, heads if every else _take(heads, ml), repeat(b" ")))
            h2 = list(map(_FIRST, parts))
            v2 = list(map(_LAST, parts))
            del parts
            r2 = np.fromiter(map(cache.get, h2, repeat(-1)), np.int64, len(ml))
            hit2 = r2 >= 0
            if hit2.any():
                idx2 = miss[hit2]
                refs[idx2] = r2[hit2]
                sub_lasts = lasts if every else _take(lasts, ml)
                if hit2.all():
                    vtok2, ttok2 = v2, sub_lasts
                else:
                    h2l = hit2.tolist()
                    vtok2 = list(compress(v2, h2l))
                    ttok2 = list(compress(sub_lasts, h2l))
                slow = miss[~hit2].tolist()
            else:
                slow = ml

        # Pass 3: the full grammar, in line order.
        slow_idx: list[int] = []
        slow_val: list[float] = []
        slow_ts_idx: list[int] = []
        slow_ts: list[int] = []
        events: list[tuple[int, Comment]] = []
        ex_lines: list[tuple[int, tuple[list[tuple[str, str]], float, int | None]]] = []
        comments = self._comments[fmt]
        late1: list[int] = []
        late2: list[int] = []
        for i in slow:
            line = lines[i]
            # An earlier line of this page may have cached the series by now.
            ref = cache.get(heads[i], -1)
            if ref >= 0:
                refs[i] = ref
                late1.append(i)
                continue
            head2, _, tok = heads[i].rpartition(b" ")
            ref = cache.get(head2, -1)
            if ref >= 0:
                refs[i] = ref
                late2.append(i)
                vtok2.append(tok)
                ttok2.append(lasts[i])
                continue
            c = comments.get(line)
            if c is not None:
                events.append((i, c))
                continue
            if om:
                if not line:
                    raise ExpositionError("empty line", lineno=first_lineno + i, line="")
                is_comment = line[0] == 35
            else:
                stripped = line.lstrip(b" \t")
                if not stripped:
                    continue
                is_comment = stripped[0] == 35
            try:
                text = line.decode()
            except UnicodeDecodeError:
                raise ExpositionError("invalid UTF-8", lineno=first_lineno + i,
                                      line=line.decode(errors="replace")) from None
            try:
                if is_comment:
                    c = parse_comment(text, om)
                    comments[line] = c
                    events.append((i, c))
                    continue
                s = parse_sample(text, om)
            except LineError as exc:
                raise ExpositionError(str(exc), lineno=first_lineno + i, line=text) from None
            ref = self._intern(s.pairs)
            cache[line[: len(line) - len(text[s.prefix_end:].encode())]] = ref
            refs[i] = ref
            slow_idx.append(i)
            slow_val.append(s.value)
            if s.timestamp_ms is not None:
                slow_ts_idx.append(i)
                slow_ts.append(s.timestamp_ms)
            if s.exemplar is not None:
                ex_lines.append((i, s.exemplar))

        # Bulk conversion of the cached lines' tokens.
        values = np.empty(n, np.float64)
        ts = np.full(n, NO_TIMESTAMP, np.int64)
        if late1:
            hit1[late1] = True
        if late2:
            idx2 = np.concatenate([idx2, np.array(late2, np.intp)])
        try:
            if hit1.any():
                values[hit1] = _floats(list(compress(lasts, hit1.tolist())))
            if vtok2:
                values[idx2] = _floats(vtok2)
                ts[idx2] = _timestamps(ttok2, om)
        except _BadTokens:
            self._raise_first_bad_line(lines, om, first_lineno)
            raise ExpositionError("invalid value") from None
        if slow_idx:
            values[slow_idx] = slow_val
        if slow_ts_idx:
            ts[slow_ts_idx] = slow_ts

        metadata = self._metadata(events, refs, om, first_lineno)
        sel = refs >= 0
        all_samples = bool(sel.all())
        exemplars: list[Exemplar] = []
        if ex_lines:
            sample_index = np.cumsum(sel) - 1
            for i, (pairs, val, ets) in ex_lines:
                exemplars.append(Exemplar(int(sample_index[i]), Labels(pairs), val, ets))
        if all_samples:
            return Page(refs.astype(np.int32), values, ts, self.series, metadata, exemplars)
        return Page(refs[sel].astype(np.int32), values[sel], ts[sel], self.series, metadata,
                    exemplars)

    def _raise_first_bad_line(self, lines: list[bytes], om: bool, first_lineno: int) -> None:
        for i, line in enumerate(lines):
            stripped = line.lstrip(b" \t")
            if not stripped or stripped[0] == 35:
                continue
            text = line.decode(errors="replace")
            try:
                parse_sample(text, om)
            except LineError as exc:
                raise ExpositionError(str(exc), lineno=first_lineno + i, line=text) from None

    def _metadata(self, events: list[tuple[int, Comment]], refs: npt.NDArray[np.int64], om: bool,
                  first_lineno: int) -> dict[str, MetricMetadata]:
        if not events:
            return {}
        fields: dict[str, dict[str, str]] = {}
        checks: list[tuple[int, str, str]] = []
        for i, c in events:
            kind = c.kind
            if not kind:
                continue
            if kind == "EOF":
                raise ExpositionError("unexpected data after '# EOF'", lineno=first_lineno + i,
                                      line="# EOF")
            key = kind.lower()
            f = fields.setdefault(c.name, {})
            if key in f:
                raise ExpositionError(f"second {kind} line for metric {c.name!r}",
                                      lineno=first_lineno + i)
            f[key] = c.text
            if om or kind == "TYPE":
                checks.append((i, kind, c.name))
        self._check_metadata_order(checks, fields, refs, om, first_lineno)
        out = {}
        for name, f in fields.items():
            typ = f.get("type", "unknown")
            out[name] = MetricMetadata(name, "unknown" if typ == "untyped" else typ,
                                       f.get("help", ""), f.get("unit", ""))
        return out

    def _check_metadata_order(self, checks: list[tuple[int, str, str]],
                              fields: dict[str, dict[str, str]], refs: npt.NDArray[np.int64],
                              om: bool, first_lineno: int) -> None:
        """Raise if a TYPE (OpenMetrics: any metadata) line follows samples of its family."""
        if not checks:
            return
        lines_with = np.flatnonzero(refs >= 0)
        if not lines_with.size:
            return
        nid = self._names_of_refs()[refs[lines_with]]
        first = np.full(len(self._name_ids), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first, nid, lines_with)
        table = _OM_SUFFIXES if om else _TEXT_SUFFIXES
        for i, kind, name in checks:
            typ = fields[name].get("type", "unknown")
            for suffix in table.get(typ, ("",)):
                j = self._name_ids.get(name + suffix)
                if j is not None and first[j] < i:
                    raise ExpositionError(
                        f"{kind} line for metric {name!r} after its samples (line "
                        f"{first_lineno + int(first[j])})", lineno=first_lineno + i)


def parse(data: bytes | str, content_type: str | None = None) -> Page:
    """Parse one body with a fresh :class:`Parser` (no cache carried over).

    Examples
    --------
    >>> page = parse(b'# TYPE x counter\\nx_total 3\\n# EOF\\n', "application/openmetrics-text")
    >>> page.values.tolist(), str(page.series[page.refs[0]])
    ([3.0], 'x_total')
    """
    return Parser().parse(data, content_type)

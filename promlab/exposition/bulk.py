"""Bulk parsing of import chunks: whole columns at once, no Python work per line.

An import file (``promtool tsdb create-blocks-from openmetrics`` input) is mostly lines
``series value timestamp`` where long runs of consecutive lines hold the same series. The
:class:`~promlab.exposition.Parser` handles any body but still does a little Python work per
line; :func:`parse_columns` does none, working on the chunk as one numpy byte array:

1. line ends are the newlines; a line's last two spaces (found with one ``searchsorted`` over all
   space positions) split it into ``series``, ``value`` and ``timestamp``;
2. each line's series text is compared with the previous line's, 8 bytes at a time through an
   unaligned ``uint64`` view of the buffer: only the first line of each run of equal series
   texts is looked up in the parser's series cache (a miss is parsed once with the full
   grammar, exactly as :meth:`Parser.parse` would);
3. value and timestamp tokens of plain decimal form (``-?digits[.digits]``) are converted with
   SWAR arithmetic on 8-byte words (eight digits per few integer operations, the trick of
   simdjson's ``parse_eight_digits_unrolled``): ``value = mantissa / 10**decimals``, which is
   the correctly rounded float (both operands are exact below 2**53), the same as ``float()``;
   other tokens (``NaN``, ``+Inf``, ``1e-3``, long ones) go through the parser's converters;
4. comment lines are parsed and checked (duplicate or misplaced metadata) as the parser does.

Whenever something is not in that shape — an unknown series text that does not parse, a
malformed token, an empty line, text-format whitespace — it returns ``None`` and the caller
parses the chunk with :meth:`Parser.parse`, which names the bad line. So the result is always
the one :meth:`Parser.parse` would give.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition.cache import BadTokens, parse_floats, parse_timestamps
from promlab.exposition.comments import parse_comment
from promlab.exposition.metadata import build_metadata
from promlab.exposition.parser import Parser
from promlab.exposition.tokens import LineError

__all__ = ["parse_columns"]

_PAD = 8
_FRONT = bytes(_PAD - 1) + b"\n"
_ZEROS = np.uint64(0x3030303030303030)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
# _KEEP[k]: the top k bytes of a word (the last k characters of the 8 bytes ending there).
_KEEP = np.array([0] + [((1 << (8 * k)) - 1) << (8 * (8 - k)) for k in range(1, 9)], np.uint64)
# _HEAD[k]: the low k bytes of a word (the first k characters of the 8 bytes starting there).
_HEAD = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)
_POW10 = 10 ** np.arange(19, dtype=np.int64)
_POW10F = 10.0 ** np.arange(23)

Columns = tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.int64]]


def _words(buf: bytes | bytearray) -> npt.NDArray[np.uint64]:
    """``w[i]`` = the 8 bytes starting at ``buf[i]`` as a little-endian uint64 (a view)."""
    return np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, offset=0, strides=(1,))


def _digits8(w: npt.NDArray[np.uint64], end: npt.NDArray[np.int64], length: npt.NDArray[np.int64]
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Value of the ``length`` (0..8) characters ending at ``end`` and whether all are digits."""
    keep = _KEEP[length]
    x = (w[end - 8] & keep) | (_ZEROS & ~keep)
    ok = ((x & _HIGH_NIBBLES) == _ZEROS) & (((x + _SIXES) & _HIGH_NIBBLES) == _ZEROS)
    x = ((x & _LOW_NIBBLES) * np.uint64(2561)) >> np.uint64(8)
    x = ((x & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    x = ((x & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return (x & np.uint64(0xFFFFFFFF)).astype(np.int64), ok


def _digits16(w: npt.NDArray[np.uint64], end: npt.NDArray[np.int64], length: npt.NDArray[np.int64]
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Like :func:`_digits8` for 0..16 characters (longer: not ok)."""
    lo_len = np.minimum(length, 8)
    lo, ok = _digits8(w, end, lo_len)
    hi_len = length - lo_len
    if not hi_len.any():
        return lo, ok
    hi, ok_hi = _digits8(w, end - 8, np.minimum(hi_len, 8))
    return hi * 100_000_000 + lo, ok & ok_hi & (hi_len <= 8)


def _decimals(buf: bytes | bytearray, w: npt.NDArray[np.uint64], d: npt.NDArray[np.int64],
              start: npt.NDArray[np.int64], end: npt.NDArray[np.int64], max_digits: int
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_],
                         npt.NDArray[np.bool_]]:
    """Tokens ``buf[start:end]`` of the form ``-?digits[.digits]`` as exact decimals.

    ``d`` is the position of the first ``.`` at or after each ``start`` (any value if none
    before ``end``). Returns ``(mantissa, decimals, negative, ok)``; ``ok`` is False for tokens
    of another form or with more than ``max_digits`` digits (or more than 8 after the point).
    """
    a = np.frombuffer(buf, np.uint8)
    neg = a[start] == 45
    s = start + neg
    has_dot = (d >= s) & (d < end)
    int_end = np.where(has_dot, d, end)
    int_len = int_end - s
    frac_len = np.where(has_dot, end - d - 1, 0)
    ip, ok = _digits16(w, int_end, int_len)
    ok &= (int_len + frac_len >= 1) & (int_len + frac_len <= max_digits) & (frac_len <= 8)
    if has_dot.any():
        fp, ok_f = _digits8(w, end, np.minimum(frac_len, 8))
        ok &= ok_f
        mant = ip * _POW10[np.minimum(frac_len, 8)] + fp
    else:
        mant = ip
    return mant, frac_len, neg, ok


def _values(buf: bytes | bytearray, w: npt.NDArray[np.uint64], d: npt.NDArray[np.int64],
            start: npt.NDArray[np.int64], end: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    mant, frac, neg, ok = _decimals(buf, w, d, start, end, 15)
    out = mant / _POW10F[np.minimum(frac, 22)]
    np.negative(out, out=out, where=neg)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        out[bad] = parse_floats([bytes(buf[i:j]) for i, j in zip(start[bad].tolist(), end[bad].tolist(), strict=True)])
    return out


def _times(buf: bytes | bytearray, w: npt.NDArray[np.uint64], d: npt.NDArray[np.int64],
           start: npt.NDArray[np.int64], end: npt.NDArray[np.int64], om: bool) -> npt.NDArray[np.int64]:
    mant, frac, neg, ok = _decimals(buf, w, d, start, end, 18)
    if om:
        # Float seconds (correctly rounded: mantissa and power of ten are exact below 2**53)
        # times 1000, truncated: Prometheus's int64(ts * 1000), what the parser's path gives.
        ok &= ~neg & (mant < 1 << 53)
        secs = np.where(ok, mant, 0) / _POW10F[np.minimum(frac, 22)]  # (no cast of the rest)
        out: npt.NDArray[np.int64] = np.trunc(secs * 1000.0).astype(np.int64)
    else:
        # Unsigned digits only, as the parser (Prometheus's lexer): no sign, no fraction.
        first = np.frombuffer(buf, np.uint8)[start]
        ok &= (frac == 0) & (first >= 48) & (first <= 57)
        out = mant
    if not ok.all():
        bad = np.flatnonzero(~ok)
        out[bad] = parse_timestamps([bytes(buf[i:j]) for i, j in zip(start[bad].tolist(), end[bad].tolist(), strict=True)], om)
    return out


def _same_as_previous(buf: bytes | bytearray, w: npt.NDArray[np.uint64], starts: npt.NDArray[np.int64],
                      plen: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """For each line: is its series text byte-equal to the previous line's?

    Lines whose texts have equal length and agree at five 8-byte probes form candidate runs;
    a run is confirmed when ``buf.count(b"\\n" + text + b" ")`` over its bytes finds every one of
    its lines (each occurrence starts at a distinct line). Runs that fail are compared in full.
    """
    n = starts.shape[0]
    same = np.zeros(n, bool)
    if n < 2:
        return same
    same[1:] = plen[1:] == plen[:-1]
    if int(plen.min()) >= 8:  # probes at the start, the middle and the end of the texts
        probes = [w[starts], w[starts + (plen >> 1) - 4], w[starts + plen - 8]]
    else:
        probes = [w[starts] & _HEAD[np.minimum(plen, 8)]]
    for probe in probes:
        same[1:] &= probe[1:] == probe[:-1]
    heads = np.flatnonzero(~same)
    ends = np.append(heads[1:], n)
    long_runs = np.flatnonzero(ends - heads >= 2)
    for i, j in zip(heads[long_runs].tolist(), ends[long_runs].tolist(), strict=True):
        s, p = int(starts[i]), int(plen[i])
        pat = bytes(buf[s - 1:s + p]) + b" "
        if buf.count(pat, s - 1, int(starts[j - 1]) + p + 1) != j - i:
            same[i + 1:j] = _compare_words(w, starts[i:j], plen[i:j])[1:]
    return same


def _compare_words(w: npt.NDArray[np.uint64], starts: npt.NDArray[np.int64],
                   plen: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Exact version of :func:`_same_as_previous`: every 8-byte word of the texts compared."""
    same = np.zeros(starts.shape[0], bool)
    same[1:] = plen[1:] == plen[:-1]
    cand = np.flatnonzero(same)
    if not cand.size:
        return same
    cur, prev, ln = starts[cand], starts[cand - 1], plen[cand]
    eq = np.ones(cand.shape[0], bool)
    for off in range(0, int(ln.max()), 8):
        eq &= ((w[cur + off] ^ w[prev + off]) & _HEAD[np.clip(ln - off, 0, 8)]) == 0
    same[cand] = eq
    return same


_K = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
              np.uint64)


def _head_refs(parser: Parser, buf: bytes | bytearray, w: npt.NDArray[np.uint64], lo: int,
               hi: int, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64],
               line_ends: npt.NDArray[np.int64], om: bool) -> npt.NDArray[np.int64] | None:
    """Refs of the run heads' series texts.

    Many heads (interleaved series, as in a histogram's buckets written time by time) are first
    grouped by a hash of their length and three 8-byte probes; a head whose text is byte-equal
    (all words compared) to its group's first takes that one's ref, so only one text per group
    is looked up in the parser's cache.
    """
    n = starts.shape[0]
    if n < 256:
        out = _series_refs(parser, buf, lo, hi, starts.tolist(), ends.tolist(), line_ends.tolist(), om)
        return None if out is None else np.asarray(out, np.int64)
    plen = ends - starts
    if int(plen.min()) >= 8:
        fp = ((w[starts] * _K[0]) ^ (w[starts + (plen >> 1) - 4] * _K[1])
              ^ (w[ends - 8] * _K[2]) ^ (plen.astype(np.uint64) * _K[3]))
    else:
        fp = (w[starts] & _HEAD[np.minimum(plen, 8)]) ^ (plen.astype(np.uint64) * _K[3])
    _, first, inv = np.unique(fp, return_index=True, return_inverse=True)
    rep = first[inv.reshape(-1)]
    rs = starts[rep]
    eq = plen == plen[rep]
    for off in range(0, int(plen.max()), 8):
        eq &= ((w[starts + off] ^ w[rs + off]) & _HEAD[np.clip(plen - off, 0, 8)]) == 0
    own = (rep == np.arange(n)) | ~eq
    need = np.flatnonzero(own)
    got = _series_refs(parser, buf, lo, hi, starts[need].tolist(), ends[need].tolist(),
                       line_ends[need].tolist(), om)
    if got is None:
        return None
    refs = np.empty(n, np.int64)
    refs[need] = got
    copy = np.flatnonzero(~own)
    refs[copy] = refs[rep[copy]]
    return refs


def _series_refs(parser: Parser, buf: bytes | bytearray, lo: int, hi: int, starts: list[int],
                 ends: list[int], line_ends: list[int], om: bool) -> list[int] | None:
    """Refs of the series texts ``buf[starts[i]:ends[i]]`` (unknown ones parsed once)."""
    fmt = "openmetrics" if om else "text"
    cache = parser.prefix_refs[fmt]
    if len(starts) > 64 and not isinstance(buf, bytes):
        text = _FRONT + bytes(buf[lo:hi])  # hashable slices, at the same offsets
        keys = list(map(text.__getitem__, map(slice, [s - lo + _PAD for s in starts],
                                              [e - lo + _PAD for e in ends])))
    else:
        keys = [bytes(buf[a:b]) for a, b in zip(starts, ends, strict=True)] \
            if not isinstance(buf, bytes) else [buf[a:b] for a, b in zip(starts, ends, strict=True)]
    out = list(map(cache.get, keys, repeat(-1)))
    if -1 in out:
        for i in [i for i, r in enumerate(out) if r < 0]:
            ref = cache.get(keys[i], -1)
            if ref < 0:
                parser.discover(bytes(buf[starts[i]:line_ends[i]]), om, cache)
                ref = cache.get(keys[i], -1)
                if ref < 0:
                    return None
            out[i] = ref
    return out


def parse_columns(parser: Parser, data: bytes | bytearray, om: bool, first_lineno: int = 1, *,
                  lo: int | None = None, hi: int | None = None) -> Columns | None:
    """Parse complete lines (ending in a newline) into ``(refs, values, timestamps_ms)``.

    ``data`` is the lines, or with ``lo``/``hi`` a buffer whose ``data[lo:hi]`` are the lines,
    where ``data[lo - 1]`` is a newline, ``lo >= 8`` and at least 8 bytes follow ``hi`` (any
    content): then nothing is copied. A trailing ``# EOF`` line is ignored (the caller checks
    where it is). Returns ``None`` when the lines need :meth:`Parser.parse` (see the module
    docstring).
    """
    if lo is None or hi is None:
        if not data or data[-1] != 10:
            return None
        return parse_columns(parser, _FRONT + data + bytes(_PAD), om, first_lineno,
                             lo=_PAD, hi=_PAD + len(data))
    buf = data
    if hi <= lo or buf[hi - 1] != 10 or buf[lo - 1] != 10 or lo < _PAD or len(buf) < hi + _PAD:
        return None
    a = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(a[lo - 1:hi] == 10) + (lo - 1)  # nl[0]: the newline before the lines
    starts = nl[:-1] + 1
    nl = nl[1:]
    if om and hi - lo >= 6 and buf[hi - 6:hi] == b"# EOF\n" and (hi - 6 == lo or buf[hi - 7] == 10):
        nl, starts = nl[:-1], starts[:-1]
    if nl.shape[0] == 0:
        return (np.zeros(0, np.int32), np.zeros(0, np.float64), np.zeros(0, np.int64))
    first = a[starts]
    if ((first == 10) | (first == 32) | (first == 9)).any():
        return None  # empty lines, leading whitespace
    is_comment = first == 35
    events = []
    if is_comment.any():
        ci = np.flatnonzero(is_comment)
        comments = parser.comment_cache["openmetrics" if om else "text"]
        for i, s, e in zip(ci.tolist(), starts[ci].tolist(), nl[ci].tolist(), strict=True):
            line = bytes(buf[s:e])
            c = comments.get(line)
            if c is None:
                try:
                    c = comments[line] = parse_comment(line.decode(), om)
                except (UnicodeDecodeError, LineError):
                    return None
            events.append((i, c))
        sample = np.flatnonzero(~is_comment)
        s_start, s_end = starts[sample], nl[sample]
    else:
        sample = None
        s_start, s_end = starts, nl
    m = s_start.shape[0]
    sp = np.flatnonzero(a[lo:hi] == 32) + lo
    k = np.searchsorted(sp, s_end)
    if m and (k < 2).any():
        return None
    s1 = sp[k - 1] if m else s_end
    s2 = sp[k - 2] if m else s_end
    if m and ((s2 <= s_start).any() or (s1 <= s2 + 1).any() or (s_end <= s1 + 1).any()):
        return None
    w = _words(buf)
    plen = s2 - s_start
    same = _same_as_previous(buf, w, s_start, plen)
    heads = np.flatnonzero(~same)
    head_refs = _head_refs(parser, buf, w, lo, hi, s_start[heads], s2[heads], s_end[heads], om)
    if head_refs is None:
        return None
    run = np.cumsum(~same) - 1
    refs = head_refs[run] if m else np.zeros(0, np.int64)
    dots = np.append(np.flatnonzero(a[lo:hi] == 46) + lo, [hi, hi])
    k = np.searchsorted(dots, s2)  # the first dot after the series text
    d_val = dots[k]
    d_ts = np.where(d_val < s1, dots[np.minimum(k + 1, dots.shape[0] - 1)], d_val)
    try:
        values = _values(buf, w, d_val, s2 + 1, s1)
        ts = _times(buf, w, d_ts, s1 + 1, s_end, om)
    except BadTokens:
        return None
    if events:
        line_refs = np.full(nl.shape[0], -1, np.int64)
        line_refs[sample] = refs
        try:
            build_metadata(events, line_refs, parser.names_of_refs(), parser.name_ids, om,
                           first_lineno)
        except ExpositionError:
            return None
    return refs.astype(np.int32), values, ts

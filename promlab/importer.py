"""Bulk import of exposition files into a store (``promtool tsdb create-blocks-from openmetrics``).

:func:`import_file` reads an OpenMetrics text file (samples with timestamps in seconds, ``# EOF``
at the end: the input promtool's backfill takes) or a Prometheus text-format file (timestamps in
milliseconds) in chunks cut at line boundaries into one reused buffer, parses each chunk with
one :class:`~promlab.exposition.Parser` (so series texts are parsed once for the whole file and
line numbers run on across chunks) — through its whole-column bulk path
(:mod:`promlab.exposition.bulk`) where the lines allow — and appends and commits each chunk with
one ``append_batch``. Into a :class:`~promlab.storage.ParquetStore`, chunks older than the
store's head skip the WAL and the head: they are written straight to blocks when the import ends
(:mod:`promlab.storage.backfill`, like ``promtool tsdb create-blocks-from``).

Validated and atomic (issue 15), like ``promtool tsdb create-blocks-from openmetrics``:

* lines are read as promtool's OpenMetrics parser reads them (the parser's Prometheus mode,
  ``strict=False``: a repeated or late TYPE/HELP is no error), ``NaN`` with Go's bits;
* OpenMetrics must end with ``# EOF`` (checked before anything is read or stored);
* the format is detected and the reason recorded (:attr:`ImportStats.format_reason`); a file
  without ``# EOF`` whose syntax is OpenMetrics-only, or whose timestamps read as the text
  format's milliseconds would all fall in 1970 while as seconds they fall in 2000–2100 (a
  truncated OpenMetrics download), is refused instead of imported with its times 1000x off;
* a sample without a timestamp is an error (``expected timestamp for series ..., got none``)
  unless ``default_timestamp_ms`` says what to stamp it with;
* a failed import stores nothing: history goes to blocks written in a staging directory and
  published (renamed into place) only when the whole file has been read; samples that reach
  into the live head are held back and appended in one commit at the end;
* samples are kept or dropped as promtool keeps them (:mod:`promlab.storage.blockorder`): a
  sample at or before an earlier one of its series within the same 2 h block range is dropped
  (the first write wins), one going back to an earlier range is kept;
* dropped samples (out of bounds), duplicates and out-of-order samples are counted;
  ``strict=True`` turns any of them into an :class:`~promlab.errors.ImportRejected` error
  raised before anything is published.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError, ImportRejected
from promlab.exposition import NO_TIMESTAMP, Format, Parser
from promlab.exposition.bulk import parse_columns
from promlab.exposition.nhcb import ClassicConverter
from promlab.exposition.page import MetricMetadata
from promlab.importformat import choose_format
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.model.value import NORMAL_NAN_BITS
from promlab.storage.interface import Storage

__all__ = ["ImportStats", "import_file"]

_PAD = 8
_FRONT = bytes(_PAD - 1) + b"\n"
_PIECE = 4 << 20
# Timestamps that, read as milliseconds (text format), all fall before 1970-02-18 while read as
# seconds they fall in 2000..2100: a truncated OpenMetrics file, not a text-format one.
_SECONDS_LO, _SECONDS_HI = 946_684_800, 4_102_444_800
# promtool's block range: the order of a series' samples is checked within each such range.
_BLOCK_RANGE_MS = 2 * 3600 * 1000
# promtool's appender commits every this many samples of a block range.
_PROMTOOL_BATCH = 5000
# What the parser gives an OpenMetrics timestamp beyond int64 milliseconds (a scrape stores it
# as too old, as Prometheus converts it to int64 min).
_TS_OVERFLOW = np.iinfo(np.int64).min + 1


@dataclass(slots=True)
class ImportStats:
    """What an import did. ``parse_seconds`` + ``append_seconds`` ≈ ``seconds``.

    ``write_seconds`` (part of ``append_seconds``) is the time spent writing backfilled blocks at
    the end of the import.
    """

    path: str
    format: Format
    format_reason: str = ""
    bytes: int = 0
    lines: int = 0
    samples: int = 0
    series: int = 0
    chunks: int = 0
    seconds: float = 0.0
    parse_seconds: float = 0.0
    append_seconds: float = 0.0
    write_seconds: float = 0.0
    appended: int = 0
    out_of_order: int = 0
    out_of_bounds: int = 0
    duplicates: int = 0
    too_old: int = 0
    min_time_ms: int | None = None
    max_time_ms: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        """End-to-end throughput (parse + append + commit)."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def parse_samples_per_second(self) -> float:
        """Parser-only throughput."""
        return self.samples / self.parse_seconds if self.parse_seconds > 0 else 0.0


_HistPart = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[Histogram | FloatHistogram]]
_CREATED_OF = ("counter", "histogram", "summary")


class _Transform:
    """What an import does to the parsed columns before storing them: classic histograms to
    NHCBs (histogram samples are collected in :attr:`histograms`), ``_created`` series
    dropped. Without either option it passes the parser's columns through."""

    def __init__(self, nhcb: bool, keep_classic: bool, skip_created: bool) -> None:
        self.conv = ClassicConverter(keep_classic=keep_classic) if nhcb else None
        self.skip_created = skip_created
        self.meta: dict[str, MetricMetadata] | None = {} if nhcb or skip_created else None
        self.histograms: list[_HistPart] = []
        self._created = np.zeros(0, bool)  # parser ref -> a _created series to skip

    def series(self, parser: Parser) -> list[Labels]:
        return self.conv.series if self.conv is not None else parser.series

    def _created_mask(self, parser: Parser, refs: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
        n_old, n_new = self._created.shape[0], len(parser.series)
        if n_new > n_old:
            types = {k: m.type for k, m in (self.meta or {}).items()}
            ext = [ls.name.endswith("_created") and types.get(ls.name[:-8]) in _CREATED_OF
                   for ls in parser.series[n_old:]]
            self._created = np.concatenate([self._created, np.array(ext, bool)])
        return self._created[np.asarray(refs, np.int64)]

    def apply(self, parser: Parser, refs: npt.NDArray[Any], ts: npt.NDArray[np.int64],
              values: npt.NDArray[np.float64], *, final: bool = False
              ) -> tuple[list[Labels], npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        if self.skip_created and refs.shape[0]:
            keep = ~self._created_mask(parser, refs)
            if not keep.all():
                refs, ts, values = refs[keep], ts[keep], values[keep]
        if self.conv is None:
            return parser.series, refs, ts, values
        c = self.conv.convert(parser.series, refs, values, ts, self.meta, final=final)
        if c.histograms:
            self.histograms.append((c.hist_refs, c.hist_timestamps_ms, c.histograms))
        return self.conv.series, c.refs, c.timestamps_ms, c.values

    def finish(self, parser: Parser) -> None:
        """Convert the histogram point held back from the last chunk."""
        if self.conv is not None:
            empty = np.zeros(0, np.int64)
            self.apply(parser, empty, empty, np.zeros(0, np.float64), final=True)


def _parse_chunk(parser: Parser, buf: bytearray, lo: int, hi: int, fmt: Format, lineno: int,
                 meta: dict[str, MetricMetadata] | None = None,
                 ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.int64], int]:
    """Parse the lines ``buf[lo:hi]`` of one read chunk in line-aligned pieces of about
    :data:`_PIECE` bytes.

    Each piece goes through :func:`~promlab.exposition.bulk.parse_columns` (whole columns at
    once, for the usual "series value timestamp" runs of an import file, reading the buffer in
    place) or, when that declines, :meth:`Parser.parse`. Both run faster on pieces that fit the
    CPU caches than on a 64 MiB chunk at once; the pieces' columns are concatenated for one
    commit. ``buf`` has a newline at ``lo - 1`` and 8 spare bytes after ``hi``. With ``meta``
    every piece goes through the parser (the bulk path keeps no metadata) and ``meta`` collects
    the pieces' HELP/TYPE.
    Returns ``(refs, values, timestamps_ms, lines)``.
    """
    refs, values, ts = [], [], []
    start = lo
    first = lineno
    om = fmt == "openmetrics"
    while start < hi:
        end = buf.rfind(b"\n", start, start + _PIECE) + 1 if start + _PIECE < hi else hi
        if end <= start:  # a line longer than a piece
            end = buf.find(b"\n", start + _PIECE, hi) + 1 or hi
        cols = parse_columns(parser, buf, om, first, lo=start, hi=end) if meta is None else None
        if cols is None:
            page = parser.parse(bytes(buf[start:end]), fmt, first_lineno=first, require_eof=False)
            cols = (page.refs, page.values, page.timestamps_ms)
            if meta is not None:
                for name, md in page.metadata.items():
                    meta.setdefault(name, md)
        nlines = buf.count(b"\n", start, end) + (0 if buf[end - 1] == 10 else 1)
        if end < hi and om and bytes(buf[max(end - 7, start - 1):end]) in (b"\n# EOF\n", b"# EOF\n"):
            raise ExpositionError("unexpected data after '# EOF'", lineno=first + nlines)
        refs.append(cols[0])
        values.append(cols[1])
        ts.append(cols[2])
        first += nlines
        start = end
    if len(refs) == 1:
        return refs[0], values[0], ts[0], first - lineno
    return np.concatenate(refs), np.concatenate(values), np.concatenate(ts), first - lineno


def _sample_line(buf: bytearray, lo: int, hi: int, sample: int, lineno: int) -> tuple[int, str]:
    """Line number and text of the ``sample``-th sample line of ``buf[lo:hi]`` (errors only)."""
    k = -1
    for i, line in enumerate(bytes(buf[lo:hi]).split(b"\n")):
        if line and not line.startswith(b"#"):
            k += 1
            if k == sample:
                return lineno + i, line.decode(errors="replace")
    return lineno, ""


def import_file(
    path: str | os.PathLike[str],
    store: Storage | None,
    *,
    progress: bool = True,
    chunk_bytes: int = 64 << 20,
    format: Literal["auto", "openmetrics", "text"] = "auto",
    require_eof: bool = True,
    default_timestamp_ms: int | None = None,
    backfill: bool = True,
    strict: bool = False,
    convert_classic_histograms_to_nhcb: bool = False,
    keep_classic_histograms: bool = False,
    skip_created_series: bool = False,
) -> ImportStats:
    """Load an OpenMetrics or Prometheus text file into ``store``.

    Parameters
    ----------
    path
        The file.
    store
        Where samples go (any :class:`~promlab.storage.interface.Storage`); ``None`` only parses
        and validates the file (and measures the parser).
    progress
        Show a ``tqdm`` progress bar in bytes (notebook-aware via ``tqdm.auto``).
    chunk_bytes
        How much to read, parse and commit at a time (cut back to the last full line).
    format
        ``"auto"`` detects OpenMetrics (the file ends with ``# EOF`` or uses OpenMetrics-only
        syntax) and otherwise assumes the Prometheus text format; the choice and its reason
        are in the returned stats. Where the two would read the file differently and nothing
        tells them apart (see the module docstring) it refuses: give the format.
    require_eof
        OpenMetrics: the file must end with ``# EOF`` (as promtool requires).
    default_timestamp_ms
        Timestamp for samples without one; default: such samples are an error (as promtool).
    backfill
        When ``store`` offers ``backfill()`` (:class:`~promlab.storage.ParquetStore`), chunks
        older than everything in its head are written straight to blocks, staged and published
        when the import ends (no WAL, no head, no later flush or compaction: see
        :mod:`promlab.storage.backfill`); other chunks are held and appended in one commit at
        the end. ``False``: always append (everything in one commit at the end).
    strict
        Refuse the import (store nothing) when any sample would be dropped as out of bounds,
        duplicate a timestamp of its series, or arrive out of order.
    convert_classic_histograms_to_nhcb
        Store every family typed ``histogram`` as native histograms with custom buckets
        (schema -53), as a scrape with the option of the same name does
        (:class:`~promlab.exposition.nhcb.ClassicConverter`); its ``_created`` series is
        dropped. promtool 2.42's ``create-blocks-from openmetrics`` has no such option (it
        always stores classic series): the default stays promtool's.
    keep_classic_histograms
        With the conversion, keep the classic ``_bucket``/``_count``/``_sum`` series too
        (the scrape option ``always_scrape_classic_histograms``).
    skip_created_series
        Do not store the OpenMetrics ``_created`` samples of counters, summaries and
        histograms as series of their own (promtool 2.42 stores them as ``x_created``;
        Prometheus 3 skips them when it ingests start timestamps). promlab's store has no
        per-sample start timestamp to put them in, so they are dropped.

    Returns
    -------
    ImportStats

    Raises
    ------
    ExpositionError
        A malformed line (``lineno`` counts from the start of the file), a missing ``# EOF``,
        a sample without a timestamp, an ambiguous format. Nothing is stored.
    ImportRejected
        ``strict`` and some samples would be dropped or duplicated; or a sample promtool's
        appender refuses, failing its whole import (older than, or another value at the time
        of, its series' latest sample committed 5000 samples of its 2 h block earlier: see
        :mod:`promlab.storage.blockorder`). Nothing is stored, except samples reaching into the
        live head, whose counts are known only once committed.

    Examples
    --------
    >>> import tempfile, os
    >>> from promlab.storage import MemoryStorage
    >>> fd, name = tempfile.mkstemp(suffix=".om"); _ = os.write(fd, b"a_total 1 10\\na_total 2 20\\n# EOF\\n")
    >>> st = MemoryStorage(); stats = import_file(name, st, progress=False)
    >>> (stats.format, stats.format_reason, stats.samples, stats.min_time_ms, stats.max_time_ms)
    ('openmetrics', "detected: ends with '# EOF'", 2, 10000, 20000)
    >>> os.close(fd); os.unlink(name)
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    fmt, reason = choose_format(path, size, format, require_eof)
    stats = ImportStats(path=path, format=fmt, format_reason=reason)
    parser = Parser(strict=False)
    tx = _Transform(convert_classic_histograms_to_nhcb, keep_classic_histograms, skip_created_series)
    t_start = time.perf_counter()
    make_backfill = getattr(store, "backfill", None) if backfill else None
    bf = (make_backfill(staged=True, block_order_ms=_BLOCK_RANGE_MS, appender_batch=_PROMTOOL_BATCH)
          if make_backfill is not None else None)
    held: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
    try:
        _run(path, size, fmt, parser, store, bf, held, stats, default_timestamp_ms, chunk_bytes,
             progress, require_eof, guard_seconds=format == "auto" and fmt == "text", tx=tx)
        t0 = time.perf_counter()
        if bf is not None:
            _count(stats, bf.settle(_first_block_start(stats.min_time_ms)))
            if bf.refusal is not None:
                ls, ts_ms, why = bf.refusal
                raise ImportRejected(
                    f"add sample: {why}: series {ls} at {ts_ms} ms; promtool refuses the file (it "
                    f"commits every {_PROMTOOL_BATCH} samples of a 2 h block and fails on a sample "
                    "older than, or another value at the time of, its series' latest committed)")
        if strict:
            _check_strict(stats)
        if bf is not None:
            bf.finish()
        stats.write_seconds = time.perf_counter() - t0
        if (held or tx.histograms) and store is not None:
            _commit_held(store, tx.series(parser), held, stats, tx.histograms)
        stats.append_seconds += time.perf_counter() - t0
    except BaseException:
        if bf is not None:
            bf.abort()
        raise
    if strict:
        _check_strict(stats)
    stats.series = len(tx.series(parser))
    stats.seconds = time.perf_counter() - t_start
    return stats


def _first_block_start(mint_ms: int | None) -> int | None:
    """Where promtool's first block starts: the file's earliest time aligned to 2 h toward zero
    (Go's integer division), so before 1970 it can start after the earliest samples, which
    promtool then drops (Prometheus 3's promtool too)."""
    if mint_ms is None or mint_ms >= 0:
        return None
    return -(-mint_ms // _BLOCK_RANGE_MS) * _BLOCK_RANGE_MS


def _check_strict(stats: ImportStats) -> None:
    bad = {k: getattr(stats, k) for k in ("out_of_bounds", "duplicates", "out_of_order", "too_old")
           if getattr(stats, k)}
    if bad:
        raise ImportRejected("strict import refused: " + ", ".join(f"{v:,} {k.replace('_', ' ')}"
                                                                   for k, v in bad.items()))


def _commit_held(store: Storage, series: list[Labels],
                 held: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float64]]],
                 stats: ImportStats, histograms: list[_HistPart] | None = None) -> None:
    """Append the chunks that reach into the head and the histogram samples (which never go
    to the backfill's blocks), in one commit (all or nothing)."""
    app = store.appender()
    try:
        for refs, ts, values in held:
            app.append_batch(series, refs, ts, values)
        for hrefs, hts, hists in histograms or ():
            app.append_histogram_batch(series, hrefs, hts, hists)
    except BaseException:
        app.rollback()
        raise
    res = app.commit()
    if res is not None:
        _count(stats, res)


def _count(stats: ImportStats, res: Any) -> None:
    stats.appended += res.appended
    stats.out_of_order += res.out_of_order
    stats.out_of_bounds += res.out_of_bounds
    stats.duplicates += res.duplicates
    stats.too_old += getattr(res, "too_old", 0)  # the head's (a backfill refuses as out of order)
    stats.errors.extend(res.errors)


def _run(path: str, size: int, fmt: Format, parser: Parser, store: Storage | None, bf: Any,
         held: list[Any], stats: ImportStats, default_ts: int | None, chunk_bytes: int,
         progress: bool, require_eof: bool, *, guard_seconds: bool, tx: _Transform) -> None:
    from tqdm.auto import tqdm

    om = fmt == "openmetrics"
    lineno = 1
    eof_line = 0
    # One buffer for the whole file: a newline before the data (see _parse_chunk), the carried
    # partial line, then the next read, and spare bytes after it; refilled in place.
    buf = bytearray(_FRONT) + bytearray(chunk_bytes + 2 * _PAD)
    carry = 0
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=os.path.basename(path), disable=not progress) as bar:
        while True:
            need = _PAD + carry + chunk_bytes + 2 * _PAD
            if len(buf) < need:  # a line longer than a chunk
                grown = bytearray(need)
                grown[:_PAD + carry] = buf[:_PAD + carry]
                buf = grown
            with memoryview(buf) as mv:
                got = f.readinto(mv[_PAD + carry:_PAD + carry + chunk_bytes])
            end = _PAD + carry + got
            if got:
                cut = buf.rfind(b"\n", _PAD + carry, end)
                if cut < 0:
                    carry += got
                    continue
                hi = cut + 1
            else:
                hi = end
            if hi == _PAD:
                break
            data_hi = hi
            if buf[hi - 1] != 10:  # the last line, without a newline
                buf[hi:hi + 1] = b"\n"
                hi += 1
            if eof_line:
                raise ExpositionError("unexpected data after '# EOF'", lineno=lineno)
            t0 = time.perf_counter()
            refs, values, ts, nlines = _parse_chunk(parser, buf, _PAD, hi, fmt, lineno, tx.meta)
            t1 = time.perf_counter()
            tail = bytes(buf[max(hi - 7, _PAD - 1):hi])
            if om and (tail == b"\n# EOF\n" or (tail[-6:] == b"# EOF\n" and hi - 6 == _PAD)):
                eof_line = lineno + nlines - 1
            lineno += nlines
            n = len(refs)
            if n:
                missing = ts == NO_TIMESTAMP
                if missing.any():
                    if default_ts is None:
                        i = int(np.argmax(missing))
                        at, text = _sample_line(buf, _PAD, hi, i, lineno - nlines)
                        raise ExpositionError(
                            f"expected timestamp for series {parser.series[int(refs[i])]}, got none "
                            f"({int(missing.sum()):,} such samples in this chunk; "
                            "give default_timestamp to stamp them)", lineno=at, line=text)
                    ts = np.where(missing, int(default_ts), ts)
                tlo, thi = int(ts.min()), int(ts.max())
                if tlo == _TS_OVERFLOW:  # promtool: loops over 2 h blocks from 1970 - 292 My
                    i = int(np.argmax(ts == _TS_OVERFLOW))
                    at, text = _sample_line(buf, _PAD, hi, i, lineno - nlines)
                    raise ExpositionError("timestamp out of range: beyond int64 milliseconds",
                                          lineno=at, line=text)
                if guard_seconds and tlo >= _SECONDS_LO and thi <= _SECONDS_HI:
                    raise ExpositionError(
                        "ambiguous format: no '# EOF' at the end, so this would import as the text "
                        "format (timestamps in milliseconds, here all in 1970), but the timestamps "
                        "look like OpenMetrics seconds (a truncated OpenMetrics file?); give the "
                        "format (--format openmetrics|text)", lineno=lineno - nlines)
                stats.min_time_ms = tlo if stats.min_time_ms is None else min(stats.min_time_ms, tlo)
                stats.max_time_ms = thi if stats.max_time_ms is None else max(stats.max_time_ms, thi)
                nan = np.isnan(values)
                if nan.any():  # Go's ParseFloat("NaN"): the bits promtool stores
                    values.view(np.uint64)[nan] = NORMAL_NAN_BITS
                series, refs, ts, values = tx.apply(parser, refs, ts, values)
            if len(refs):
                res = bf.add(series, refs, ts, values) if bf is not None else None
                if res is None and store is not None:
                    held.append((refs, ts, values))
                if res is not None:
                    _count(stats, res)
            t2 = time.perf_counter()
            stats.parse_seconds += t1 - t0
            stats.append_seconds += t2 - t1
            stats.samples += n
            stats.bytes += data_hi - _PAD
            stats.chunks += 1
            bar.update(data_hi - _PAD)
            carry = end - data_hi
            buf[_PAD:_PAD + carry] = buf[data_hi:end]
    tx.finish(parser)
    stats.lines = lineno - 1
    if om and require_eof and not eof_line:
        raise ExpositionError("data does not end with '# EOF'", lineno=max(lineno - 1, 1))

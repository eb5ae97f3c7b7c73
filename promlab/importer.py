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

Samples without a timestamp get the time the import started (like a scrape would stamp them).
A malformed line stops the import with an :class:`~promlab.errors.ExpositionError` naming its
line; every chunk committed before the bad one stays in the store.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition import NO_TIMESTAMP, Format, Parser, detect_format
from promlab.exposition.bulk import parse_columns
from promlab.model import now_ms
from promlab.storage.interface import Storage

__all__ = ["ImportStats", "import_file"]

_PEEK = 1 << 16
_PAD = 8
_FRONT = bytes(_PAD - 1) + b"\n"
_PIECE = 4 << 20


@dataclass(slots=True)
class ImportStats:
    """What an import did. ``parse_seconds`` + ``append_seconds`` ≈ ``seconds``.

    ``write_seconds`` (part of ``append_seconds``) is the time spent writing backfilled blocks at
    the end of the import.
    """

    path: str
    format: Format
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


def _parse_chunk(parser: Parser, buf: bytearray, lo: int, hi: int, fmt: Format, lineno: int
                 ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.int64], int]:
    """Parse the lines ``buf[lo:hi]`` of one read chunk in line-aligned pieces of about
    :data:`_PIECE` bytes.

    Each piece goes through :func:`~promlab.exposition.bulk.parse_columns` (whole columns at
    once, for the usual "series value timestamp" runs of an import file, reading the buffer in
    place) or, when that declines, :meth:`Parser.parse`. Both run faster on pieces that fit the
    CPU caches than on a 64 MiB chunk at once; the pieces' columns are concatenated for one
    commit. ``buf`` has a newline at ``lo - 1`` and 8 spare bytes after ``hi``.
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
        cols = parse_columns(parser, buf, om, first, lo=start, hi=end)
        if cols is None:
            page = parser.parse(bytes(buf[start:end]), fmt, first_lineno=first, require_eof=False)
            cols = (page.refs, page.values, page.timestamps_ms)
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


def _sniff(path: str, size: int) -> Format:
    with open(path, "rb") as f:
        head = f.read(_PEEK)
        f.seek(max(size - 256, 0))
        tail = f.read()
    return detect_format(head, tail)


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
        syntax) and otherwise assumes the Prometheus text format.
    require_eof
        OpenMetrics: the file must end with ``# EOF`` (as promtool requires).
    default_timestamp_ms
        Timestamp for samples without one; default: when the import started.
    backfill
        When ``store`` offers ``backfill()`` (:class:`~promlab.storage.ParquetStore`), chunks
        older than everything in its head are written straight to blocks when the import ends
        (no WAL, no head, no later flush or compaction: see :mod:`promlab.storage.backfill`);
        other chunks are appended and committed one by one. ``False``: always append.

    Returns
    -------
    ImportStats

    Raises
    ------
    ExpositionError
        A malformed line (``lineno`` counts from the start of the file). Chunks committed
        before it stay stored.

    Examples
    --------
    >>> import tempfile, os
    >>> from promlab.storage import MemoryStorage
    >>> fd, name = tempfile.mkstemp(suffix=".om"); _ = os.write(fd, b"a_total 1 10\\na_total 2 20\\n# EOF\\n")
    >>> st = MemoryStorage(); stats = import_file(name, st, progress=False)
    >>> (stats.format, stats.samples, stats.min_time_ms, stats.max_time_ms)
    ('openmetrics', 2, 10000, 20000)
    >>> os.close(fd); os.unlink(name)
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    fmt: Format = _sniff(path, size) if format == "auto" else format
    stats = ImportStats(path=path, format=fmt)
    default_ts = now_ms() if default_timestamp_ms is None else int(default_timestamp_ms)
    parser = Parser()
    t_start = time.perf_counter()
    make_backfill = getattr(store, "backfill", None) if backfill else None
    bf = make_backfill() if make_backfill is not None else None
    try:
        _run(path, size, fmt, parser, store, bf, stats, default_ts, chunk_bytes, progress, require_eof)
    finally:
        if bf is not None:
            t0 = time.perf_counter()
            bf.finish()
            stats.write_seconds = time.perf_counter() - t0
            stats.append_seconds += stats.write_seconds
    stats.series = len(parser.series)
    stats.seconds = time.perf_counter() - t_start
    return stats


def _run(path: str, size: int, fmt: Format, parser: Parser, store: Storage | None, bf: Any,
         stats: ImportStats, default_ts: int, chunk_bytes: int, progress: bool,
         require_eof: bool) -> None:
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
            refs, values, ts, nlines = _parse_chunk(parser, buf, _PAD, hi, fmt, lineno)
            t1 = time.perf_counter()
            tail = bytes(buf[max(hi - 7, _PAD - 1):hi])
            if om and (tail == b"\n# EOF\n" or (tail[-6:] == b"# EOF\n" and hi - 6 == _PAD)):
                eof_line = lineno + nlines - 1
            lineno += nlines
            n = len(refs)
            if n:
                missing = ts == NO_TIMESTAMP
                if missing.any():
                    ts = np.where(missing, default_ts, ts)
                tlo, thi = int(ts.min()), int(ts.max())
                stats.min_time_ms = tlo if stats.min_time_ms is None else min(stats.min_time_ms, tlo)
                stats.max_time_ms = thi if stats.max_time_ms is None else max(stats.max_time_ms, thi)
                res = bf.add(parser.series, refs, ts, values) if bf is not None else None
                if res is None and store is not None:
                    app = store.appender()
                    try:
                        app.append_batch(parser.series, refs, ts, values)
                    except BaseException:
                        app.rollback()
                        raise
                    res = app.commit()
                if res is not None:
                    stats.appended += res.appended
                    stats.out_of_order += res.out_of_order
                    stats.out_of_bounds += res.out_of_bounds
                    stats.duplicates += res.duplicates
                    stats.errors.extend(res.errors)
            t2 = time.perf_counter()
            stats.parse_seconds += t1 - t0
            stats.append_seconds += t2 - t1
            stats.samples += n
            stats.bytes += data_hi - _PAD
            stats.chunks += 1
            bar.update(data_hi - _PAD)
            carry = end - data_hi
            buf[_PAD:_PAD + carry] = buf[data_hi:end]
    stats.lines = lineno - 1
    if om and require_eof and not eof_line:
        raise ExpositionError("data does not end with '# EOF'", lineno=max(lineno - 1, 1))

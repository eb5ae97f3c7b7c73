"""Bulk import of exposition files into a store (``promtool tsdb create-blocks-from openmetrics``).

:func:`import_file` reads an OpenMetrics text file (samples with timestamps in seconds, ``# EOF``
at the end: the input promtool's backfill takes) or a Prometheus text-format file (timestamps in
milliseconds) in chunks cut at line boundaries, parses each chunk with one
:class:`~promlab.exposition.Parser` (so series texts are parsed once for the whole file and line
numbers run on across chunks), and appends and commits each chunk with one ``append_batch``.

Samples without a timestamp get the time the import started (like a scrape would stamp them).
A malformed line stops the import with an :class:`~promlab.errors.ExpositionError` naming its
line; every chunk committed before the bad one stays in the store.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition import NO_TIMESTAMP, Format, Parser, detect_format
from promlab.model import now_ms
from promlab.storage.interface import Storage

__all__ = ["ImportStats", "import_file"]

_PEEK = 1 << 16
_PIECE = 1 << 20


@dataclass(slots=True)
class ImportStats:
    """What an import did. ``parse_seconds`` + ``append_seconds`` ≈ ``seconds``."""

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


def _parse_chunk(parser: Parser, data: bytes, fmt: Format, lineno: int
                 ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.int64], int]:
    """Parse one read chunk in line-aligned pieces of about :data:`_PIECE` bytes.

    The parser's bulk passes run faster on pieces that fit the CPU caches than on a 64 MiB
    chunk at once (measured ~1.4x); the pieces' columns are concatenated for one commit.
    Returns ``(refs, values, timestamps_ms, lines)``.
    """
    refs, values, ts = [], [], []
    start = 0
    first = lineno
    size = len(data)
    while start < size:
        end = data.rfind(b"\n", start, start + _PIECE) + 1 if start + _PIECE < size else size
        if end <= start:  # a line longer than a piece
            end = data.find(b"\n", start + _PIECE) + 1 or size
        piece = data[start:end]
        page = parser.parse(piece, fmt, first_lineno=first, require_eof=False)
        if end < size and fmt == "openmetrics" and (piece.endswith(b"\n# EOF\n") or piece == b"# EOF\n"):
            raise ExpositionError("unexpected data after '# EOF'", lineno=first + piece.count(b"\n"))
        refs.append(page.refs)
        values.append(page.values)
        ts.append(page.timestamps_ms)
        first += piece.count(b"\n") + (0 if piece.endswith(b"\n") else 1)
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
    from tqdm.auto import tqdm

    path = os.fspath(path)
    size = os.path.getsize(path)
    fmt: Format = _sniff(path, size) if format == "auto" else format
    om = fmt == "openmetrics"
    stats = ImportStats(path=path, format=fmt)
    default_ts = now_ms() if default_timestamp_ms is None else int(default_timestamp_ms)
    parser = Parser()
    lineno = 1
    eof_line = 0
    carry = b""
    t_start = time.perf_counter()
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=os.path.basename(path), disable=not progress) as bar:
        while True:
            block = f.read(chunk_bytes)
            if block:
                data = carry + block
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                data, carry = data[: cut + 1], data[cut + 1:]
            else:
                data, carry = carry, b""
            if not data:
                break
            if eof_line:
                raise ExpositionError("unexpected data after '# EOF'", lineno=lineno)
            t0 = time.perf_counter()
            refs, values, ts, nlines = _parse_chunk(parser, data, fmt, lineno)
            t1 = time.perf_counter()
            if om and (data.endswith(b"\n# EOF\n") or data.endswith(b"\n# EOF")
                       or data.rstrip(b"\n") == b"# EOF"):
                eof_line = lineno + nlines - 1
            lineno += nlines
            n = len(refs)
            if n:
                missing = ts == NO_TIMESTAMP
                if missing.any():
                    ts = np.where(missing, default_ts, ts)
                lo, hi = int(ts.min()), int(ts.max())
                stats.min_time_ms = lo if stats.min_time_ms is None else min(stats.min_time_ms, lo)
                stats.max_time_ms = hi if stats.max_time_ms is None else max(stats.max_time_ms, hi)
                if store is not None:
                    app = store.appender()
                    try:
                        app.append_batch(parser.series, refs, ts, values)
                    except BaseException:
                        app.rollback()
                        raise
                    res = app.commit()
                    stats.appended += res.appended
                    stats.out_of_order += res.out_of_order
                    stats.out_of_bounds += res.out_of_bounds
                    stats.duplicates += res.duplicates
                    stats.errors.extend(res.errors)
            t2 = time.perf_counter()
            stats.parse_seconds += t1 - t0
            stats.append_seconds += t2 - t1
            stats.samples += n
            stats.bytes += len(data)
            stats.chunks += 1
            bar.update(len(data))
    if om and require_eof and not eof_line:
        raise ExpositionError("data does not end with '# EOF'", lineno=max(lineno - 1, 1))
    stats.lines = lineno - 1
    stats.series = len(parser.series)
    stats.seconds = time.perf_counter() - t_start
    return stats

"""The directory of native histogram files (``<store>/histograms/``): writing, listing, reading
through the store's decoded cache, compaction and retention.

The directory is local for a local store and a prefix of the object store for a store at a URL
(``s3://bucket/prefix/histograms/``), reached through the store's
:class:`~promlab.storage.objectstore.BlockFS` like the blocks. A file is written complete in a
local directory first (with its checksum sidecar, :mod:`promlab.storage.histcheck`), then put in
place: a rename locally, two uploads remotely (the sidecar, then the file: one PUT each, so a
reader listing ``*.parquet`` sees a whole file or none).

Reading decodes a whole file once per metric name (:func:`promlab.storage.histfile.read_columns`)
and keeps the float-form columns in the :class:`~promlab.storage.cache.DecodedCache` under
``(CACHE_PREFIX + path, "=" + metric)``; later queries slice them by series and time. Files are
immutable under their name (compaction writes a new one), so entries never go stale; deleting a
file evicts them. A second small entry per file lists its metric names, so a query for a metric
the file lacks (every float metric of the store) does not read the file again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage import histcheck as _hc
from promlab.storage import histfile as _hf
from promlab.storage.cache import DecodedCache
from promlab.storage.objectstore import LOCAL, BlockFS

__all__ = ["CACHE_PREFIX", "FileInfo", "HistColumns", "compact_files", "delete_samples", "drop_before",
           "list_files", "read_files", "upload_local", "write_file"]

log = logging.getLogger("promlab.storage")

#: The decoded cache's keys of histogram files start with this (then the file's path).
CACHE_PREFIX = "histograms:"

AnyHist = Histogram | FloatHistogram
Item = tuple[Labels, int, AnyHist]
Run = tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]
HistColumns = dict[Labels, Run]
FileInfo = tuple[int, int, int, str]

_NAMES = "#metrics"
_ALL_TIME = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True, slots=True)
class _MetricNames:
    names: frozenset[str]

    @property
    def nbytes(self) -> int:
        return 100 + 80 * len(self.names)


# --- writing -----------------------------------------------------------------------------------
def write_file(directory: str, items: Sequence[Item], seq: int, *, fs: BlockFS = LOCAL,
               staging: str | None = None, span: tuple[int, int] | None = None) -> str | None:
    """Write ``items`` as one file of ``directory`` (layout of :mod:`promlab.storage.histfile`);
    its path, or None if ``items`` is empty.

    The file is written in ``staging`` (default: ``directory``, which must then be local) as a
    temporary file, renamed, then put into ``directory`` through ``fs``. ``span``: the
    ``(mint, maxt)`` of its name (default: the items'; it must cover them).
    """
    if not items:
        return None
    local = directory if staging is None else staging
    os.makedirs(local, exist_ok=True)
    mint, maxt = span or (min(r[1] for r in items), max(r[1] for r in items))
    name = f"{mint}-{maxt}-{seq}.parquet"
    tmp = os.path.join(local, f".tmp-{name}")
    staged = os.path.join(local, name)
    _hf.write_table(tmp, items)
    _hc.write_sidecar(tmp, staged)
    os.replace(tmp, staged)
    path = fs.join(directory, name)
    fs.put(staged + _hc.SIDECAR, path + _hc.SIDECAR)
    fs.put(staged, path)
    return path


def upload_local(staging: str, directory: str, fs: BlockFS) -> int:
    """Put the complete files left in the local ``staging`` directory (an upload cut short, or
    files of a version that kept them local) into ``directory``; returns how many."""
    moved = 0
    for *_, path in list_files(staging):
        name = os.path.basename(path)
        if os.path.exists(path + _hc.SIDECAR):
            fs.put(path + _hc.SIDECAR, fs.join(directory, name + _hc.SIDECAR))
        fs.put(path, fs.join(directory, name))
        moved += 1
    return moved


# --- listing and reading -------------------------------------------------------------------------
def list_files(directory: str, fs: BlockFS = LOCAL, *, cached: bool = False) -> list[FileInfo]:
    """``(mint, maxt, seq, path)`` of the histogram files, oldest first (``cached``: a
    listing a moment old will do, see :meth:`BlockFS.listdir`)."""
    out = []
    for name in fs.list_files(directory, cached=cached):
        if name.startswith(".") or not name.endswith(".parquet"):
            continue
        try:
            mint, maxt, seq = (int(x) for x in name[: -len(".parquet")].split("-", 2))
        except ValueError:
            continue
        out.append((mint, maxt, seq, fs.join(directory, name)))
    return sorted(out)


def read_items(path: str, mint: int, maxt: int, matchers: Sequence[Matcher] | None,
               fs: BlockFS = LOCAL) -> list[Item]:
    """The exact samples (integer histograms stay integer) of one file, checked first."""
    return _hf.read_items(_hc.read_verified(path, fs), mint, maxt, matchers)


def _metric_of(matchers: Sequence[Matcher]) -> str | None:
    for m in matchers:
        if m.name == "__name__" and m.type is MatchType.EQUAL:
            return m.value
    return None


def _file_columns(path: str, metric: str | None, cache: DecodedCache | None,
                  fs: BlockFS) -> _hf.HistogramColumns:
    """A file's decoded samples of ``metric`` (all metrics if None), from ``cache`` when there."""
    names_key = (CACHE_PREFIX + path, _NAMES)
    if metric is not None and cache is not None:
        names = cache.get_entry(names_key)
        if isinstance(names, _MetricNames) and metric not in names.names:
            return _hf.columns_from_items(())
    key = (CACHE_PREFIX + path, "" if metric is None else "=" + metric)
    hit = cache.get_entry(key) if cache is not None else None
    if isinstance(hit, _hf.HistogramColumns):
        return hit
    buf = _hc.read_verified(path, fs)
    cols = _hf.read_columns(buf, metric)
    if cache is not None:
        cache.put_entry(names_key, _MetricNames(_hf.metric_names(buf)))
        cache.put_entry(key, cols)
    return cols


def _select(cols: _hf.HistogramColumns, matchers: Sequence[Matcher], mint: int,
            maxt: int) -> HistColumns:
    """The series of ``cols`` matching ``matchers``, cut to ``[mint, maxt]``."""
    out: HistColumns = {}
    off = cols.offsets.tolist()
    for i, ls in enumerate(cols.labels):
        if not all(m.matches(ls.get(m.name, "")) for m in matchers):
            continue
        a, b = off[i], off[i + 1]
        ts = cols.ts[a:b]
        lo = a + int(np.searchsorted(ts, mint, "left"))
        hi = a + int(np.searchsorted(ts, maxt, "right"))
        if hi > lo:
            out[ls] = (cols.ts[lo:hi], cols.hists[lo:hi])
    return out


def _merge_two(old: Run, new: Run) -> Run:
    """Two sample runs of a series merged by time; ``new`` wins at equal timestamps."""
    ts = np.concatenate([new[0], old[0]])
    objs = np.concatenate([new[1], old[1]])
    order = np.argsort(ts, kind="stable")
    ts, objs = ts[order], objs[order]
    keep = np.ones(ts.shape[0], bool)
    keep[1:] = ts[1:] != ts[:-1]  # the first of equal timestamps is new's (stable sort)
    return ts[keep], objs[keep]


def read_files(directory: str, matchers: Sequence[Matcher], mint: int, maxt: int, *,
               cache: DecodedCache | None = None, fs: BlockFS = LOCAL,
               files: Sequence[FileInfo] | None = None) -> HistColumns:
    """The files' samples of series matching ``matchers`` in ``[mint, maxt]`` (float form).

    With ``cache`` (the store's decoded cache), each file is decoded once per metric name and
    later queries slice the decoded columns instead of reading the file again. ``files``: the
    listing of ``directory`` when the caller has it (one listing per query, not per selector).
    """
    metric = _metric_of(matchers)
    parts: list[HistColumns] = []
    for fmin, fmax, _, path in list_files(directory, fs) if files is None else files:
        if fmax < mint or fmin > maxt:
            continue
        try:
            cols = _file_columns(path, metric, cache, fs)
        except FileNotFoundError as exc:
            if files is not None:  # compacted away since the caller listed: list again
                return read_files(directory, matchers, mint, maxt, cache=cache, fs=fs)
            log.warning("histogram file deleted while being read, skipped: %s", exc)
            continue
        except (StorageError, OSError, ValueError, pa.ArrowException) as exc:  # see tsdb verify/repair
            log.warning("damaged histogram file skipped: %s", exc)
            continue
        got = _select(cols, matchers, mint, maxt)
        if got:
            parts.append(got)
    if len(parts) == 1:
        return parts[0]
    out: HistColumns = {}
    for part in parts:  # oldest file first: a later file wins at equal timestamps
        for ls, run in part.items():
            out[ls] = _merge_two(out[ls], run) if ls in out else run
    return out


# --- compaction, retention and deletion --------------------------------------------------------------
def _remove(path: str, cache: DecodedCache | None, fs: BlockFS) -> None:
    _hc.remove_file(path, fs)
    if cache is not None:
        cache.evict_block(CACHE_PREFIX + path)


def compact_files(directory: str, window_ms: int, before_ms: int | None, seq: int, *,
                  cache: DecodedCache | None = None, fs: BlockFS = LOCAL,
                  staging: str | None = None) -> int:
    """Merge the files of each ``window_ms`` window entirely before ``before_ms``; returns how
    many files were merged away (and evicted from ``cache``)."""
    groups: dict[int, list[FileInfo]] = {}
    for f in list_files(directory, fs):
        if before_ms is not None and f[1] >= before_ms:
            continue
        if f[0] // window_ms == f[1] // window_ms:
            groups.setdefault(f[0] // window_ms, []).append(f)
    merged = 0
    for files in groups.values():
        if len(files) < 2:
            continue
        acc: dict[tuple[Labels, int], AnyHist] = {}
        try:
            for fmin, fmax, _, path in files:  # oldest write first: later files win
                for ls, ts, h in read_items(path, fmin, fmax, None, fs):
                    acc[(ls, ts)] = h
        except (StorageError, OSError, ValueError, pa.ArrowException) as exc:  # left for tsdb verify/repair
            log.warning("histogram files of a window not compacted: %s", exc)
            continue
        write_file(directory, [(ls, ts, h) for (ls, ts), h in acc.items()], seq, fs=fs,
                   staging=staging)
        seq += 1
        for *_, path in files:
            _remove(path, cache, fs)
        merged += len(files)
    return merged


def drop_before(directory: str, min_keep_ms: int, *, cache: DecodedCache | None = None,
                fs: BlockFS = LOCAL) -> list[str]:
    """Delete files whose samples are all older than ``min_keep_ms`` (retention; evicted from
    ``cache``)."""
    gone = []
    for _, fmax, _, path in list_files(directory, fs):
        if fmax < min_keep_ms:
            _remove(path, cache, fs)
            gone.append(path)
    return gone


def delete_samples(directory: str, hit: Callable[[Labels], bool], mint: int, maxt: int, seq: int, *,
                   cache: DecodedCache | None = None, fs: BlockFS = LOCAL,
                   staging: str | None = None) -> tuple[int, int]:
    """Rewrite the files holding samples in ``[mint, maxt]`` of series for which ``hit`` is true
    without those samples (the admin API's ``delete_series``); returns the number of files
    changed and the next free ``seq`` (files written are numbered from ``seq``, or from above the
    directory's highest if that is higher).

    Each such file is replaced as compaction replaces files: the rest of its samples written as a
    new file (with its checksum sidecar) under the source's ``<mint>-<maxt>`` and a new ``seq``, so
    files keep their order for reads (a later file wins at equal timestamps), then the source
    removed and evicted from ``cache``; a file left empty is removed only. A crash in between
    leaves both, the deleted samples readable from the source until the delete is repeated.

    Raises
    ------
    StorageError
        A file to look at is damaged (``promlab tsdb verify``/``repair``); the files before it
        are rewritten already.
    """
    files = list_files(directory, fs)
    seq = max([seq, *(f[2] + 1 for f in files)])
    changed = 0
    for fmin, fmax, _, path in files:
        if fmax < mint or fmin > maxt:
            continue
        try:
            buf = _hc.read_verified(path, fs)
            lsets, codes, ts = _hf.series_times(buf)
        except (StorageError, OSError, ValueError, pa.ArrowException) as exc:
            # Not skipped as a query skips it: the delete would be reported done but is not.
            raise StorageError(f"damaged histogram file, delete stopped (see promlab tsdb "
                               f"verify/repair): {exc}") from exc
        hits = {ls: hit(ls) for ls in lsets}
        hit_rows = np.array([hits[ls] for ls in lsets], bool)[codes]
        if not (hit_rows & (ts >= mint) & (ts <= maxt)).any():
            continue  # only the labels and times read: no histogram decoded
        items = _hf.read_items(buf, _ALL_TIME[0], _ALL_TIME[1], None)
        keep = [it for it in items if not (hits[it[0]] and mint <= it[1] <= maxt)]
        if write_file(directory, keep, seq, fs=fs, staging=staging, span=(fmin, fmax)):
            seq += 1
        _remove(path, cache, fs)
        changed += 1
    return changed, seq

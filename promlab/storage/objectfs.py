"""Block directories under an fsspec URL: :class:`ObjectStoreFS` and :func:`open_fs`.

Atomic publishing, selective ranged reads and deferred deletion are described in
:mod:`promlab.storage.objectstore`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from promlab.errors import StorageError
from promlab.storage.blockfs import META_FILE, BlockFS

__all__ = ["LIST_TTL_S", "PREFETCH_THREADS", "TAIL_BYTES", "ObjectStoreFS", "open_fs"]

#: Bytes fetched at once when a read touches a file's end (Parquet's footer and its length)
#: that no prefetch covers.
TAIL_BYTES = 64 * 1024
#: Ranged GETs a store keeps in flight for prefetches (:meth:`ObjectStoreFS.prefetch`).
PREFETCH_THREADS = 8
#: Events kept per object by :meth:`ObjectStoreFS.object_log`.
LOG_EVENTS = 256
#: Seconds a listing is reused by reads that accept a cached one (a query lists the blocks and
#: the histogram files: two LISTs, each a round trip to the store, before it reads anything).
#: What this process writes or deletes forgets the listings at once; another process's
#: uploads are seen within this time.
LIST_TTL_S = 1.0


class _RangeFile:
    """A read-only Python file over one object: ranged fetches, a small cache of fetched ranges.

    Wrapped in :class:`pyarrow.PythonFile` for Parquet. A read inside a range fetched before
    (a row group whose CRC was just checked, the footer) is served from memory; a read of a
    range being prefetched (:meth:`prefetch`) waits for that GET instead of making its own.
    """

    def __init__(self, fs: ObjectStoreFS, path: str, size: int) -> None:
        self._fs, self._path, self._size = fs, path, size
        self._pos = 0
        self._ranges: OrderedDict[int, bytes] = OrderedDict()  # offset -> bytes, LRU first
        self._held = 0
        # Prefetches not read yet: offset -> (end, the GET in flight or done).
        self._inflight: dict[int, tuple[int, Future[bytes]]] = {}
        self._lock = threading.Lock()  # ranges and prefetches: readers and prefetchers
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        pos = self._pos
        if n is None or n < 0 or pos + n > self._size:
            n = self._size - pos
        if n <= 0:
            return b""
        with self._lock:
            self._settle(pos, pos + n)
            tail = max(0, self._size - TAIL_BYTES)
            if pos >= tail and not self._covered(pos, pos + n):
                self._fetch_keep(tail, self._size)  # the footer, its length and magic at once
            data = self._read_range(pos, pos + n)
        self._pos = pos + n
        return data

    def prefetch(self, lo: int, hi: int) -> None:
        """Start fetching bytes ``[lo, hi)`` in the background (one ranged GET on the store's
        prefetch threads), unless they are held or being fetched already."""
        hi = min(hi, self._size)
        with self._lock:
            if self.closed or lo >= hi or self._covered(lo, hi) or any(
                    off <= lo and hi <= end for off, (end, _) in self._inflight.items()):
                return
            self._inflight[lo] = (hi, self._fs.submit_fetch(self._path, lo, hi))

    def _settle(self, lo: int, hi: int) -> None:
        """Take the prefetched ranges overlapping ``[lo, hi)`` into the cache, waiting for
        their GETs (hold ``_lock``); a failed prefetch raises as the read itself would."""
        for off in [o for o, (end, _) in self._inflight.items() if o < hi and end > lo]:
            end, fut = self._inflight.pop(off)
            waited = not fut.done()
            buf = fut.result()
            self._fs.log_event(self._path, "wait" if waited else "ready", off, end)
            if len(buf) != end - off:
                raise OSError(f"{self._path}: short read ({len(buf)} of {end - off} bytes)")
            self._keep(off, buf)

    def _covered(self, lo: int, hi: int) -> bool:
        return any(off <= lo and hi <= off + len(buf) for off, buf in self._ranges.items())

    def _read_range(self, lo: int, hi: int) -> bytes:
        """Bytes ``[lo, hi)``: cached ranges where they cover it (Parquet's coalesced reads
        span several row groups fetched one by one), fetching only the gaps."""
        pieces: list[bytes] = []
        cur = lo
        for off, buf in sorted(self._ranges.items()):
            end = off + len(buf)
            if end <= cur or off >= hi:
                continue
            if off > cur:
                pieces.append(self._fetch_keep(cur, min(off, hi)))
            a, b = max(off, cur), min(end, hi)
            pieces.append(buf if (a == off and b == end) else buf[a - off:b - off])
            if off in self._ranges:
                self._ranges.move_to_end(off)
            cur = b
            if cur >= hi:
                break
        if cur < hi:
            pieces.append(self._fetch_keep(cur, hi))
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _fetch_keep(self, lo: int, hi: int) -> bytes:
        buf = self._fs.fetch(self._path, lo, hi)
        if len(buf) != hi - lo:
            raise OSError(f"{self._path}: short read ({len(buf)} of {hi - lo} bytes)")
        self._keep(lo, buf)
        return buf

    def _keep(self, off: int, buf: bytes) -> None:
        old = self._ranges.pop(off, None)
        self._held -= len(old) if old is not None else 0
        self._ranges[off] = buf
        self._held += len(buf)
        while self._held > self._fs.range_cache_bytes and len(self._ranges) > 1:
            _, dropped = self._ranges.popitem(last=False)
            self._held -= len(dropped)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for _, fut in self._inflight.values():
                fut.cancel()
            self._inflight.clear()
            self._ranges.clear()
            self._held = 0


class ObjectStoreFS(BlockFS):
    """Block directories under an fsspec URL, with counters of what was transferred.

    Parameters
    ----------
    fs
        The fsspec filesystem (``s3fs.S3FileSystem``, ...).
    staging_dir
        A local directory where blocks are written before they are uploaded.
    range_cache_bytes
        Per open file, how many fetched bytes are kept for repeated reads.
    """

    remote = True

    def __init__(self, fs: Any, *, staging_dir: str, range_cache_bytes: int = 64 << 20) -> None:
        self.fs = fs
        self.staging_dir = staging_dir
        self.range_cache_bytes = range_cache_bytes
        #: Seconds a deleted block's data files stay readable after its ``meta.json`` is gone.
        self.delete_grace_s = 60.0
        #: Called with each uploaded object's path, data files first and ``meta.json`` last.
        self.after_upload: Callable[[str], object] | None = None
        self.bytes_read = 0
        self.bytes_written = 0
        self.requests = 0
        self._count_lock = threading.Lock()
        self._reads: dict[str, list[int]] = {}  # object path (no protocol) -> [bytes, GETs]
        self._log: dict[str, deque[tuple[str, int, int]]] = {}  # object path -> recent events
        #: Seconds a listing is reused when a cached one will do (:data:`LIST_TTL_S`).
        self.list_ttl_s = LIST_TTL_S
        self._listings: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}  # key -> (t, found)
        self._sizes: dict[str, int] = {}  # object path (no protocol) -> size, from listings
        self._trash: list[tuple[float, str]] = []  # (deletion time, block path)
        # The open files' range readers (for prefetches), and the threads prefetches run on
        # (started with the first prefetch).
        self._files: weakref.WeakKeyDictionary[Any, _RangeFile] = weakref.WeakKeyDictionary()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # --- paths and counters ---------------------------------------------------------------------
    def staging_root(self, blocks_dir: str) -> str:
        return self.staging_dir

    def _key(self, path: str) -> str:
        return str(self.fs._strip_protocol(path))

    def join(self, *parts: str) -> str:
        return "/".join([parts[0].rstrip("/"), *(p.strip("/") for p in parts[1:])])

    def _count(self, read: int = 0, written: int = 0) -> None:
        with self._count_lock:
            self.bytes_read += read
            self.bytes_written += written
            self.requests += 1

    def counters(self) -> dict[str, int]:
        """``bytes_read``, ``bytes_written`` and ``requests`` so far."""
        with self._count_lock:
            return {"bytes_read": self.bytes_read, "bytes_written": self.bytes_written,
                    "requests": self.requests}

    def object_counters(self, path: str) -> dict[str, int]:
        """``bytes_read`` and ``requests`` (GETs) of the object ``path`` so far: what reading
        one file cost (a series index read in pieces, say)."""
        with self._count_lock:
            got = self._reads.get(self._key(path), [0, 0])
            return {"bytes_read": got[0], "requests": got[1]}

    def object_log(self, path: str) -> list[tuple[str, int, int]]:
        """The object ``path``'s recent ranged reads in order (at most :data:`LOG_EVENTS`):
        ``("get", lo, hi)`` a GET made when a read needed the bytes, ``("prefetch", lo, hi)``
        one started ahead of the read, ``("wait", lo, hi)``/``("ready", lo, hi)`` a read
        taking a prefetched range still in flight/already fetched."""
        with self._count_lock:
            return list(self._log.get(self._key(path), ()))

    def log_event(self, path: str, kind: str, lo: int, hi: int) -> None:
        """Record one event of :meth:`object_log`."""
        with self._count_lock:
            log = self._log.get(key := self._key(path))
            if log is None:
                log = self._log[key] = deque(maxlen=LOG_EVENTS)
            log.append((kind, lo, hi))

    def submit_fetch(self, path: str, start: int, end: int) -> Future[bytes]:
        """:meth:`fetch` on the prefetch threads."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=PREFETCH_THREADS,
                                                thread_name_prefix="promlab-prefetch")
            self.log_event(path, "prefetch", start, end)
            return self._pool.submit(self._cat, path, start=start, end=end)

    def _cat(self, path: str, **rng: int) -> bytes:
        """One GET of ``path`` (of ``start``/``end`` when given), counted; failures as OSError."""
        key = self._key(path)
        try:
            data = bytes(self.fs.cat_file(key, **rng))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise OSError(f"{path}: read failed: {exc}") from exc
        self._count(read=len(data))
        with self._count_lock:
            got = self._reads.setdefault(key, [0, 0])
            got[0] += len(data)
            got[1] += 1
        return data

    def fetch(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``path`` (one ranged GET)."""
        self.log_event(path, "get", start, end)
        return self._cat(path, start=start, end=end)

    # --- BlockFS ----------------------------------------------------------------------------------
    def read_bytes(self, path: str) -> bytes:
        return self._cat(path)

    def size(self, path: str) -> int:
        key = self._key(path)
        got = self._sizes.get(key)
        if got is None:
            self._count()
            got = int(self.fs.size(key))
        return got

    def open_input(self, path: str, size: int | None = None) -> Any:
        rf = _RangeFile(self, path, self.size(path) if size is None else size)
        fh = pa.PythonFile(rf, mode="r")
        self._files[fh] = rf
        return fh

    def prefetch(self, fh: Any, offset: int = 0, length: int = 0) -> None:
        """Start a ranged GET of ``length`` bytes at ``offset`` of ``fh`` (of
        :meth:`open_input`) in the background; the read of those bytes takes them, waiting for
        the GET if it is still in flight. Several prefetches run at once, so a read needing
        pieces it knows in advance (a first query's index pieces, its row groups and their
        footer pieces) pays one round trip for all of them. ``length`` 0 (a whole file) is not
        prefetched from object storage."""
        rf = self._files.get(fh)
        if rf is not None and length > 0:
            rf.prefetch(offset, offset + length)

    def _find(self, path: str, *, cached: bool = False) -> dict[str, dict[str, Any]]:
        """Every object under ``path`` with its details: one listing, or with ``cached`` the
        last one when it is younger than :attr:`list_ttl_s`."""
        key = self._key(path)
        t0 = time.monotonic()
        if cached:
            with self._count_lock:
                got = self._listings.get(key)
            if got is not None and t0 - got[0] < self.list_ttl_s:
                return got[1]
        self.fs.invalidate_cache(key)
        self._count()
        try:
            found = self.fs.find(key, detail=True)
        except FileNotFoundError:
            found = {}
        assert isinstance(found, dict)
        with self._count_lock:
            self._listings[key] = (t0, found)
        return found

    def _changed(self) -> None:
        """Forget the listings: this process wrote or deleted something."""
        with self._count_lock:
            self._listings.clear()

    def listdir(self, path: str, *, cached: bool = False) -> list[str]:
        """The complete blocks under ``path`` (those with a ``meta.json``): one listing."""
        key = self._key(path).rstrip("/")
        names = []
        for p, info in self._find(path, cached=cached).items():
            self._sizes[p] = int(info.get("size") or 0)
            rel = p[len(key) + 1:].split("/")
            if len(rel) == 2 and rel[1] == META_FILE:
                names.append(rel[0])
        return names

    def block_exists(self, path: str) -> bool:
        meta = self._key(self.join(path, META_FILE))
        self.fs.invalidate_cache(meta)
        self._count()
        return bool(self.fs.exists(meta))

    def dir_size(self, path: str) -> int:
        prefix = self._key(path).rstrip("/") + "/"
        sizes = [s for p, s in self._sizes.items() if p.startswith(prefix)]
        if not sizes:
            sizes = [int(i.get("size") or 0) for i in self._find(path).values()]
        return sum(sizes)

    def remove_block(self, path: str) -> None:
        """Unpublish the block now (its ``meta.json``); delete its data after the grace time."""
        try:
            self.fs.rm_file(self._key(self.join(path, META_FILE)))
            self._count()
        except FileNotFoundError:
            return
        finally:
            self._changed()
        self._trash.append((time.monotonic(), path))
        self.purge()

    def purge(self, *, everything: bool = False) -> None:
        """Delete the data of blocks removed more than :attr:`delete_grace_s` ago."""
        now = time.monotonic()
        keep = []
        for t, path in self._trash:
            if everything or now - t >= self.delete_grace_s:
                self._rm_tree(path)
            else:
                keep.append((t, path))
        self._trash = keep

    def _rm_tree(self, path: str) -> None:
        key = self._key(path)
        try:
            self.fs.rm(key, recursive=True)
            self._count()
        except FileNotFoundError:
            pass
        self._changed()
        prefix = key.rstrip("/") + "/"
        for p in [p for p in self._sizes if p.startswith(prefix)]:
            del self._sizes[p]

    def cleanup(self, blocks_dir: str) -> list[str]:
        """Remove block prefixes without ``meta.json`` older than the grace time (a crashed
        upload or deletion); returns them."""
        key = self._key(blocks_dir).rstrip("/")
        dirs: dict[str, list[Any]] = {}
        for p, info in self._find(blocks_dir).items():
            rel = p[len(key) + 1:].split("/")
            if len(rel) == 2 and not rel[0].startswith("."):
                dirs.setdefault(rel[0], []).append((rel[1], info))
        cutoff = time.time() - self.delete_grace_s
        removed = []
        for name, files in dirs.items():
            if any(f == META_FILE for f, _ in files):
                continue
            stamps = [_mtime(i) for _, i in files]
            if all(s is not None and s < cutoff for s in stamps):
                self._rm_tree(self.join(blocks_dir, name))
                removed.append(name)
        return removed

    def move(self, src: str, dst: str) -> None:
        """Copy every object under ``src`` to ``dst``, then delete the sources (``meta.json``
        first, so the block leaves the listing before its data goes)."""
        skey, dkey = self._key(src).rstrip("/"), self._key(dst).rstrip("/")
        keys = sorted(self._find(src), key=lambda k: not k.endswith("/" + META_FILE))
        try:
            for k in keys:
                self.fs.copy(k, dkey + k[len(skey):])
                self._count()
            for k in keys:
                self.fs.rm_file(k)
                self._count()
                self._sizes.pop(k, None)
        finally:
            self._changed()

    def list_files(self, path: str, *, cached: bool = False) -> dict[str, int]:
        key = self._key(path).rstrip("/")
        out = {}
        for p, info in self._find(path, cached=cached).items():
            rel = p[len(key) + 1:]
            if rel and "/" not in rel and info.get("type", "file") != "directory":
                size = int(info.get("size") or 0)
                self._sizes[p] = size
                out[rel] = size
        return out

    def put(self, local_path: str, path: str) -> None:
        """Upload ``local_path`` as ``path`` (one PUT: readers see all of it or nothing) and
        delete the local file."""
        self._upload(local_path, path)
        os.unlink(local_path)

    def _upload(self, local_path: str, path: str) -> None:
        """PUT ``local_path`` as ``path``, counted, its size remembered for reads."""
        try:
            self.fs.put_file(local_path, self._key(path))
        except Exception as exc:
            raise StorageError(f"{path}: upload failed: {exc}") from exc
        finally:
            self._changed()
        size = os.path.getsize(local_path)
        self._count(written=size)
        self._sizes[self._key(path)] = size

    def remove(self, path: str) -> None:
        key = self._key(path)
        try:
            self.fs.rm_file(key)
            self._count()
        except FileNotFoundError:
            pass
        self._changed()
        self._sizes.pop(key, None)

    def write_text(self, path: str, text: str) -> None:
        data = text.encode()
        try:
            self.fs.pipe_file(self._key(path), data)
        finally:
            self._changed()
        self._count(written=len(data))

    def exists(self, path: str) -> bool:
        key = self._key(path)
        self.fs.invalidate_cache(key)
        self._count()
        return bool(self.fs.exists(key))

    def publish(self, local_dir: str, dest: str) -> None:
        """Upload the block in ``local_dir`` to ``dest``: data files first, ``meta.json`` last."""
        names = sorted(os.listdir(local_dir))
        if META_FILE not in names:
            raise StorageError(f"{local_dir}: no {META_FILE} to publish")
        for name in [n for n in names if n != META_FILE] + [META_FILE]:
            target = self.join(dest, name)
            self._upload(os.path.join(local_dir, name), target)
            if self.after_upload is not None:
                self.after_upload(target)


def _mtime(info: dict[str, Any]) -> float | None:
    t = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if t is None:
        return None
    if isinstance(t, int | float):
        return float(t)
    ts = getattr(t, "timestamp", None)
    return float(ts()) if callable(ts) else None


def open_fs(url: str, storage_options: dict[str, Any] | None, *, staging_dir: str) -> ObjectStoreFS:
    """The :class:`ObjectStoreFS` of ``url`` (fsspec ``storage_options`` passed through)."""
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec comes with the s3 extra
        raise StorageError("stores at URLs need fsspec (pip install promlab[s3])") from exc
    try:
        fs, _ = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{url}: cannot open: {exc}") from exc
    return ObjectStoreFS(fs, staging_dir=staging_dir)

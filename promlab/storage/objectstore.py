"""Where a store's blocks live: a local directory or an fsspec URL (``s3://bucket/prefix``).

Blocks are read, listed, written, moved and deleted through a :class:`BlockFS`: :data:`LOCAL`
(plain directories, the default) or an :class:`ObjectStoreFS` over any fsspec filesystem.
The WAL and the writer's lock of a store at a URL stay on local disk (:func:`default_local_dir`);
the native-histogram files are single objects under ``histograms/`` (:meth:`BlockFS.put`,
:meth:`~BlockFS.list_files`, :meth:`~BlockFS.remove`), each uploaded in one PUT after its
checksum sidecar.

Over object storage:

* **Publishing is atomic.** A block is written into a local staging directory, then its data
  files are uploaded and ``meta.json`` last; readers list blocks by their ``meta.json``
  (one ``LIST`` of the ``blocks/`` prefix), so a reader never sees half a block. A deleted
  block loses its ``meta.json`` first; its data files are deleted after
  :attr:`ObjectStoreFS.delete_grace_s` (a reader that listed it may still be reading), and
  leftovers of a crashed upload or deletion are removed when a writer opens the store.
* **Reads are selective.** Files are read with ranged ``GET``\\ s (no read-ahead): the series
  index whole (or, format 7 above 1 MiB, its first piece, footer and the queried metrics'
  batches), then the footer and the row groups a query needs, each verified against its
  recorded CRC-32 and kept in a small per-file range cache so Parquet decodes the same bytes
  without fetching them again. :attr:`ObjectStoreFS.bytes_read` and :attr:`requests` count
  what was fetched, :meth:`ObjectStoreFS.object_counters` per object.

:class:`BlockFS` and :data:`LOCAL` live in :mod:`promlab.storage.blockfs`, :class:`ObjectStoreFS`
and :func:`open_fs` in :mod:`promlab.storage.objectfs`; all are importable from here.
"""

from __future__ import annotations

import hashlib
import os

from promlab.storage.blockfs import LOCAL, META_FILE, BlockFS
from promlab.storage.objectfs import ObjectStoreFS, open_fs

__all__ = ["LOCAL", "META_FILE", "BlockFS", "ObjectStoreFS", "default_local_dir", "is_url", "mark_store",
           "open_fs", "store_exists"]


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` locations other than ``file://``."""
    s = os.fspath(path)
    return "://" in s and not s.startswith("file://")


def default_local_dir(url: str) -> str:
    """The local directory (WAL, lock, staging) of the store at ``url``:
    ``$XDG_CACHE_HOME/promlab/stores/<hash of url>`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return os.path.join(base, "promlab", "stores", digest)


#: The object a writer puts at the root of a store at a URL (how readers know it is one).
STORE_MARKER = "promlab-store.json"


def mark_store(fs: BlockFS, url: str) -> None:
    """Write the store marker at ``url`` unless it is there."""
    assert isinstance(fs, ObjectStoreFS)
    path = fs.join(url, STORE_MARKER)
    if not fs.exists(path):
        fs.write_text(path, '{"format": "promlab-store", "blocks": "blocks/"}\n')


def store_exists(fs: BlockFS, url: str) -> bool:
    """True when a writer has opened a store at ``url`` (its marker is there)."""
    assert isinstance(fs, ObjectStoreFS)
    return fs.exists(fs.join(url, STORE_MARKER))

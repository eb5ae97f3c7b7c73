"""What is in a store: series, samples, time span, label names, blocks and bytes.

One function for every front end that reports on a store (``promlab tsdb info``, the demo's
summary, later the HTTP API's ``/api/v1/status/tsdb``).

Examples
--------
>>> import tempfile
>>> from promlab.storage import open_store
>>> with open_store(tempfile.mkdtemp()) as store:
...     describe_store(store).series
0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promlab.model import Matcher, MatchType

if TYPE_CHECKING:
    from promlab.storage.store import ParquetStore

__all__ = ["StoreInfo", "describe_store"]

_ALL_TIME = (-(2**62), 2**62)


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A store's contents and size, as :func:`describe_store` found them.

    Attributes
    ----------
    series, samples
        Series and samples over all time (head and blocks).
    mint_ms, maxt_ms
        The first and last sample's timestamp; None for an empty store.
    label_names
        Every label name, sorted (``__name__`` included).
    blocks, block_samples, block_bytes
        Parquet blocks, the samples they hold and their size on disk.
    other_bytes
        The rest of the local directory: WAL, head checkpoints, lock (for a store at an
        object-storage URL, its whole local directory).
    bytes_per_sample
        ``block_bytes / block_samples``; None while there are no blocks.
    wal_losses
        What WAL damage cost when the store read its WAL (records, samples, series, bytes,
        checkpoints, torn_bytes: see :class:`~promlab.storage.wal.WalLosses`); zeros normally.
    """

    series: int
    samples: int
    mint_ms: int | None
    maxt_ms: int | None
    label_names: list[str]
    blocks: int
    block_samples: int
    block_bytes: int
    other_bytes: int
    bytes_per_sample: float | None
    wal_losses: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (``promlab tsdb info --json``)."""
        return asdict(self)


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def _other_bytes(store: ParquetStore, block_bytes: int) -> int:
    """Bytes of the local directory that are not blocks (WAL, head, staging, lock).

    A store at an object-storage URL keeps its blocks remote and only the WAL and head in its
    local directory, so nothing is subtracted there.
    """
    local = _tree_bytes(Path(store.local_dir))
    return local if store.local_dir != store.path else local - block_bytes


def describe_store(store: ParquetStore) -> StoreInfo:
    """Series, samples, label names, blocks and bytes of an open store.

    Bytes per sample count the Parquet blocks only, against the samples they hold (from the
    store's ``stats()``); the rest of the directory (WAL, head checkpoints) is reported apart.
    Reads every sample once: on a large store this takes as long as a query over all of it.
    """
    q = store.querier(*_ALL_TIME)
    try:
        ss = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
        names = list(q.label_names())
    finally:
        q.close()
    stats = store.stats()
    block_bytes, block_samples = int(stats["block_bytes"]), int(stats["block_samples"])
    return StoreInfo(
        series=len(ss),
        samples=ss.num_samples,
        mint_ms=int(ss.ts_ms.min()) if ss.num_samples else None,
        maxt_ms=int(ss.ts_ms.max()) if ss.num_samples else None,
        label_names=names,
        blocks=int(stats["blocks"]),
        block_samples=block_samples,
        block_bytes=block_bytes,
        other_bytes=_other_bytes(store, block_bytes),
        bytes_per_sample=block_bytes / block_samples if block_samples else None,
        wal_losses=store.wal_losses.to_dict(),
    )

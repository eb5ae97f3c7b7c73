"""``Session.import_from``: copy a live Prometheus server's raw samples through remote read.

The range is read in time slices (one remote-read request each, streamed XOR chunks decoded in
one vectorised pass) and written to the store: history older than the head goes straight to
blocks through the store's backfill path, the rest through an appender. Completed slices are
remembered in ``<data>/remote-import/<id>.json`` (id: a hash of URL, matchers and range), so an
interrupted import started again with the same arguments skips them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promlab.errors import BadData
from promlab.model import Matcher
from promlab.remote.client import read_range
from promlab.storage.interface import Storage

__all__ = ["RemoteImportStats", "import_from"]


@dataclass
class RemoteImportStats:
    """What :func:`import_from` did."""

    url: str
    slices: int = 0
    slices_skipped: int = 0
    series: int = 0
    samples: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    read_seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


def _read_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/api/v1/read") else url + "/api/v1/read"


def import_from(store: Storage, data_dir: str | None, url: str, *,
                matchers: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int,
                slice_ms: int = 3_600_000, auth: tuple[str, str] | None = None,
                bearer_token: str | None = None, verify: bool | str = True,
                cert: str | tuple[str, str] | None = None, timeout_s: float = 300.0,
                progress: bool = True, resume: bool = True,
                headers: dict[str, str] | None = None) -> RemoteImportStats:
    """Import ``[start_ms, end_ms]`` of the series matching any of ``matchers`` from ``url``.

    See :meth:`promlab.session.Session.import_from` for the parameters.
    """
    import httpx
    from tqdm.auto import tqdm

    if end_ms < start_ms:
        raise BadData("import: end before start")
    if slice_ms <= 0:
        raise BadData("import: slice must be positive")
    read_url = _read_url(url)
    ident = hashlib.sha256(json.dumps(
        [read_url, [[str(m) for m in ms] for ms in matchers], start_ms, end_ms, slice_ms]
    ).encode()).hexdigest()[:16]
    state_file = os.path.join(data_dir, "remote-import", ident + ".json") if data_dir else None
    done: set[int] = set()
    if resume and state_file and os.path.exists(state_file):
        with open(state_file, encoding="utf-8") as f:
            done = set(json.load(f).get("done", []))
    stats = RemoteImportStats(url=read_url)
    slices = list(range(start_ms, end_ms + 1, slice_ms))
    hdrs = dict(headers or {})
    if bearer_token:
        hdrs["Authorization"] = f"Bearer {bearer_token}"
    t0 = time.perf_counter()
    make_backfill = getattr(store, "backfill", None)
    bf: Any = make_backfill() if make_backfill is not None else None
    pending: list[int] = []
    # One growing series list for every batch (the backfill and the store cache it by identity).
    all_series: list[Any] = []
    pos: dict[Any, int] = {}

    def save() -> None:
        if not state_file:
            return
        os.makedirs(os.path.dirname(state_file), exist_ok=True)
        tmp = state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"url": read_url, "start_ms": start_ms, "end_ms": end_ms,
                       "done": sorted(done)}, f)
        os.replace(tmp, state_file)

    def settle() -> None:
        if bf is not None and pending:
            bf.finish()
        done.update(pending)
        pending.clear()
        save()

    with httpx.Client(auth=auth, verify=verify, cert=cert, timeout=timeout_s, headers=hdrs) as client, \
            tqdm(total=len(slices), unit="slice", desc="import " + url, disable=not progress) as bar:
        buffered = 0
        for lo in slices:
            if lo in done:
                stats.slices_skipped += 1
                bar.update(1)
                continue
            hi = min(lo + slice_ms - 1, end_ms)
            for ms in matchers:
                t1 = time.perf_counter()
                res = read_range(client, read_url, ms, lo, hi)
                stats.read_seconds += time.perf_counter() - t1
                stats.bytes_read += res.bytes_read
                n = int(res.ts_ms.shape[0])
                if n == 0:
                    continue
                local = []
                for ls in res.series:
                    g = pos.get(ls)
                    if g is None:
                        g = pos[ls] = len(all_series)
                        all_series.append(ls)
                    local.append(g)
                index = np.array(local, np.int64)[res.index]
                stats.samples += n
                got = bf.add(all_series, index, res.ts_ms, res.values) if bf is not None else None
                if got is None:
                    app = store.appender()
                    app.append_batch(all_series, index, res.ts_ms, res.values)
                    app.commit()
                else:
                    buffered += n
            pending.append(lo)
            stats.slices += 1
            if bf is None or buffered == 0 or buffered >= 10_000_000:
                settle()
                buffered = 0
            bar.update(1)
            bar.set_postfix(samples=f"{stats.samples:,}")
        settle()
    stats.series = len(all_series)
    stats.seconds = time.perf_counter() - t0
    return stats

"""Fixtures shared by every test directory.

- ``require_binary(name)``: the path of a real binary (``prometheus``, ``promtool``,
  ``node_exporter``, ``pushgateway``, ``alertmanager``, ``chromium`` or any executable name);
  skips the test when it is missing, fails it when ``CI=true``.
- ``free_port``: a free TCP port on 127.0.0.1.
- ``tmp_store``: an empty :class:`promlab.storage.MemoryStorage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchmarks import realprom
from promlab.storage import MemoryStorage


@pytest.fixture
def require_binary() -> Callable[[str], str]:
    """``require_binary("promtool") -> "/usr/bin/promtool"`` (or skip / fail under CI)."""
    return realprom.require_binary


@pytest.fixture
def free_port() -> int:
    return realprom.free_port()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[dict[str, Any]]:
    """One S3-compatible server (moto's server mode) on 127.0.0.1 for the whole run; yields the
    s3fs storage options. moto keeps one backend per process, so tests make their own buckets."""
    moto_server = pytest.importorskip("moto.server")
    port = realprom.free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {"endpoint_url": f"http://127.0.0.1:{port}", "key": "testing", "secret": "testing"}
    finally:
        server.stop()


@pytest.fixture
def tmp_store() -> Iterator[MemoryStorage]:
    store = MemoryStorage()
    yield store
    store.close()

"""Fixtures of the API tests: a small store served by promlab and, beside it, a real Prometheus
over the same samples (backfilled with promtool) for structural comparisons."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from benchmarks import realprom
from promlab import Labels, MemoryStorage, Session, datasets
from promlab.api import Server
from promlab.datasets import DatasetInfo, DatasetSpec
from promlab.promql.engine import Engine


@pytest.fixture
def mem_session() -> Iterator[Session]:
    """A session over a memory store with ``up`` and a counter, 0..600 s every 15 s."""
    st = MemoryStorage()
    ts = list(range(0, 600_001, 15_000))
    for inst, up in (("a:1", 1.0), ("b:2", 0.0)):
        st.add_series(Labels({"__name__": "up", "job": "node", "instance": inst}), ts,
                      [up] * len(ts))
        st.add_series(Labels({"__name__": "http_requests_total", "job": "api", "instance": inst,
                              "code": "200"}), ts, [float(i * 10) for i in range(len(ts))])
    with Session(st) as s:
        yield s


@pytest.fixture
def served(mem_session: Session) -> Iterator[Server]:
    with Server(mem_session, listen="127.0.0.1:0", enable_lifecycle=False) as srv:
        yield srv


@pytest.fixture
def client(served: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        yield c


@dataclass
class Pair:
    """promlab and a real Prometheus over the same samples."""

    info: DatasetInfo
    promlab: Server
    prometheus: realprom.Prometheus

    @property
    def end_s(self) -> float:
        return self.info.spec.end_ms / 1000


@pytest.fixture(scope="module")  # not session: its server thread would outlive other tests
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    realprom.require_binary("promtool")
    realprom.require_binary("prometheus")
    root = tmp_path_factory.mktemp("api-pair")
    info = datasets.generate(root / "tiny.om", DatasetSpec(hours=1, scale=0.02), progress=False)
    realprom.backfill(info.path, root / "prom-data")
    with Session(str(root / "promlab-data"), progress=False) as session:
        session.import_file(Path(info.path), progress=False)
        with realprom.prometheus(data_dir=root / "prom-data") as prom, \
                session.serve("127.0.0.1:0") as server:
            yield Pair(info=info, promlab=server, prometheus=prom)


@dataclass
class PromPair:
    """promlab and a real Prometheus (``promql-per-step-stats`` on: promlab's ``stats=all``
    always carries the per-step counts) over the same tiny 1-h dataset, which ends at
    ``end_s``."""

    end_s: float
    promlab: Server
    prometheus: realprom.Prometheus


@contextlib.contextmanager
def prom_pair(root: Path, *, max_samples: int | None = None) -> Iterator[PromPair]:
    """A :class:`PromPair` over the dataset generated under ``root``; ``max_samples``: both
    limit the samples a query holds (``--query.max-samples``) to that."""
    realprom.require_binary("promtool")
    realprom.require_binary("prometheus")
    info = datasets.generate(root / "tiny.om", DatasetSpec(hours=1, scale=0.02), progress=False)
    realprom.backfill(info.path, root / "prom-data")
    limit = {} if max_samples is None else {"max_samples": max_samples}
    engine = None if max_samples is None else Engine(max_samples=max_samples)
    with Session(str(root / "promlab-data"), progress=False, engine=engine) as session:
        session.import_file(Path(info.path), progress=False)
        with realprom.prometheus(data_dir=root / "prom-data", **limit,
                                 extra_args=["--enable-feature=promql-per-step-stats"]) as prom, \
                session.serve("127.0.0.1:0") as server:
            yield PromPair(info.spec.end_ms / 1000, server, prom)


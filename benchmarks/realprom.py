"""Real Prometheus binaries for comparisons and interoperability tests.

Start the Debian-packaged ``prometheus``, ``prometheus-node-exporter``,
``prometheus-pushgateway`` and ``prometheus-alertmanager`` on free 127.0.0.1 ports, wait until they
are ready (bounded), and stop them cleanly; backfill an OpenMetrics file with ``promtool``;
measure the on-disk size of Prometheus blocks.

Examples
--------
>>> with prometheus(data_dir="/tmp/prom") as prom:          # doctest: +SKIP
...     prom.query("up", time=1705276800)["resultType"]
'vector'
>>> with node_exporter() as ne:                             # doctest: +SKIP
...     ne.get("/metrics").status_code
200
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from promlab import progress as _progress

__all__ = [
    "BINARIES",
    "BackfillResult",
    "Prometheus",
    "PrometheusAPIError",
    "Server",
    "alertmanager",
    "backfill",
    "block_bytes",
    "block_dirs",
    "find_binary",
    "free_port",
    "node_exporter",
    "prometheus",
    "pushgateway",
    "require_binary",
]

#: Short names → Debian binary paths.
BINARIES = {
    "prometheus": "/usr/bin/prometheus",
    "promtool": "/usr/bin/promtool",
    "node_exporter": "/usr/bin/prometheus-node-exporter",
    "pushgateway": "/usr/bin/prometheus-pushgateway",
    "alertmanager": "/usr/bin/prometheus-alertmanager",
    "chromium": "/usr/bin/chromium",
}

MINIMAL_CONFIG: dict[str, Any] = {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"}}
MINIMAL_ALERTMANAGER_CONFIG: dict[str, Any] = {
    "route": {"receiver": "null"},
    "receivers": [{"name": "null"}],
}


class PrometheusAPIError(RuntimeError):
    """The Prometheus HTTP API answered with ``status: error``."""

    def __init__(self, error_type: str, error: str) -> None:
        self.error_type = error_type
        self.error = error
        super().__init__(f"{error_type}: {error}")


def find_binary(name: str) -> str | None:
    """Path of a binary (a short name from :data:`BINARIES` or any executable), or None."""
    path = BINARIES.get(name, name)
    if os.path.isabs(path):
        return path if os.access(path, os.X_OK) else shutil.which(os.path.basename(path))
    return shutil.which(path)


def require_binary(name: str) -> str:
    """The binary's path; otherwise skip the calling test (``pytest.fail`` when ``CI=true``)."""
    import pytest

    path = find_binary(name)
    if path is None:
        msg = f"{BINARIES.get(name, name)} is not installed (run scripts/setup.sh as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def block_dirs(data_dir: str | os.PathLike[str]) -> list[Path]:
    """The TSDB block directories (those with a ``meta.json``) of a Prometheus data dir, sorted."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "meta.json").is_file())


def _tree_bytes(path: Path, *, apparent: bool) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(dirpath, name))
            total += st.st_size if apparent else st.st_blocks * 512
    return total


def block_bytes(data_dir: str | os.PathLike[str], *, apparent: bool = True) -> int:
    """Bytes of the block directories only (no WAL, no head chunks).

    ``apparent=True`` sums file sizes; ``False`` counts allocated disk blocks like ``du``.
    """
    return sum(_tree_bytes(d, apparent=apparent) for d in block_dirs(data_dir))


def block_samples(data_dir: str | os.PathLike[str]) -> int:
    """Samples in the blocks, from their ``meta.json`` statistics."""
    return sum(
        int(json.loads((d / "meta.json").read_text())["stats"].get("numSamples", 0))
        for d in block_dirs(data_dir)
    )


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What ``promtool tsdb create-blocks-from openmetrics`` produced."""

    seconds: float
    blocks: int
    samples: int
    bytes: int

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else float("nan")

    @property
    def bytes_per_sample(self) -> float:
        return self.bytes / self.samples if self.samples else float("nan")


def backfill(
    openmetrics_file: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    timeout: float = 3600,
    progress: bool | None = None,
) -> BackfillResult:
    """Backfill ``openmetrics_file`` into ``data_dir`` with promtool, timed.

    ``progress`` shows a ``tqdm`` bar (stderr, after a second; None:
    :data:`promlab.progress.DEFAULT`) with the elapsed time and the bytes written so far.
    """
    promtool = find_binary("promtool")
    if promtool is None:
        raise FileNotFoundError(BINARIES["promtool"])
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    argv = [promtool, "tsdb", "create-blocks-from", "openmetrics", os.fspath(openmetrics_file), os.fspath(data_dir)]
    t0 = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc, \
            _progress.bar(progress, desc="promtool backfill", unit="B", unit_scale=True,
                          unit_divisor=1024) as bar:
        while True:
            left = timeout - (time.perf_counter() - t0)
            try:
                out, err = proc.communicate(timeout=max(0.0, left if bar.disable else min(0.5, left)))
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - t0 >= timeout:
                    proc.kill()
                    proc.communicate()
                    raise
                with contextlib.suppress(OSError):  # files move while promtool works
                    bar.update(_tree_bytes(Path(data_dir), apparent=True) - bar.n)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"promtool failed ({proc.returncode}): {err.strip() or out.strip()}")
    return BackfillResult(seconds, len(block_dirs(data_dir)), block_samples(data_dir), block_bytes(data_dir))


@dataclass
class Server:
    """A running binary on ``url``. Stop it with :meth:`stop` (the context managers do)."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    client: httpx.Client = field(repr=False)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params or None)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, path: str, timeout: float) -> None:
        """Poll ``path`` until it answers 200; raise with the log tail if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get(path, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready at {self.url}{path} after {timeout} s:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


class Prometheus(Server):
    """A running Prometheus server with its data directory."""

    data_dir: Path

    def _api(self, path: str, params: Mapping[str, Any]) -> Any:
        r = self.client.get(path, params={k: v for k, v in params.items() if v is not None}, timeout=600)
        body = r.json()
        if body.get("status") != "success":
            raise PrometheusAPIError(body.get("errorType", str(r.status_code)), body.get("error", r.text))
        return body["data"]

    def query(self, expr: str, time: float | str | None = None, **params: Any) -> dict[str, Any]:
        """``/api/v1/query``: the response's ``data`` object (``resultType`` and ``result``)."""
        return dict(self._api("/api/v1/query", {"query": expr, "time": time, **params}))

    def query_range(self, expr: str, start: float | str, end: float | str, step: float | str,
                    **params: Any) -> dict[str, Any]:
        """``/api/v1/query_range``: the response's ``data`` object."""
        return dict(self._api("/api/v1/query_range",
                              {"query": expr, "start": start, "end": end, "step": step, **params}))

    def blocks(self) -> list[Path]:
        return block_dirs(self.data_dir)

    def block_bytes(self, *, apparent: bool = True) -> int:
        return block_bytes(self.data_dir, apparent=apparent)

    def metric(self, name: str) -> float:
        """Sum of a metric in Prometheus's own ``/metrics`` (0 when absent)."""
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_for_compaction(self, timeout: float = 180) -> bool:
        """Wait for the first compaction cycle (Prometheus runs one a minute) to settle.

        Returns False if it did not happen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.metric("prometheus_tsdb_compactions_triggered_total") < 1:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
        stable, last = 0, None
        while stable < 3:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
            now = [p.name for p in self.data_dir.iterdir()]
            busy = any(n.endswith(".tmp-for-creation") or n.endswith(".tmp-for-deletion") for n in now)
            stable = stable + 1 if (now == last and not busy) else 0
            last = now
        return True


def _write_yaml(target: Path, config: str | os.PathLike[str] | Mapping[str, Any] | None,
                default: Mapping[str, Any]) -> Path:
    if isinstance(config, os.PathLike):
        return Path(config)
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config or default), sort_keys=False)
    target.write_text(text)
    return target


@contextlib.contextmanager
def _running(name: str, binary: str, args: Sequence[str], *, port: int, workdir: Path, ready_path: str,
             timeout: float, cls: type[Server] = Server, **attrs: Any) -> Iterator[Any]:
    path = require_binary(binary) if os.environ.get("PYTEST_CURRENT_TEST") else find_binary(binary)
    if path is None:
        raise FileNotFoundError(BINARIES.get(binary, binary))
    log_path = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([path, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, start_new_session=True)
    server = cls(name, url, proc, workdir, log_path, httpx.Client(base_url=url, timeout=10))
    for k, v in attrs.items():
        setattr(server, k, v)
    try:
        server.wait_ready(ready_path, timeout)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _workdir(prefix: str, keep: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


@contextlib.contextmanager
def prometheus(
    data_dir: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    port: int | None = None,
    max_samples: int = 2_000_000_000,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
) -> Iterator[Prometheus]:
    """Run Prometheus on ``data_dir`` (a temporary one if None) until the block exits.

    ``config`` is a path (``pathlib.Path``), YAML text, or a mapping; the default scrapes nothing.
    Retention is 100 years so backfilled history is kept; ``--query.max-samples`` is raised;
    the lookback delta is Prometheus's default (5m).
    """
    with _workdir("promlab-prom-") as work, _workdir("promlab-prom-data-", data_dir) as data:
        cfg = _write_yaml(work / "prometheus.yml", config, MINIMAL_CONFIG)
        port = port or free_port()
        args = [
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
            f"--query.max-samples={max_samples}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            *extra_args,
        ]
        with _running("prometheus", "prometheus", args, port=port, workdir=work, ready_path="/-/ready",
                      timeout=timeout, cls=Prometheus, data_dir=data) as prom:
            yield prom


@contextlib.contextmanager
def node_exporter(*, port: int | None = None, extra_args: Sequence[str] = (), timeout: float = 30) -> Iterator[Server]:
    """Run node_exporter; its metrics are at ``ne.url + "/metrics"``."""
    with _workdir("promlab-ne-") as work:
        port = port or free_port()
        args = [f"--web.listen-address=127.0.0.1:{port}", *extra_args]
        with _running("node_exporter", "node_exporter", args, port=port, workdir=work, ready_path="/metrics",
                      timeout=timeout) as ne:
            yield ne


@contextlib.contextmanager
def pushgateway(*, port: int | None = None, extra_args: Sequence[str] = (), timeout: float = 30,
                ready_path: str = "/-/ready") -> Iterator[Server]:
    """Run the Pushgateway (no persistence: Debian's build defaults ``--persistence.file`` to
    /var/lib/prometheus/pushgateway.data, which every instance would load and overwrite);
    ``ready_path``: where it answers readiness (under a route prefix: ``<prefix>/-/ready``)."""
    with _workdir("promlab-pgw-") as work:
        port = port or free_port()
        args = [f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=", *extra_args]
        with _running("pushgateway", "pushgateway", args, port=port, workdir=work, ready_path=ready_path,
                      timeout=timeout) as pgw:
            yield pgw


@contextlib.contextmanager
def alertmanager(
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30,
) -> Iterator[Server]:
    """Run Alertmanager without clustering; the default config routes everything to a null receiver."""
    with _workdir("promlab-am-") as work:
        cfg = _write_yaml(work / "alertmanager.yml", config, MINIMAL_ALERTMANAGER_CONFIG)
        (work / "data").mkdir()
        port = port or free_port()
        args = [
            f"--config.file={cfg}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            *extra_args,
        ]
        with _running("alertmanager", "alertmanager", args, port=port, workdir=work, ready_path="/-/ready",
                      timeout=timeout) as am:
            yield am

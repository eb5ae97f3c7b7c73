"""The standard dataset generator: shape, format, determinism, semantics."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from promlab import datasets
from promlab.datasets import DatasetSpec

LINE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\d+(?:\.\d+)?) (?P<ts>\d+\.\d{3})$")


def parse(path: Path) -> tuple[list[str], dict[tuple[str, str], list[tuple[str, str]]]]:
    """Comment lines, and per (name, labels) the (value, ts) texts in file order."""
    comments: list[str] = []
    series: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            comments.append(line)
            continue
        m = LINE.match(line)
        assert m, line
        series[(m["name"], m["labels"])].append((m["value"], m["ts"]))
    return comments, series


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[datasets.DatasetInfo, list[str], dict]:
    info = datasets.generate(tmp_path_factory.mktemp("ds") / "tiny.om", DatasetSpec(hours=0.5, scale=0.03))
    return (info, *parse(info.path))


def test_shape(tiny):
    info, comments, series = tiny
    spec = info.spec
    assert spec.instances == 3 and spec.steps == 120
    assert len(series) == info.series == 3 * 10 + 3 * 10 + 3 * 12
    assert sum(len(v) for v in series.values()) == info.samples == info.series * 120
    assert comments[-1] == "# EOF"
    assert [c for c in comments if c.startswith("# TYPE")] == [
        "# TYPE http_requests counter",
        "# TYPE node_memory_usage_bytes gauge",
        "# TYPE http_request_duration_seconds histogram",
    ]
    assert info.bytes == info.path.stat().st_size


def test_timestamps(tiny):
    info, _, series = tiny
    want = [f"{t / 1000:.3f}" for t in info.spec.timestamps_ms()]
    assert want[-1] == f"{info.spec.end_ms / 1000:.3f}"
    for samples in series.values():
        assert [ts for _, ts in samples] == want
    # 1.234 s after round minutes, every 15 s.
    ts = info.spec.timestamps_ms()
    assert set((ts % 60_000).tolist()) == {1_234, 16_234, 31_234, 46_234}
    assert np.all(np.diff(ts) == 15_000)


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("http_requests_total", {"instance", "job", "method", "status"}, id="counter"),
        pytest.param("node_memory_usage_bytes", {"instance", "job", "kind"}, id="gauge"),
        pytest.param("http_request_duration_seconds_bucket", {"instance", "job", "le"}, id="bucket"),
    ],
)
def test_label_names(tiny, name, labels):
    _, _, series = tiny
    for n, lbls in series:
        if n == name:
            assert {kv.split("=")[0] for kv in lbls.split(",")} == labels


def values(series, name):
    return {lbls: np.array([float(v) for v, _ in s]) for (n, lbls), s in series.items() if n == name}


def test_counters_are_integers(tiny):
    _, _, series = tiny
    for (n, _), samples in series.items():
        if n == "http_requests_total":
            assert all("." not in v for v, _ in samples)


def test_gauges_have_two_decimals(tiny):
    _, _, series = tiny
    for (n, _), samples in series.items():
        if n == "node_memory_usage_bytes":
            assert all(re.fullmatch(r"\d+\.\d\d", v) for v, _ in samples)


def test_histograms_cumulative(tiny):
    _, _, series = tiny
    buckets = values(series, "http_request_duration_seconds_bucket")
    counts = values(series, "http_request_duration_seconds_count")
    sums = values(series, "http_request_duration_seconds_sum")
    for i in range(3):
        inst = f'instance="host-{i:03d}:9100",job="api"'
        per_le = np.stack([buckets[f'{inst},le="{le}"'] for le in datasets.BUCKETS])
        assert np.all(np.diff(per_le, axis=0) >= 0), "cumulative over le"
        assert np.all(np.diff(per_le, axis=1) >= 0), "monotonic over time"
        np.testing.assert_array_equal(per_le[-1], counts[inst])
        assert np.all(np.diff(sums[inst]) >= 0)
        assert sums[inst][-1] > 0


def test_counter_resets_happen(tmp_path):
    info = datasets.generate(tmp_path / "day.om", DatasetSpec(hours=24, scale=0.01))
    _, series = parse(info.path)
    counters = values(series, "http_requests_total")
    resets = sum(int(np.sum(np.diff(v) < 0)) for v in counters.values())
    growing = sum(int(np.sum(np.diff(v) > 0)) for v in counters.values())
    assert 2 <= resets <= 60
    assert growing > 10 * 3000


def test_deterministic(tmp_path):
    spec = DatasetSpec(hours=0.1, scale=0.02)
    a = datasets.generate(tmp_path / "a.om", spec).path.read_bytes()
    b = datasets.generate(tmp_path / "b.om", spec).path.read_bytes()
    c = datasets.generate(tmp_path / "c.om", DatasetSpec(hours=0.1, scale=0.02, seed=7)).path.read_bytes()
    assert a == b
    assert a != c


def test_standard_dataset_is_cached(tmp_path):
    first = datasets.standard_dataset(hours=0.1, scale=0.01, cache_dir=tmp_path)
    assert first.path.parent == tmp_path and first.path.name == first.spec.file_name()
    mtime = first.path.stat().st_mtime_ns
    again = datasets.standard_dataset(hours=0.1, scale=0.01, cache_dir=tmp_path)
    assert again.path == first.path and again.path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".*tmp"))


def test_full_size_spec():
    spec = DatasetSpec()
    assert spec.instances == 100 and spec.steps == 5760
    assert spec.series == 1000 + 1000 + 1200
    assert spec.samples == 3200 * 5760


def test_main(tmp_path, capsys):
    assert datasets.main([str(tmp_path / "x.om"), "--hours", "0.1", "--scale", "0.01"]) == 0
    assert "32 series" in capsys.readouterr().out
    assert (tmp_path / "x.om").read_text().endswith("# EOF\n")


def test_promlab_imports_every_sample(tiny, tmp_store):
    importer = pytest.importorskip("promlab.importer")
    from promlab.model import Matcher, MatchType

    info, _, series = tiny
    stats = importer.import_file(info.path, tmp_store, progress=False)
    assert (stats.series, stats.samples, stats.appended) == (info.series, info.samples, info.samples)
    q = tmp_store.querier(info.spec.start_ms, info.spec.end_ms)
    ss = q.select([Matcher(MatchType.EQUAL, "__name__", "node_memory_usage_bytes")])
    q.close()
    assert len(ss) == 30
    labels, ts, vals = ss.series(0)
    text = series[("node_memory_usage_bytes", 'instance="host-000:9100",job="node",kind="active"')]
    assert labels["kind"] == "active" and labels["instance"] == "host-000:9100"
    np.testing.assert_array_equal(ts, info.spec.timestamps_ms())
    np.testing.assert_array_equal(vals, [float(v) for v, _ in text])


@pytest.mark.parametrize(("xdg", "want"), [
    pytest.param("/x/cache", Path("/x/cache/promlab"), id="xdg-set"),
    pytest.param("", Path.home() / ".cache" / "promlab", id="xdg-empty"),
    pytest.param(None, Path.home() / ".cache" / "promlab", id="xdg-unset"),
])
def test_default_cache_dir(monkeypatch, xdg, want):
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert datasets.default_cache_dir() == want


def test_standard_dataset_defaults_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    info = datasets.standard_dataset(hours=0.05, scale=0.01)
    assert info.path == tmp_path / "promlab" / info.spec.file_name()
    assert info.path.read_text().endswith("# EOF\n")

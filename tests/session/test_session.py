"""The Session: one store, engine and scraper shared by queries from any thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import promlab
from promlab import Labels, MemoryStorage, Session
from promlab.errors import BadData, ConfigError, ParseError, StorageError

from .conftest import CounterTarget

T0 = 1_700_000_000_000


def _fill(store: object) -> None:
    app = store.appender()  # type: ignore[attr-defined]
    series = [Labels({"__name__": "http_requests_total", "job": "api", "code": c}) for c in ("200", "500")]
    series.append(Labels({"__name__": "up", "job": "api", "instance": "a:1"}))
    n = 20
    idx = np.repeat(np.arange(len(series)), n)
    ts = np.tile(T0 + np.arange(n, dtype=np.int64) * 15_000, len(series))
    vals = np.concatenate([np.arange(n) * 10.0, np.arange(n) * 1.0, np.ones(n)])
    app.append_batch(series, idx, ts, vals)
    app.commit()


@pytest.fixture(params=["memory", "directory"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Session:
    if request.param == "memory":
        s = Session(MemoryStorage())
    else:
        s = Session(tmp_path / "data", wal_fsync=False)
    _fill(s.storage)
    yield s
    s.close()


def test_queries(session: Session) -> None:
    end = T0 / 1000 + 19 * 15
    df = session.query("sum by (code) (http_requests_total)", time=end)
    assert dict(zip(df["code"], df["value"], strict=True)) == {"200": 190.0, "500": 19.0}
    rng = session.query_range("up", T0 / 1000, end, "15s")
    assert len(rng) == 20 and rng.attrs["result_type"] == "matrix"
    res = session.evaluate("rate(http_requests_total[1m])", time=end)
    assert res.result_type == "vector" and len(res.value.labels) == 2


def test_series_labels_values(session: Session) -> None:
    df = session.series('http_requests_total{code="500"}', "up")
    assert list(df.columns) == ["__name__", "code", "instance", "job"]
    assert sorted(df["__name__"]) == ["http_requests_total", "up"]
    assert df.loc[df["__name__"] == "up", "code"].iloc[0] is None
    assert len(session.series()) == 3
    assert session.labels() == ["__name__", "code", "instance", "job"]
    assert session.labels("up") == ["__name__", "instance", "job"]
    assert session.label_values("code") == ["200", "500"]
    assert session.label_values("__name__", '{job="api"}') == ["http_requests_total", "up"]
    # Time bounds: nothing before the data.
    assert session.select_series(start=0, end=T0 / 1000 - 3600) == []
    assert len(session.select_series(start=T0 / 1000, end=T0 / 1000 + 60)) == 3


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda s: s.query("sum(", time=0), ParseError, id="parse"),
        pytest.param(lambda s: s.query("up", time="yesterday-ish"), BadData, id="bad-time"),
        pytest.param(lambda s: s.query_range("up", 10, 0, "1s"), BadData, id="end-before-start"),
        pytest.param(lambda s: s.query_range("up", 0, 10, "-1s"), BadData, id="negative-step"),
        pytest.param(lambda s: s.query_range("up", 0, 10, "banana"), BadData, id="bad-step"),
        pytest.param(lambda s: s.evaluate("up", start=0, end=10), BadData, id="range-without-step"),
        pytest.param(lambda s: s.series("up{"), ParseError, id="bad-matcher"),
        pytest.param(lambda s: s.labels(start=10, end=0), BadData, id="labels-end-before-start"),
        pytest.param(lambda s: s.scrape.start(), ConfigError, id="scrape-without-config"),
    ],
)
def test_user_errors_are_typed(session: Session, call: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(session)  # type: ignore[operator]


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    s = Session(tmp_path / "d", wal_fsync=False)
    _fill(s.storage)
    s.close()
    s.close()
    assert s.closed and s.store.closed  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="closed"):
        s.query("up", time=T0 / 1000)
    with Session(tmp_path / "d") as again:  # the data survived, the lock was released
        assert len(again.select_series()) == 3


def test_store_object_is_left_open() -> None:
    store = MemoryStorage()
    with Session(store) as s:
        _fill(s.storage)
    assert promlab.query("up", time=T0 / 1000, data=store)["value"].tolist() == [1.0]


def test_read_only_session_refuses_writes(tmp_path: Path) -> None:
    with Session(tmp_path / "d") as w:
        _fill(w.storage)
        with Session(tmp_path / "d", read_only=True) as r:
            assert r.query("up", time=T0 / 1000)["value"].tolist() == [1.0]
            with pytest.raises(StorageError, match="read-only"):
                r.storage  # noqa: B018
            with pytest.raises(StorageError, match="read-only"):
                r.scrape.start({"scrape_configs": []})


def test_bad_config_is_a_config_error_and_leaves_no_lock(tmp_path: Path) -> None:
    bad = {"scrape_configs": [{"job_name": "x", "scrape_interval": "banana"}]}
    with pytest.raises(ConfigError):
        Session(tmp_path / "d", config=bad)
    Session(tmp_path / "d").close()  # not locked by the failed one


def test_scrape_and_query_from_threads(tmp_path: Path, counter_target: CounterTarget) -> None:
    """The scraper commits while other threads query: each query sees a committed prefix."""
    with Session(tmp_path / "d", config=counter_target.config(), wal_fsync=False) as s:
        s.scrape.start()
        seen: list[float] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    df = s.query("ticks_total")
                    if len(df):
                        seen.append(float(df["value"].iloc[0]))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and counter_target.scrapes[0] < 10:
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(10)
        assert not errors, errors
        assert counter_target.scrapes[0] >= 10
        assert seen, "no query saw a sample"
        # A committed sample is never lost from view again: per reader values never go down,
        # and overall every value seen was really scraped.
        assert max(seen) <= counter_target.scrapes[0]
        targets = s.scrape.targets()
        assert targets["health"].tolist() == ["up"]
        md = s.metadata()
        assert set(md["metric"]) == {"ticks_total", "temp_celsius"}
        assert md.set_index("metric").loc["ticks_total", "type"] == "counter"
        assert s.metadata("temp_celsius")["help"].tolist() == ["A gauge."]
        s.scrape.stop()
        assert not s.scrape.running and s.scrape.targets().empty
        total = s.query("ticks_total")["value"].iloc[0]
        assert total >= 10


def test_close_from_another_thread_while_scraping(tmp_path: Path,
                                                  counter_target: CounterTarget) -> None:
    s = Session(tmp_path / "d", config=counter_target.config(), wal_fsync=False)
    s.scrape.start()
    while counter_target.scrapes[0] < 3:
        time.sleep(0.05)
    closers = [threading.Thread(target=s.close) for _ in range(3)]
    for t in closers:
        t.start()
    for t in closers:
        t.join(30)
    assert s.closed and not s.scrape.running
    # The scraper's threads (scheduler and writer) are gone; other tests' threads may linger.
    assert not any(t.name.startswith("promlab-scrape") for t in threading.enumerate()), \
        [t.name for t in threading.enumerate()]
    with Session(tmp_path / "d", read_only=True) as r:
        df = r.query_range("ticks_total", "now-1m", "now", "1s")
        assert df["value"].max() >= 3


def test_scrape_reload_keeps_running_on_bad_config(tmp_path: Path,
                                                   counter_target: CounterTarget) -> None:
    with Session(MemoryStorage(), config=counter_target.config()) as s:
        s.scrape.start()
        with pytest.raises(ConfigError):
            s.scrape.reload({"scrape_configs": [{"job_name": "x", "scrape_interval": "nope"}]})
        assert s.scrape.running
        assert s.config is not None and s.config.scrape_configs[0].job_name == "counter"
        s.scrape.reload({"scrape_configs": []})
        assert s.config.scrape_configs == ()
        with pytest.raises(ConfigError, match="already running"):
            s.scrape.start()


def test_repr_and_frames_are_plain(session: Session) -> None:
    assert "idle" in repr(session)
    df = session.query("up", time=T0 / 1000)
    assert type(df) is pd.DataFrame

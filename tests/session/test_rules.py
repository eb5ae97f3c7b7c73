"""``session.rules``: rule files from the config (globs), start/reload/stop, the DataFrame views,
read-only refusal, and the daemon evaluating and reloading rules."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from promlab import daemon
from promlab.errors import ConfigError, StorageError
from promlab.model import Labels
from promlab.session import Session
from promlab.storage import MemoryStorage
from tests.waiting import wait_for

RULES = """
groups:
- name: {name}
  interval: 200ms
  rules:
  - record: x:sum
    expr: sum(x)
  - alert: {alert}
    expr: x:sum > 0
    for: 1h
    annotations: {{summary: "sum is {{{{ $value }}}}"}}
"""


def _store() -> MemoryStorage:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "x", "job": "a"}), [time.time_ns() // 1_000_000], [2.0])
    return st


def test_start_from_config_globs_reload_keeps_state(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yml").write_text(RULES.format(name="a", alert="High"))
    (tmp_path / "rules" / "b.yml").write_text(RULES.format(name="b", alert="Other"))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global: {evaluation_interval: 1s}\nrule_files: ['rules/*.yml']\n")
    with Session(_store(), config=str(cfg)) as s:
        assert s.rules.files == [str(tmp_path / "rules" / "a.yml"), str(tmp_path / "rules" / "b.yml")]
        s.rules.start()
        with pytest.raises(ConfigError, match="already running"):
            s.rules.start()
        wait_for(lambda: len(s.rules.alerts()) == 2)
        df = s.rules.alerts()
        assert sorted(df["alertname"]) == ["High", "Other"]
        assert set(df["state"]) == {"pending"} and set(df["annotation:summary"]) == {"sum is 2"}
        active_at = dict(zip(df["alertname"], df["active_at"], strict=True))
        # Edit one file (same alert, new expression) and drop the other: the kept alert keeps
        # its active_at, the dropped group's alert is gone.
        (tmp_path / "rules" / "a.yml").write_text(
            RULES.format(name="a", alert="High").replace("x:sum > 0", "x:sum > 1"))
        (tmp_path / "rules" / "b.yml").unlink()
        s.rules.reload()
        df = s.rules.alerts()
        assert list(df["alertname"]) == ["High"] and df["active_at"][0] == active_at["High"]
        groups = s.rules.groups()
        assert list(groups["rule"]) == ["x:sum", "High"]
        assert groups["query"][1] == "x:sum > 1"
        # A bad file keeps the running rules.
        (tmp_path / "rules" / "a.yml").write_text("groups: [{name: a, rules: [{alert: A, expr: 'x +'}]}]")
        with pytest.raises(ConfigError):
            s.rules.reload()
        assert list(s.rules.groups()["rule"]) == ["x:sum", "High"]
    assert not s.rules.running


def test_read_only_session_refuses_rules(tmp_path: Path) -> None:
    with Session(str(tmp_path / "data")) as w:
        w.flush()
    with Session(str(tmp_path / "data"), read_only=True) as s, pytest.raises(StorageError):
        s.rules.start([])
    assert Session(MemoryStorage()).rules.groups().empty


def test_daemon_evaluates_and_reloads_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES.format(name="d", alert="D").replace("sum(x)", "vector(1)"))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"rule_files: ['{rules}']\n")
    stop = threading.Event()
    rc: list[int] = []
    t = threading.Thread(target=lambda: rc.append(daemon.run(cfg, tmp_path / "data", watch_interval=0.1,
                                                             stop_event=stop, progress=False)))
    t.start()
    try:
        time.sleep(2.0)
        # A config change reloads the rules too: a new recording rule appears.
        rules.write_text(RULES.format(name="d", alert="D").replace("sum(x)", "vector(1)")
                         + "  - record: two\n    expr: vector(2)\n")
        os.utime(cfg, (time.time() + 5, time.time() + 5))
        time.sleep(2.0)
    finally:
        stop.set()
        t.join(30)
    assert rc == [0]
    with Session(str(tmp_path / "data"), read_only=True) as s:
        assert s.query("x:sum", time="now")["value"].tolist() == [1.0]
        assert s.query("two", time="now")["value"].tolist() == [2.0]
        assert s.query('ALERTS{alertname="D"}', time="now")["alertstate"].tolist() == ["pending"]


def test_global_rule_query_offset(tmp_path: Path) -> None:
    """``global.rule_query_offset`` moves the queries of groups without ``query_offset``."""
    (tmp_path / "r.yml").write_text(
        "groups:\n- name: own\n  interval: 200ms\n  query_offset: 1s\n  rules: [{record: own, expr: vector(1)}]\n"
        "- name: glob\n  interval: 200ms\n  rules: [{record: glob, expr: vector(1)}]\n")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global: {rule_query_offset: 1h}\nrule_files: [r.yml]\n")
    st = MemoryStorage()
    with Session(st, config=str(cfg)) as s:
        assert s.config is not None and s.config.global_config.rule_query_offset_ms == 3_600_000
        s.rules.start()
        def latest(name: str, back_s: float) -> float | None:
            df = s.query(f"timestamp({name})", time=time.time() - back_s)
            return float(df["value"].iloc[0]) if len(df) else None

        # recording rules write at the evaluation time minus the offset: "glob" an hour back
        # (not visible now, the lookback is 5 min), "own" its own 1 s back
        glob = wait_for(lambda: latest("glob", 3600))
        own = wait_for(lambda: latest("own", 0))
        now = time.time()
        assert now - 3600 - 10 < glob < now - 3600 and now - 10 < own < now - 1 + 0.5
        assert latest("glob", 0) is None

"""Hostile configuration files: non-UTF-8 bytes and duplicate keys are clear ConfigErrors with
the file and line (as promtool refuses them), and a bad file written over a running daemon's
config is logged and the running config kept: the daemon never dies of a reload."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from promlab.config.load import load
from promlab.errors import ConfigError
from promlab.rules.load import load_rules

GOOD = b"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"

# Worded and lined as promtool 2.42 words them (go-yaml v2: no line for bytes that are not UTF-8).
CONFIGS = [
    pytest.param(b"global:\n  scrape_interval: 15s \xff\xfe\n", None, "yaml: invalid leading UTF-8 octet",
                 id="non-utf8"),
    pytest.param(b"\xef\xbb\xbfglobal:\n  external_labels:\n    a: \"\xc3\x28\"\n", None,
                 "yaml: invalid trailing UTF-8 octet", id="bad-continuation-byte"),
    pytest.param(b"global:\n  scrape_interval: 15s\nglobal:\n  scrape_interval: 30s\n", 3,
                 "line 3: field global already set in type config.plain", id="duplicate-global"),
    pytest.param(b"scrape_configs:\n  - job_name: a\n    job_name: b\n", 3,
                 "line 3: field job_name already set in type config.ScrapeConfig", id="duplicate-nested"),
    pytest.param(b"global: [\n", 1, "yaml: line 1: did not find expected node content", id="truncated"),
]


@pytest.mark.parametrize(("body", "line", "message"), CONFIGS)
def test_bad_config_files(tmp_path: Path, body: bytes, line: int | None, message: str) -> None:
    f = tmp_path / "prometheus.yml"
    f.write_bytes(body)
    with pytest.raises(ConfigError) as info:
        load(f)
    assert info.value.file == str(f)
    assert info.value.line == line
    assert message in str(info.value)


RULES = [
    pytest.param(b"groups:\n- name: a\xff\n  rules: []\n", 2, "invalid leading UTF-8 octet", id="non-utf8"),
    pytest.param(b"groups:\n- name: a\n  rules: []\ngroups: []\n", 4,
                 'mapping key "groups" already defined at line 1', id="duplicate-groups"),
]


@pytest.mark.parametrize(("body", "line", "message"), RULES)
def test_bad_rule_files(tmp_path: Path, body: bytes, line: int, message: str) -> None:
    f = tmp_path / "rules.yml"
    f.write_bytes(body)
    with pytest.raises(ConfigError) as info:
        load_rules(f)
    assert info.value.line == line
    assert message in str(info.value)


def test_good_config_still_loads(tmp_path: Path) -> None:
    f = tmp_path / "prometheus.yml"
    f.write_bytes(GOOD)
    assert load(f).global_config.scrape_interval_ms == 1000


@pytest.mark.parametrize("bad", [c.values[0] for c in CONFIGS] + [b"\x00\x01\x02", b""],
                         ids=[c.id for c in CONFIGS] + ["binary", "empty"])
def test_daemon_survives_bad_reload(tmp_path: Path, bad: bytes) -> None:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_bytes(GOOD)
    code = ("import sys; from promlab import daemon; "
            "sys.exit(daemon.run(sys.argv[1], sys.argv[2], watch_interval=0.1))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(cfg), str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until it runs
            if "scraping 1 jobs" in line:
                break
        tmp = cfg.with_suffix(".tmp")
        tmp.write_bytes(bad)
        tmp.replace(cfg)
        time.sleep(1.5)
        assert proc.poll() is None, "the daemon died of a bad reload"
        proc.terminate()
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, rest
    if bad:  # an empty file is an empty (valid) config in Prometheus too
        assert "config reload failed, keeping the running config" in rest
    assert "Traceback" not in rest

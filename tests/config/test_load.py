"""prometheus.yml loading (promlab.config): defaults, checks, key paths; every config is also run by promtool.

A config promtool accepts must load in promlab and one it rejects must be rejected by promlab.
"""

from __future__ import annotations

import ast
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import promlab.config
from promlab.config import GlobalConfig, load, load_config
from promlab.errors import ConfigError
from promlab.model import Labels, parse_size

VALID = [
    pytest.param("", id="empty-file"),
    pytest.param("scrape_configs:\n", id="null-scrape-configs"),
    pytest.param("""
        global:
          scrape_interval: 5s
          external_labels: {region: eu, __name__: x}
        rule_files: [rules/*.yml]
        scrape_configs:
          - job_name: node
            static_configs: [{targets: ['localhost:9100'], labels: {env: prod}}]
            relabel_configs:
              - {source_labels: [__address__], target_label: __param_target}
              - {source_labels: [__address__], modulus: 4, target_label: shard, action: hashmod}
              - {source_labels: [shard], regex: '0|1|2|3', action: keep}
              - {action: Replace, target_label: "${1}x"}
              - {regex: '__meta_(.+)', action: labelmap}
              - {regex: tmp, action: labeldrop}
              - {source_labels: [a], target_label: b, action: keepequal}
              - {source_labels: [a], target_label: b, action: lowercase}
              - {action: drop}
            metric_relabel_configs:
              - {source_labels: [__name__], regex: 'go_.*', action: drop}
    """, id="relabel-everything"),
    pytest.param("""
        scrape_configs:
          - job_name: a
            scrape_interval: 15s
            scrape_timeout: 15s
            metrics_path: /probe
            scheme: https
            params: {module: [http_2xx, x]}
            honor_labels: true
            honor_timestamps: false
            basic_auth: {username: u, password: p}
            tls_config: {server_name: x, insecure_skip_verify: true}
            sample_limit: 100
            label_limit: 30
            label_name_length_limit: 200
            label_value_length_limit: 200
            target_limit: 5
            body_size_limit: 10MB
            follow_redirects: false
            file_sd_configs: [{files: ['sd/*.json', 'x.yml'], refresh_interval: 1s}]
            http_sd_configs: [{url: 'http://127.0.0.1:1/sd', refresh_interval: 2s}]
          - job_name: b
            authorization: {credentials: tok}
          - job_name: c
            bearer_token: tok
          - job_name: d
            scrape_timeout: 0s
    """, id="all-scrape-keys"),
    pytest.param("""
        alerting:
          alert_relabel_configs: [{regex: tmp, action: labeldrop}]
          alertmanagers:
            - static_configs: [{targets: ['x:9093']}]
              api_version: v2
              timeout: 5s
              path_prefix: /am
        remote_write: []
    """, id="alerting-and-ignored-sections"),
    pytest.param("""
        remote_write:
          - url: http://127.0.0.1:1/api/v1/write
            name: a
            remote_timeout: 5s
            headers: {X-Scope: team}
            write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]
            queue_config: {capacity: 100}
            basic_auth: {username: u, password: p}
          - url: http://127.0.0.1:2/write
        remote_read:
          - url: http://127.0.0.1:1/api/v1/read
            required_matchers: {job: x}
            read_recent: true
    """, id="remote-write-and-read"),
    pytest.param("""
        global: {scrape_interval: 5s}
        scrape_configs:
          - job_name: a
            scrape_interval: 30s
            scrape_timeout: 20s
    """, id="timeout-over-global-interval-ok"),
    pytest.param("""
        scrape_configs:
          - job_name: a
            honor_labels: yes
            scheme: ftp
    """, id="yaml11-bool-and-any-scheme"),
    pytest.param("""
        remote_write:
          - url: http://a/w
            queue_config: {capacity: 100, max_shards: 5, batch_send_deadline: 5s, retry_on_http_429: true}
            metadata_config: {send: false, send_interval: 1m, max_samples_per_send: 50}
    """, id="remote-write-queue-and-metadata"),
    pytest.param("""
        remote_write:
          - url: 'http://u:p@h:1/p?q={x}'
          - url: 'https://é.example:/w'
          - url: 'http://[::1]:9201/w'
    """, id="remote-write-urls-go-accepts"),
]

INVALID = [
    pytest.param("global:\n  sample_limit: 10\n", "global.sample_limit", id="unknown-global-key"),
    pytest.param("scrape_configs:\n  - job_name: a\n    foo: 1\n", "scrape_configs[0].foo", id="unknown-key"),
    pytest.param("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n", "global.scrape_timeout",
                 id="global-timeout"),
    pytest.param("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
                 "scrape_configs[0].scrape_timeout", id="timeout-gt-interval"),
    pytest.param("global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n    scrape_timeout: 10s\n",
                 "scrape_configs[0].scrape_timeout", id="timeout-gt-inherited-interval"),
    pytest.param("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "scrape_configs[1].job_name",
                 id="duplicate-job"),
    pytest.param("scrape_configs:\n  - job_name: ''\n", "scrape_configs[0].job_name", id="empty-job"),
    pytest.param("scrape_configs:\n  - null\n", "scrape_configs[0]", id="null-scrape-config"),
    pytest.param("scrape_configs:\n  - job_name: a\n    scrape_interval: 1.5s\n",
                 "scrape_configs[0].scrape_interval", id="float-duration"),
    pytest.param("scrape_configs:\n  - job_name: a\n    scrape_interval: 5\n",
                 "scrape_configs[0].scrape_interval", id="number-duration"),
    pytest.param("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: replace}\n",
                 "scrape_configs[0].relabel_configs[0]", id="relabel-no-target"),
    pytest.param("scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - {action: keep}\n"
                 "      - {action: hashmod, target_label: x}\n",
                 "scrape_configs[0].metric_relabel_configs[1]", id="hashmod-no-modulus"),
    pytest.param("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: nope}\n",
                 "scrape_configs[0].relabel_configs[0].action", id="bad-action"),
    pytest.param("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a/b:80']}]\n",
                 "scrape_configs[0].static_configs[0].targets[0]", id="target-with-slash"),
    pytest.param("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [x], labels: {a-b: c}}]\n",
                 "scrape_configs[0].static_configs[0].labels.a-b", id="bad-label-name"),
    pytest.param("scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: [a.txt]}]\n",
                 "scrape_configs[0].file_sd_configs[0].files", id="file-sd-extension"),
    pytest.param("scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: []}]\n",
                 "scrape_configs[0].file_sd_configs[0]", id="file-sd-empty"),
    pytest.param("scrape_configs:\n  - job_name: a\n    http_sd_configs: [{url: 'ftp://x'}]\n",
                 "scrape_configs[0].http_sd_configs[0].url", id="http-sd-scheme"),
    pytest.param("scrape_configs:\n  - job_name: a\n    http_sd_configs: [{url: 'http:///a'}]\n",
                 "scrape_configs[0].http_sd_configs[0].url", id="http-sd-no-host"),
    pytest.param("scrape_configs:\n  - job_name: a\n    basic_auth: {username: a, password: b}\n"
                 "    bearer_token: x\n", "scrape_configs[0]", id="basic-and-bearer"),
    pytest.param("scrape_configs:\n  - job_name: a\n    authorization: {type: basic, credentials: x}\n",
                 "scrape_configs[0].authorization", id="authorization-basic"),
    pytest.param("scrape_configs:\n  - job_name: a\n    basic_auth: {username: a, password: b, password_file: f}\n",
                 "scrape_configs[0].basic_auth", id="password-and-file"),
    pytest.param("scrape_configs:\n  - job_name: a\n    sample_limit: -1\n", "scrape_configs[0].sample_limit",
                 id="negative-limit"),
    pytest.param("scrape_configs:\n  - job_name: a\n    body_size_limit: 10\n",
                 "scrape_configs[0].body_size_limit", id="size-without-unit"),
    pytest.param("scrape_configs:\n  - job_name: a\n    body_size_limit: 10kB\n",
                 "scrape_configs[0].body_size_limit", id="size-bad-unit"),
    pytest.param("scrape_configs:\n  - job_name: a\n    params: {a: b}\n", "scrape_configs[0].params.a",
                 id="params-not-list"),
    pytest.param("rule_files: ['[a']\n", "rule_files[0]", id="bad-rule-glob"),
    pytest.param("remote_write:\n  - name: a\n", "remote_write[0].url", id="remote-write-no-url"),
    pytest.param("remote_write:\n  - {url: 'http://a/w', name: x}\n  - {url: 'http://b/w', name: x}\n",
                 "remote_write[1].name", id="remote-write-duplicate-name"),
    pytest.param("remote_write:\n  - {url: 'http://a/w', headers: {Content-Type: x}}\n",
                 "remote_write[0].headers.Content-Type", id="remote-write-reserved-header"),
    pytest.param("remote_write:\n  - {url: 'http://a/w', remote_timeout: 1.5s}\n",
                 "remote_write[0].remote_timeout", id="remote-write-float-timeout"),
    pytest.param("remote_read:\n  - {url: 'http://a/r', bogus: 1}\n", "remote_read[0].bogus",
                 id="remote-read-unknown-key"),
    pytest.param("alerting:\n  alertmanagers:\n    - api_version: v3\n", "alerting.alertmanagers[0].api_version",
                 id="am-api-version"),
    # found by a mutation fuzzer against promtool: these used to load
    pytest.param("remote_write:\n  - url: 'http://a/w'\n    queue_config: {max_samples_per_send: 'http://x'}\n",
                 "remote_write[0].queue_config.max_samples_per_send", id="queue-config-type"),
    pytest.param("remote_write:\n  - url: 'http://a/w'\n    queue_config: {batch_send_deadline: 5x}\n",
                 "remote_write[0].queue_config.batch_send_deadline", id="queue-config-duration"),
    pytest.param("remote_write:\n  - url: 'http://a/w'\n    queue_config: {max_shard: 5}\n",
                 "remote_write[0].queue_config.max_shard", id="queue-config-unknown-key"),
    pytest.param("remote_write:\n  - url: 'http://a/w'\n    metadata_config: {send: [1]}\n",
                 "remote_write[0].metadata_config.send", id="metadata-config-type"),
    pytest.param("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [[a], 'h:1']}]\n",
                 "scrape_configs[0].static_configs[0].targets[0]", id="target-not-a-string"),
    pytest.param("remote_write:\n  - url: 'http://localhos{t:9201/write'\n", "remote_write[0].url",
                 id="remote-write-url-host-char"),
    pytest.param("remote_read:\n  - url: 'http://a:x/read'\n", "remote_read[0].url", id="remote-read-url-port"),
    pytest.param("remote_write:\n  - url: 'http://[::1/w'\n", "remote_write[0].url", id="remote-write-url-bracket"),
    pytest.param("scrape_configs:\n  - job_name: a\n    http_sd_configs: [{url: 'http://a b/sd'}]\n",
                 "scrape_configs[0].http_sd_configs[0].url", id="http-sd-url-space"),
]


def promtool_ok(require_binary: Any, path: Path) -> bool:
    promtool = require_binary("promtool")
    r = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                       timeout=30, check=False)
    return r.returncode == 0


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "prometheus.yml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("text", VALID)
def test_valid_configs_load_like_promtool(tmp_path: Path, text: str, require_binary: Any) -> None:
    p = write(tmp_path, text)
    assert promtool_ok(require_binary, p), "promtool rejects a config this test says is valid"
    load(p)


@pytest.mark.parametrize(("text", "path"), INVALID)
def test_invalid_configs_rejected_like_promtool(tmp_path: Path, text: str, path: str, require_binary: Any) -> None:
    p = write(tmp_path, text)
    assert not promtool_ok(require_binary, p), "promtool accepts a config this test says is invalid"
    with pytest.raises(ConfigError) as ei:
        load(p)
    assert ei.value.file == str(p)
    assert ei.value.path == path


def test_defaults() -> None:
    cfg = load_config({"scrape_configs": [{"job_name": "a"}]})
    sc = cfg.scrape_configs[0]
    assert (cfg.global_config.scrape_interval_ms, cfg.global_config.scrape_timeout_ms) == (60_000, 10_000)
    assert cfg.global_config.evaluation_interval_ms == 60_000
    assert (sc.scrape_interval_ms, sc.scrape_timeout_ms) == (60_000, 10_000)
    assert (sc.metrics_path, sc.scheme, sc.honor_labels, sc.honor_timestamps) == ("/metrics", "http", False, True)


def test_timeout_defaults_to_short_interval() -> None:
    cfg = load_config({"global": {"scrape_interval": "5s"}, "scrape_configs": [{"job_name": "a"},
                      {"job_name": "b", "scrape_interval": "2s"}]})
    assert cfg.global_config.scrape_timeout_ms == 5000
    assert [s.scrape_timeout_ms for s in cfg.scrape_configs] == [5000, 2000]


def test_relative_files_resolve_against_config_dir(tmp_path: Path) -> None:
    p = write(tmp_path, """
        rule_files: [r.yml]
        scrape_configs:
          - job_name: a
            bearer_token_file: tok
            file_sd_configs: [{files: ['sd/*.json']}]
    """)
    cfg = load(p)
    sc = cfg.scrape_configs[0]
    assert cfg.rule_files == (str(tmp_path / "r.yml"),)
    assert sc.http.authorization is not None and sc.http.authorization.credentials_file == str(tmp_path / "tok")
    assert sc.file_sd_configs[0].files == (str(tmp_path / "sd/*.json"),)
    assert sc.file_sd_configs[0].refresh_interval_ms == 300_000


def test_external_labels_and_alerting_kept() -> None:
    cfg = load_config(yaml.safe_load("""
        global: {external_labels: {dc: x}}
        alerting:
          alertmanagers: [{static_configs: [{targets: ['127.0.0.1:9093']}], path_prefix: /am}]
    """))
    assert cfg.global_config.external_labels == Labels({"dc": "x"})
    am = cfg.alerting.alertmanagers[0]
    assert (am.path_prefix, am.api_version, am.timeout_ms) == ("/am", "v2", 10_000)
    assert am.static_configs[0].targets == ("127.0.0.1:9093",)


@pytest.mark.parametrize(("text", "size"), [("1B", 1), ("10KB", 10240), ("10MB", 10 << 20), ("1MiB", 1 << 20),
                                            ("2GB", 2 << 30)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_remote_sections_kept() -> None:
    cfg = load_config(yaml.safe_load("""
        remote_write:
          - {url: 'http://a/w', remote_timeout: 5s, write_relabel_configs: [{regex: tmp, action: labeldrop}]}
        remote_read:
          - {url: 'http://a/r', required_matchers: {job: x}}
    """))
    rw, rr = cfg.remote_write[0], cfg.remote_read[0]
    assert (rw.url, rw.remote_timeout_ms, rw.write_relabel_configs[0].action) == ("http://a/w", 5000, "labeldrop")
    assert (rr.url, rr.remote_timeout_ms, rr.required_matchers) == ("http://a/r", 60_000, Labels({"job": "x"}))
    assert (rr.read_recent, rr.filter_external_labels) == (False, True)


def test_rule_file_globs_expand_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    for name in ("b.yml", "a.yml", "c.txt"):
        (tmp_path / "rules" / name).write_text("groups: []\n")
    cfg = load(write(tmp_path, "rule_files: ['rules/*.yml', rules/a.yml]\n"))
    assert cfg.rule_files == (str(tmp_path / "rules/*.yml"), str(tmp_path / "rules/a.yml"))
    assert cfg.rule_file_paths() == [str(tmp_path / "rules/a.yml"), str(tmp_path / "rules/b.yml")]


def test_constructors_past_three_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        GlobalConfig(1000, 1000, 1000)  # type: ignore[misc]
    assert GlobalConfig(scrape_interval_ms=1000).scrape_timeout_ms == 10_000


def test_config_imports_nothing_above_it() -> None:
    """DESIGN.md: config sits below everything but model."""
    above = ("promlab.scrape", "promlab.storage", "promlab.promql", "promlab.rules", "promlab.api",
             "promlab.session", "promlab.cli", "promlab.notebook")
    found = []
    for f in sorted(Path(promlab.config.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [(f.name, n) for n in names if n.startswith(above)]
    assert found == []


def test_scrape_reexports_config_names() -> None:
    import promlab.scrape as scrape

    assert scrape.Config is promlab.config.Config and scrape.load_config is promlab.config.load_config
    assert scrape.RelabelConfig is promlab.config.RelabelConfig

"""Bad ``prometheus.yml`` files against the real ``promtool check config`` (Prometheus 2.42).

Each file is checked by promtool and loaded by :func:`promlab.config.load.load`; the verdict and
the message (what promtool prints after ``FAILED: parsing YAML file <file>: ``) must agree:
go-yaml's syntax errors with their lines, ``yaml: unmarshal errors:`` type errors (Go type
names, lines), repeated and unknown keys, durations.

Known differences (checked for the verdict only, ``message=False``):

- durations with an unknown unit: 2.42 says ``not a valid duration string``, promlab names the
  unit as 3.x does (``unknown unit "m " in duration "1m "``);
- a bad relabel regex: 2.42 anchors it as ``^(?:...)$``, promlab (as 3.x) as ``^(?s:...)$``.

go-yaml goes on decoding after a type error and lists them all; an error of another kind (a bad
duration, relabel action or regex) stops it and is reported alone, and a section's validation
(a scrape config's ``job_name``, a relabel rule's ``target_label``) is skipped when its fields
had type errors: the ``several type errors`` and ``relabel`` cases check that.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from promlab.config.load import load
from promlab.errors import ConfigError

JOB = "scrape_configs:\n  - job_name: a\n"

CASES = [
    # YAML syntax errors, with go-yaml's (yaml.v2) line rules
    pytest.param("global:\n  scrape_interval: 15s\nscrape_configs: [\n", True, id="unclosed-flow-seq"),
    pytest.param("global: {scrape_interval: 15s\n", True, id="unclosed-flow-map"),
    pytest.param(JOB + "    metrics_path: a: b\n", True, id="mapping-value-in-scalar"),
    pytest.param("a: b: c\n", True, id="error-on-first-line"),
    pytest.param("global:\n\tscrape_interval: 15s\n", True, id="tab-indent"),
    pytest.param(JOB + "\t  scrape_interval: 1m\n", True, id="tab-in-indentation"),
    pytest.param("global:\n  scrape_interval: 15s\n   evaluation_interval: 15s\n", True, id="over-indented"),
    pytest.param(JOB + "    static_configs:\n    - targets: [a]\n   labels: {}\n", True, id="under-indented"),
    pytest.param('global:\n  scrape_interval: "15s\n', True, id="unclosed-quote"),
    pytest.param("global:\n  scrape_interval: *x\n", True, id="unknown-anchor"),
    pytest.param(b"global:\n  external_labels:\n    a: \"\xff\"\n", True, id="not-utf8"),
    pytest.param("global: [\n", True, id="truncated"),
    # repeated keys
    pytest.param("global:\n  scrape_interval: 15s\nglobal:\n  scrape_interval: 10s\n", True, id="dup-top"),
    pytest.param(JOB + "    job_name: b\n", True, id="dup-struct-field"),
    pytest.param('global:\n  external_labels:\n    a: "1"\n    a: "2"\n', True, id="dup-map-key"),
    pytest.param("remote_write:\n- url: http://a\n  url: http://b\n", True, id="dup-remote-write"),
    # a list where a map is expected, and the other way round
    pytest.param("global:\n  - scrape_interval: 15s\n", True, id="list-for-global"),
    pytest.param(JOB + "    static_configs:\n      targets: [a]\n", True, id="map-for-static-configs"),
    pytest.param("scrape_configs:\n  job_name: a\n", True, id="map-for-scrape-configs"),
    pytest.param("scrape_configs: 5\n", True, id="int-for-scrape-configs"),
    pytest.param(JOB + "    static_configs:\n    - [1]\n", True, id="list-for-target-group"),
    pytest.param(JOB + "    static_configs:\n    - targets: a\n", True, id="string-for-targets"),
    pytest.param(JOB + "    static_configs:\n    - labels: [a]\n", True, id="list-for-labels"),
    pytest.param(JOB + "    tls_config: [1]\n", True, id="list-for-tls-config"),
    pytest.param(JOB + "    params: [1]\n", True, id="list-for-params"),
    pytest.param(JOB + "    params:\n      a: b\n", True, id="string-for-param-values"),
    pytest.param("rule_files:\n  a: b\n", True, id="map-for-rule-files"),
    pytest.param("rule_files: [[a]]\n", True, id="list-for-rule-file"),
    pytest.param("global:\n  external_labels: [a]\n", True, id="list-for-external-labels"),
    pytest.param("alerting:\n  alertmanagers: {a: 1}\n", True, id="map-for-alertmanagers"),
    pytest.param("remote_write:\n- url: http://a\n  queue_config: [1]\n", True, id="list-for-queue-config"),
    pytest.param("storage: [1]\n", True, id="list-for-storage"),
    pytest.param("- a\n- b\n", True, id="top-level-list"),
    pytest.param("hello\n", True, id="top-level-scalar"),
    # a string (or worse) where an int, a bool or a string is expected
    pytest.param(JOB + "    sample_limit: abc\n", True, id="string-for-uint"),
    pytest.param(JOB + "    sample_limit: -1\n", True, id="negative-uint"),
    pytest.param(JOB + "    sample_limit: 1.5\n", True, id="float-for-uint"),
    pytest.param(JOB + "    sample_limit: 0x10\n", True, id="hex-uint"),
    pytest.param("remote_write:\n- url: http://a\n  queue_config:\n    capacity: abc\n", True, id="string-for-int"),
    pytest.param("storage:\n  exemplars:\n    max_exemplars: abc\n", True, id="string-for-int64"),
    pytest.param(JOB + "    honor_labels: maybe\n", True, id="string-for-bool"),
    pytest.param(JOB + '    honor_labels: "true"\n', True, id="quoted-bool"),
    pytest.param(JOB + "    honor_timestamps: 1\n", True, id="int-for-bool"),
    pytest.param(JOB + "    honor_labels: y\n", True, id="yaml11-bool-y"),
    pytest.param(JOB + "    tls_config:\n      insecure_skip_verify: abc\n", True, id="string-for-nested-bool"),
    pytest.param("scrape_configs:\n  - job_name: {a: b}\n", True, id="map-for-string"),
    pytest.param("scrape_configs:\n  - job_name: 5\n", True, id="int-for-string"),
    pytest.param(JOB + "    static_configs:\n      - targets: [{a: b}]\n", True, id="map-for-target"),
    pytest.param('global:\n  external_labels:\n    a: [1]\n', True, id="list-for-label-value"),
    # durations
    pytest.param("global:\n  scrape_interval: fast\n", True, id="word-for-duration"),
    pytest.param("global:\n  scrape_interval: 60\n", True, id="int-for-duration"),
    pytest.param("global:\n  scrape_interval: true\n", True, id="bool-for-duration"),
    pytest.param("global:\n  scrape_interval: [1m]\n", True, id="list-for-duration"),
    pytest.param("global:\n  scrape_interval: ' 1m'\n", True, id="duration-leading-space"),
    pytest.param(JOB + "    scrape_timeout: ' 5s'\n", True, id="job-duration-leading-space"),
    pytest.param("global:\n  scrape_interval: '1m '\n", False, id="duration-trailing-space"),
    pytest.param("global:\n  scrape_interval: 0x10\n", False, id="hex-for-duration"),
    pytest.param("global:\n  scrape_interval: ''\n", True, id="empty-duration"),
    pytest.param("global:\n  scrape_interval:\n", True, id="null-duration"),
    pytest.param("remote_write:\n- url: http://a\n  remote_timeout: ' 1s'\n", True,
                 id="remote-write-duration-space"),
    # unknown fields
    pytest.param("foo: 1\n", True, id="unknown-top"),
    pytest.param("global:\n  scrape_intervall: 15s\n", True, id="unknown-global"),
    pytest.param(JOB + "    foo: bar\n", True, id="unknown-scrape"),
    pytest.param(JOB + "    foo: bar\n    bar: baz\n", True, id="two-unknown-scrape"),
    pytest.param(JOB + "    static_configs:\n    - zz: 1\n", True, id="unknown-target-group"),
    pytest.param(JOB + "    basic_auth:\n      zz: 1\n", True, id="unknown-basic-auth"),
    pytest.param("alerting:\n  alertmanagers:\n  - zz: 1\n", True, id="unknown-alertmanager"),
    pytest.param("remote_write:\n- url: http://a\n  queue_config:\n    zz: 1\n", True, id="unknown-queue"),
    pytest.param("storage:\n  zz: 1\n", True, id="unknown-storage"),
    pytest.param("storage:\n  exemplars:\n    zz: 1\n", True, id="unknown-exemplars"),
    # several type errors: go-yaml lists them all, in document order
    pytest.param(JOB + "    sample_limit: abc\n    label_limit: xyz\n", True, id="two-type-errors"),
    pytest.param(JOB + "    sample_limit: abc\n    honor_labels: maybe\n    foo: 1\n", True,
                 id="three-kinds-of-type-error"),
    pytest.param(JOB + "    sample_limit: abc\n  - job_name: b\n    label_limit: x\n", True,
                 id="type-errors-in-two-jobs"),
    pytest.param("global:\n  external_labels: [1]\nscrape_configs: 5\n", True, id="type-errors-in-two-sections"),
    pytest.param("global:\n  foo: 1\nscrape_configs:\n  - [1]\n  - job_name: a\n    sample_limit: x\n", True,
                 id="unknown-key-and-type-errors"),
    pytest.param("storage:\n  zz: 1\n  exemplars: [1]\n", True, id="two-errors-in-storage"),
    # ... but another kind of error stops go-yaml, wherever it is, and is reported alone
    pytest.param(JOB + "    sample_limit: abc\n    scrape_interval: abc\n", True, id="type-error-then-bad-duration"),
    pytest.param("global:\n  evaluation_interval: abc\n" + JOB + "    sample_limit: abc\n", True,
                 id="bad-duration-then-type-error"),
    # ... and a section's own checks are skipped after a type error in it
    pytest.param(JOB + "    scrape_timeout: 1h\n    sample_limit: abc\n", True, id="timeout-check-skipped"),
    pytest.param("scrape_configs:\n  - job_name: ''\n    sample_limit: abc\n", True, id="empty-job-check-skipped"),
    pytest.param("scrape_configs:\n  - job_name: a\n  - job_name: a\n    sample_limit: abc\n", True,
                 id="duplicate-job-check-skipped"),
    pytest.param("rule_files: ['[']\n" + JOB + "    sample_limit: abc\n", True, id="rule-glob-check-skipped"),
    pytest.param("rule_files: ['[']\n" + JOB + "    scrape_interval: abc\n", True, id="bad-duration-before-glob-check"),
    pytest.param(JOB + "    http_sd_configs: [[1]]\n", True, id="list-for-http-sd-check-skipped"),
    pytest.param(JOB + "    file_sd_configs:\n      - files: a\n", True, id="string-for-sd-files-check-skipped"),
    pytest.param("remote_write: [[1]]\n", True, id="list-for-remote-write-check-skipped"),
    pytest.param("remote_write:\n- url: [1]\n", True, id="list-for-remote-url"),
    pytest.param("remote_write:\n- url: http://a\n  headers: {Host: x}\n  name: [1]\n", True,
                 id="reserved-header-check-skipped"),
    pytest.param("remote_write:\n- url: http://a\n  name: x\n- url: http://b\n  name: x\nglobal: {foo: 1}\n", True,
                 id="duplicate-remote-name-check-skipped"),
    pytest.param(JOB + "    basic_auth:\n      username: [1]\n      password: a\n      password_file: b\n", True,
                 id="basic-auth-check-skipped"),
    pytest.param(JOB + "    authorization:\n      type: basic\n    sample_limit: x\n", True,
                 id="authorization-check-skipped"),
    pytest.param(JOB + "    static_configs:\n      - targets: [a/b, [1]]\n", True, id="hostname-check-skipped"),
    pytest.param("global:\n  external_labels:\n    1a: x\n    b: [1]\n", True, id="label-name-check-skipped"),
    pytest.param("global:\n  scrape_timeout: 1h\n  evaluation_interval: [1]\n", True,
                 id="global-timeout-check-skipped"),
    pytest.param(JOB + "    scrape_timeout: 1h\n  - job_name: b\n    sample_limit: x\n", True,
                 id="timeout-check-skipped-by-other-job"),
    pytest.param("scrape_configs:\n  -\n  - job_name: a\n    sample_limit: x\n", True, id="null-job-check-skipped"),
    pytest.param(JOB + "    http_sd_configs:\n      - url: ftp://a\n        refresh_interval: [1]\n", True,
                 id="http-sd-scheme-check-skipped"),
    # checks Prometheus makes when a section is read, worded as it words them
    pytest.param("scrape_configs:\n  -\n  - job_name: a\n", True, id="null-job"),
    pytest.param(JOB + "    static_configs:\n      - targets: [a/b]\n", True, id="url-in-static-target"),
    pytest.param("alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: [a/b]\n", True,
                 id="url-in-alertmanager-target"),
    pytest.param("global:\n  external_labels:\n    1a: x\n", True, id="bad-external-label-name"),
    pytest.param("remote_read:\n- url: http://a\n  required_matchers: {1a: x}\n", True, id="bad-matcher-name"),
    pytest.param("remote_write:\n- url: 'http://a b'\n", True, id="space-in-remote-url"),
    pytest.param("remote_read:\n- url: 'http://a:b'\n", True, id="bad-port-in-remote-url"),
    pytest.param(JOB + "    http_sd_configs:\n      - url: 'http://a b'\n", True, id="space-in-http-sd-url"),
    pytest.param(JOB + "    http_sd_configs:\n      - url: ftp://a\n", True, id="http-sd-scheme"),
    pytest.param(JOB + "    basic_auth:\n      password: a\n      password_file: b\n", True, id="password-and-file"),
    # relabel rules: type errors with their lines, with the file's others; other errors without
    pytest.param(JOB + "    relabel_configs:\n      - modulus: abc\n", True, id="relabel-string-for-uint64"),
    pytest.param(JOB + "    relabel_configs:\n      - modulus: '5'\n", True, id="relabel-quoted-modulus"),
    pytest.param(JOB + "    relabel_configs:\n      - foo: abc\n        modulus: x\n        separator: [1]\n",
                 True, id="relabel-three-type-errors"),
    pytest.param(JOB + "    relabel_configs:\n      - source_labels: a\n", True, id="relabel-string-for-label-names"),
    pytest.param(JOB + "    relabel_configs:\n      - source_labels:\n          - a\n          - {b: 1}\n"
                 "        foo: 1\n", True, id="relabel-map-for-source-label"),
    pytest.param(JOB + "    relabel_configs:\n      - source_labels: [a, [b], '1a']\n", True,
                 id="relabel-bad-source-label-wins"),
    pytest.param(JOB + "    relabel_configs:\n      - [1]\n      - target_label: [1]\n        action: {a: 1}\n",
                 True, id="relabel-list-for-rule"),
    pytest.param(JOB + "    sample_limit: x\n    relabel_configs:\n      - foo: abc\n", True,
                 id="relabel-and-job-type-errors"),
    pytest.param(JOB + "    sample_limit: x\n    relabel_configs:\n      - action: bogus\n", True,
                 id="relabel-bad-action-wins"),
    pytest.param(JOB + "    sample_limit: x\n    relabel_configs:\n      - regex: a\n", True,
                 id="relabel-missing-target-wins"),
    pytest.param(JOB + "    relabel_configs:\n      - action: replace\n        target_label: ''\n", True,
                 id="relabel-empty-target"),
    pytest.param(JOB + "    relabel_configs:\n      - action: hashmod\n        target_label: x\n", True,
                 id="relabel-hashmod-no-modulus"),
    pytest.param(JOB + "    relabel_configs:\n      - action: labelkeep\n        source_labels: [a]\n", True,
                 id="relabel-labelkeep-extra-field"),
    pytest.param(JOB + "    relabel_configs:\n      - regex: '(a'\n        foo: 1\n", False, id="relabel-bad-regex"),
    pytest.param("alerting:\n  alert_relabel_configs:\n  - foo: 1\n", True, id="alert-relabel-unknown-key"),
    pytest.param("remote_write:\n- url: http://a\n  write_relabel_configs:\n  - modulus: x\n", True,
                 id="write-relabel-type-error"),
    # still fine
    pytest.param("global:\n  scrape_interval: 15s\n---\nfoo: 1\n", True, id="second-document-ignored"),
    pytest.param("", True, id="empty-file"),
]


def _promtool_message(promtool: str, path: Path) -> str | None:
    out = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True,
                         timeout=60)
    m = re.search(r"  FAILED: parsing YAML file [^:]*: (.*)", out.stderr, re.S)
    if m is None:
        assert out.returncode == 0, out.stderr
        return None
    return m.group(1).strip()


@pytest.mark.parametrize(("body", "message"), CASES)
def test_bad_config_matches_promtool(body: str | bytes, message: bool, tmp_path: Path,
                                     require_binary: Callable[[str], str]) -> None:
    promtool = require_binary("promtool")
    path = tmp_path / "prometheus.yml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body)
    theirs = _promtool_message(promtool, path)
    try:
        load(path)
        mine = None
    except ConfigError as exc:
        mine = exc.reason
    assert (mine is None) == (theirs is None), f"promtool {theirs!r}\npromlab  {mine!r}"
    if message:
        assert mine == theirs

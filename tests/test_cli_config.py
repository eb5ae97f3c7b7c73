"""``promlab check config`` against the real ``promtool check config`` (Prometheus 2.42).

Each case writes a few files into a temporary directory, runs both tools there on the same
arguments and compares the exit status, stdout, and stderr. promlab adds the key path to a
one-line ``FAILED: parsing YAML file`` message (`` (at scrape_configs[0].sample_limit)``): it is
cut before comparing. Known differences, compared by exit status only (``exact=False``): how a
discovery file that Prometheus reads but promlab's file discovery refuses is reported; a target
address 2.42 gives a default port (``"a/b:80" is not a valid hostname``), 3.x and promlab do not;
a missing config file (promtool's argument parser words it).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from promlab.cli import main

RULES = "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: up\n  - alert: X\n    expr: up == 0\n"
DUP_RULES = RULES + "  - record: a:b\n    expr: up\n"
BAD_RULES = "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: up(\n"
JOB = "scrape_configs:\n  - job_name: a\n"

CASES = [
    pytest.param({"p.yml": "global:\n  scrape_interval: 15s\n"}, ["p.yml"], True, id="minimal"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n" + JOB + "    static_configs:\n      - targets: [h:1]\n",
                  "r.yml": RULES}, ["p.yml"], True, id="with-rules"),
    pytest.param({"p.yml": "rule_files: ['r*.yml', 'none*.yml']\n", "r1.yml": RULES, "r2.yml": RULES},
                 ["p.yml"], True, id="rule-globs"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": BAD_RULES}, ["p.yml"], True, id="bad-rule-file"),
    pytest.param({"p.yml": "rule_files: [missing.yml]\n"}, ["p.yml"], True, id="missing-rule-file"),
    pytest.param({"sub/p.yml": "rule_files: [r.yml]\n", "sub/r.yml": RULES}, ["sub/p.yml"], True,
                 id="rule-file-beside-config"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": DUP_RULES}, ["p.yml"], True, id="lint-duplicate"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": DUP_RULES}, ["--lint-fatal", "p.yml"], True,
                 id="lint-fatal"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": DUP_RULES}, ["--lint=none", "p.yml"], True,
                 id="lint-none"),
    # Comma-separated lint items; an unknown one is warned about on stdout first and ignored.
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": DUP_RULES}, ["--lint=all,bogus", "p.yml"], True,
                 id="lint-list-unknown"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": DUP_RULES}, ["--lint=bogus,none", "--lint-fatal",
                                                                       "p.yml"], True, id="lint-list-none"),
    pytest.param({"p.yml": "rule_files: [r.yml]\n", "r.yml": DUP_RULES}, ["--lint=none,duplicate-rules",
                                                                       "--lint-fatal", "p.yml"], True,
                 id="lint-list-fatal"),
    pytest.param({"p.yml": "global:\n  scrape_interval: abc\n", "q.yml": "rule_files: [r.yml]\n", "r.yml": RULES},
                 ["p.yml", "q.yml"], True, id="bad-then-good"),
    pytest.param({"p.yml": JOB + "    sample_limit: abc\n    label_limit: x\n"}, ["p.yml"], True,
                 id="type-errors"),
    pytest.param({"p.yml": JOB + "    relabel_configs:\n      - action: bogus\n"}, ["p.yml"], True,
                 id="bad-relabel-action"),
    pytest.param({"p.yml": JOB + "    authorization:\n      credentials_file: nope\n"}, ["p.yml"], True,
                 id="missing-credentials-file"),
    pytest.param({"p.yml": JOB + "    bearer_token_file: nope\n"}, ["p.yml"], True, id="missing-bearer-token-file"),
    pytest.param({"p.yml": JOB + "    tls_config:\n      cert_file: c.pem\n      key_file: k.pem\n"}, ["p.yml"],
                 True, id="missing-client-cert"),
    pytest.param({"p.yml": JOB + "    authorization:\n      credentials_file: nope\n"},
                 ["--syntax-only", "p.yml"], True, id="syntax-only"),
    pytest.param({"p.yml": JOB + "    static_configs:\n      - targets: [h:1]\n      - targets: [h:2]\n"
                           "        labels: {__scrape_interval__: abc}\n"}, ["p.yml"], True,
                 id="static-target-fails"),
    pytest.param({"p.yml": JOB + "    static_configs:\n      - targets: [h:1]\n        labels: {x: y}\n"
                           "    relabel_configs:\n      - {source_labels: [x], target_label: __address__, "
                           "replacement: ''}\n"}, ["p.yml"], True, id="relabeled-to-no-address"),
    pytest.param({"p.yml": JOB + "    file_sd_configs:\n      - files: [missing.yml, sd.yml]\n"
                           "alerting:\n  alertmanagers:\n  - file_sd_configs:\n    - files: [nope.json]\n",
                  "sd.yml": "- targets: [h:1]\n"}, ["p.yml"], True, id="file-sd-warnings"),
    pytest.param({"p.yml": JOB + "    file_sd_configs:\n      - files: [sd.json]\n    scrape_interval: 1m\n",
                  "sd.json": '[{"targets": ["h:1"], "labels": {"__scrape_timeout__": "2m"}}]'}, ["p.yml"], True,
                 id="file-sd-target-fails"),
    pytest.param({"p.yml": JOB + "    file_sd_configs:\n      - files: [sd.yml]\n",
                  "sd.yml": "- targets: [h:1]\n  foo: 1\n"}, ["p.yml"], False, id="file-sd-bad-file"),
    pytest.param({"p.yml": JOB + "    file_sd_configs:\n      - files: [sd.yml]\n",
                  "sd.yml": "- targets: [h/1]\n"}, ["p.yml"], False, id="file-sd-bad-host"),
    pytest.param({"p.yml": JOB + "    static_configs:\n      - targets: [a/b]\n    relabel_configs:\n"
                           "      - {source_labels: [x], target_label: y}\n"}, ["p.yml"], False,
                 id="url-in-relabeled-static-target"),
    pytest.param({}, ["missing.yml"], False, id="missing-config"),
]

_AT = re.compile(r"^(  FAILED: parsing YAML file .*) \(at [^)]*\)$", re.M)


@pytest.mark.parametrize(("files", "argv", "exact"), CASES)
def test_check_config_matches_promtool(files: dict[str, str], argv: list[str], exact: bool, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       require_binary: Callable[[str], str]) -> None:
    promtool = require_binary("promtool")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    theirs = subprocess.run([promtool, "check", "config", *argv], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    monkeypatch.chdir(tmp_path)
    code = main(["check", "config", *argv])
    out, err = capsys.readouterr()
    assert code == theirs.returncode, f"promtool:\n{theirs.stdout}{theirs.stderr}\npromlab:\n{out}{err}"
    if exact:
        assert out == theirs.stdout
        assert _AT.sub(r"\1", err) == theirs.stderr


def test_failed_parse_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yml").write_text(JOB + "    scrape_interval: fast\n")
    assert main(["check", "config", str(tmp_path / "p.yml")]) == 1
    assert 'not a valid duration string: "fast" (at scrape_configs[0].scrape_interval)' in capsys.readouterr().err

"""``python -m benchmarks.rules`` at a tiny size: promlab and Prometheus agree, the table prints."""

from __future__ import annotations

import pytest

from benchmarks import realprom

pytestmark = pytest.mark.realprom


def test_rules_benchmark_smoke(tmp_path) -> None:
    realprom.require_binary("promtool")
    realprom.require_binary("prometheus")
    from benchmarks import rules

    r = rules.run(20, 1, 1, str(tmp_path))
    assert r["samples"] == 20 * 1440 and r["agree"] and r["promlab_points"] > 0
    assert r["fired"] > 0 and r["episodes"] >= r["fired"]
    table = rules.format_table(r)
    assert "promlab backtest, warm median (s)" in table and "(agree)" in table
    # a second run reuses the generated stores
    assert rules.run(20, 1, 1, str(tmp_path))["promlab_points"] == r["promlab_points"]

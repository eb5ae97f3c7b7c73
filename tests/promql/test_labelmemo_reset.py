"""The label memo tables start over together: after the shared intern table is full, equal
derived label sets are still one object (grouping compares them by identity)."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.model import Labels
from promlab.promql import labelmemo
from promlab.promql.engine import Engine
from promlab.storage import MemoryStorage

T = 60_000


def _sum_by_job(eng: Engine, st: MemoryStorage) -> dict[str, float]:
    r = eng.instant(st, "sum by (job) (up)", T).value
    return {str(ls): float(v) for ls, v in zip(r.labels, r.values[:, 0], strict=True)}


@pytest.mark.parametrize("big", [40, 70, 300], ids=["below", "just-past", "far-past"])
def test_grouping_after_tables_start_over(monkeypatch: pytest.MonkeyPatch, big: int) -> None:
    monkeypatch.setattr(labelmemo, "MAX_ENTRIES", 64)
    eng = Engine()
    st = MemoryStorage()
    app = st.appender()
    for i in range(3):
        app.append(Labels({"__name__": "up", "job": "a", "instance": f"i{i}"}), T, 1.0)
    app.commit()
    assert _sum_by_job(eng, st) == {'{job="a"}': 3.0}
    # other traffic fills the tables (abs drops the name: one derived set per series)
    series = [Labels({"__name__": "big", "i": str(i)}) for i in range(big)]
    app = st.appender()
    app.append_batch(series, np.arange(big), np.full(big, T, np.int64), np.ones(big))
    app.commit()
    assert len(eng.instant(st, "abs(big)", T).value.labels) == big
    # a new series of job "a": its group key must be the same object as the old ones'
    app = st.appender()
    app.append(Labels({"__name__": "up", "job": "a", "instance": "new"}), T, 1.0)
    app.commit()
    assert _sum_by_job(eng, st) == {'{job="a"}': 4.0}
    r = eng.instant(st, "count by (job) (up) + 0", T).value
    assert [str(ls) for ls in r.labels] == ['{job="a"}'] and float(r.values[0, 0]) == 4.0
    assert labelmemo.size() <= max(64, 2 * big + 16)


def test_clear_caches_forgets_and_answers_alike() -> None:
    from promlab.promql.engine import clear_caches
    from promlab.promql.eval import groupmemo

    eng = Engine()
    st = MemoryStorage()
    series = [Labels({"__name__": "up", "job": f"j{i % 3}", "instance": f"i{i}"})
              for i in range(64)]
    app = st.appender()
    app.append_batch(series, np.arange(64), np.full(64, T, np.int64), np.ones(64))
    app.commit()
    before = _sum_by_job(eng, st)
    assert labelmemo.size() > 0 and groupmemo.size() > 0
    clear_caches()
    assert labelmemo.size() == 0
    assert groupmemo.size() == 0
    assert _sum_by_job(eng, st) == before == {'{job="j0"}': 22.0, '{job="j1"}': 21.0,
                                              '{job="j2"}': 21.0}

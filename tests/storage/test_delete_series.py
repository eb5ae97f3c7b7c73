"""``ParquetStore.delete_series`` on blocks not read yet (after a restart, or just flushed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store

T0 = 1_700_000_000_000 // 86_400_000 * 86_400_000
A = Labels({"__name__": "req_total", "job": "a"})
B = Labels({"__name__": "req_total", "job": "b"})


def _count(path: Path, job: str) -> int:
    with open_store(path, readonly=True) as st:
        q = st.querier(0, 2**62)
        try:
            return q.select([Matcher(MatchType.EQUAL, "job", job)]).num_samples
        finally:
            q.close()


@pytest.mark.parametrize("reopen", [True, False], ids=["after-restart", "head-flushed-by-delete"])
def test_delete_series_on_unread_blocks(tmp_path: Path, reopen: bool) -> None:
    st = open_store(tmp_path, ooo_window=None, wal_fsync=False)
    app = st.appender()
    for i in range(20):
        app.append(A, T0 + i * 15_000, float(i))
        app.append(B, T0 + i * 15_000, float(i))
    app.commit()
    if reopen:
        st.flush()
        st.close()
        st = open_store(tmp_path, ooo_window=None, wal_fsync=False)
    try:
        # samples 5..9 of job a only
        assert st.delete_series([[Matcher(MatchType.EQUAL, "job", "a")]],
                                T0 + 5 * 15_000, T0 + 9 * 15_000) == 1
    finally:
        st.close()
    assert (_count(tmp_path, "a"), _count(tmp_path, "b")) == (15, 20)

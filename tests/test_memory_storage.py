import numpy as np

from promlab.model import STALE_NAN, Labels, Matcher, MatchType, is_stale
from promlab.storage import MemoryStorage, Querier, Storage


def _name(n):
    return Matcher(MatchType.EQUAL, "__name__", n)


def test_protocols():
    st = MemoryStorage()
    assert isinstance(st, Storage)
    assert isinstance(st.querier(0, 1), Querier)


def test_append_commit_select_sorted_csr():
    st = MemoryStorage()
    app = st.appender()
    series = [Labels({"__name__": "m", "i": "b"}), Labels({"__name__": "m", "i": "a"})]
    idx = np.array([0, 1, 0, 1, 0])
    ts = np.array([10, 10, 20, 20, 5])
    vals = np.array([1.0, 2.0, 3.0, 4.0, STALE_NAN])
    app.append_batch(series, idx, ts, vals)
    assert len(st.querier(0, 100).select([_name("m")])) == 0  # not visible before commit
    stats = app.commit()
    assert stats.appended == 5 and stats.new_series == 2
    ss = st.querier(0, 100).select([_name("m")])
    assert [ls["i"] for ls in ss.labels] == ["a", "b"]
    assert ss.offsets.tolist() == [0, 2, 5]
    assert ss.ts_ms.tolist() == [10, 20, 5, 10, 20]
    assert is_stale(ss.values[2])


def test_first_write_wins_and_time_range():
    """As Prometheus: another value at a series' latest timestamp is refused (the first write
    wins), in one commit or a later one."""
    st = MemoryStorage()
    ls = Labels({"__name__": "m"})
    app = st.appender()
    app.append(ls, 10, 1.0)
    app.append(ls, 10, 2.0)
    app.append(ls, 30, 3.0)
    app.commit()
    app.append(ls, 30, 4.0)
    stats = app.commit()
    assert stats.duplicates == 1 and stats.appended == 0
    assert st.querier(0, 20).select([_name("m")]).values.tolist() == [1.0]
    assert st.querier(0, 40).select([_name("m")]).values.tolist() == [1.0, 3.0]


def test_rollback_and_labels_api():
    st = MemoryStorage()
    app = st.appender()
    app.append(Labels({"__name__": "a", "job": "x"}), 1, 1.0)
    app.rollback()
    app.commit()
    assert st.querier(0, 10).label_names() == []
    app.append(Labels({"__name__": "a", "job": "x"}), 1, 1.0)
    app.append(Labels({"__name__": "b", "job": "y"}), 1, 1.0)
    app.commit()
    q = st.querier(0, 10)
    assert q.label_names() == ["__name__", "job"]
    assert q.label_values("job") == ["x", "y"]
    assert q.label_values("job", [_name("b")]) == ["y"]
    assert q.series([Matcher(MatchType.REGEX, "job", "x|y")]) == [
        Labels({"__name__": "a", "job": "x"}),
        Labels({"__name__": "b", "job": "y"}),
    ]


def test_appends_in_time_order_grow_buffers_geometrically():
    """A series fed one sample at a time (a rule test's input, step by step) costs O(n): its
    buffers are reallocated a logarithmic number of times, and what readers took before an
    append is never written again."""
    st = MemoryStorage()
    ls = Labels({"__name__": "m"})
    buffers = set()
    held = []
    for t in range(1, 5001):
        app = st.appender()
        app.append(ls, t * 1000, float(t))
        app.commit()
        s = st._series[ls]
        buffers.add(id(s._ts))
        if t % 1000 == 0:
            ss = st.querier(0, 10**9).select([_name("m")])
            held.append((ss.ts_ms.copy(), ss.ts_ms, ss.values))
    assert len(buffers) <= 12
    ss = st.querier(0, 10**9).select([_name("m")])
    assert ss.ts_ms.tolist() == [t * 1000 for t in range(1, 5001)]
    assert ss.values.tolist() == [float(t) for t in range(1, 5001)]
    for copy, ts, vals in held:
        assert ts.tolist() == copy.tolist() and vals.tolist() == (copy / 1000).tolist()


def test_out_of_order_and_equal_appends_after_in_order_ones():
    st = MemoryStorage(ooo_window_ms=10**9)
    ls = Labels({"__name__": "m"})
    rng = np.random.default_rng(3)
    want = {}
    for _ in range(300):
        t = int(rng.integers(0, 400)) * 1000
        v = float(rng.integers(0, 100))
        app = st.appender()
        app.append(ls, t, v)
        app.commit()
        want.setdefault(t, v)  # (the first write at a timestamp wins)
    ss = st.querier(0, 10**9).select([_name("m")])
    assert ss.ts_ms.tolist() == sorted(want)
    assert ss.values.tolist() == [want[t] for t in sorted(want)]

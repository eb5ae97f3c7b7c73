"""The head's incremental label index and sample delta: equal to a rebuild, to MemoryStorage
under interleaved commits/queries/flushes, and consistent under a concurrent writer."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage import head as head_mod
from promlab.storage.postings import GrowingIndex, LabelIndex

from .conftest import T0, assert_same

MIN = 60_000
EQ, NE, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX

MATCHERS = [
    pytest.param([Matcher(EQ, "__name__", "stable")], id="eq-name"),
    pytest.param([Matcher(RE, "__name__", "churn|stable"), Matcher(RE, "i", "1.*")], id="regex"),
    pytest.param([Matcher(EQ, "__name__", "churn"), Matcher(NE, "round", "3")], id="ne"),
    pytest.param([Matcher(RE, "__name__", ".+"), Matcher(EQ, "job", "")], id="absent-label"),
    pytest.param([Matcher(NRE, "round", "1|2"), Matcher(EQ, "__name__", "churn")], id="nre"),
    pytest.param([Matcher(EQ, "foo", "bar")], id="unknown-name"),
    pytest.param([Matcher(EQ, "__name__", "nope")], id="unknown-value"),
]


def _series(r: int, n_stable: int = 40, n_churn: int = 15) -> list[Labels]:
    stable = [Labels({"__name__": "stable", "job": "j", "i": str(i)}) for i in range(n_stable)
              if (i + r) % 5]
    churn = [Labels({"__name__": "churn", "round": str(r), "i": str(i)}) for i in range(n_churn)]
    return stable + churn


def _same_index(a: LabelIndex, b: LabelIndex, matchers: list[Matcher]) -> None:
    assert a.n == b.n
    assert a.match(matchers).tolist() == b.match(matchers).tolist()
    mask = a.match(matchers)
    assert a.names() == b.names() and a.names(mask) == b.names(mask)
    for name in ("__name__", "round", "i", "job", "foo"):
        assert a.values(name) == b.values(name)
        assert a.values(name, mask) == b.values(name, mask)


@pytest.mark.parametrize("matchers", MATCHERS)
def test_growing_index_equals_rebuild(matchers: list[Matcher]) -> None:
    idx = GrowingIndex()
    rows: list[Labels] = []
    snaps: list[tuple[LabelIndex, int]] = []
    for r in range(8):
        batch = _series(r, n_stable=30 + 100 * (r == 5))  # one batch forces buffer growth
        idx.extend(batch)
        rows.extend(batch)
        snaps.append((idx.snapshot(), len(rows)))
    for snap, n in snaps:  # earlier snapshots are unaffected by later appends
        _same_index(snap, LabelIndex.from_labels(rows[:n]), matchers)
    keep = np.arange(len(rows)) % 3 != 1
    kept = idx.select(keep)
    _same_index(kept.snapshot(), LabelIndex.from_labels([ls for ls, k in zip(rows, keep.tolist(),
                                                                             strict=True) if k]),
                matchers)
    _same_index(snaps[-1][0], LabelIndex.from_labels(rows), matchers)  # select left it alone
    kept.extend(_series(99))
    assert kept.snapshot().n == int(keep.sum()) + len(_series(99))


def _commit(stores: list, series: list[Labels], ts: np.ndarray, vals: np.ndarray) -> None:
    idx = np.arange(len(series), dtype=np.int64)
    for st in stores:
        app = st.appender()
        app.append_batch(series, idx, ts, vals)
        app.commit()


def _check(st, mem: MemoryStorage, matchers: list[Matcher], hi: int) -> None:
    for lo_, hi_ in ((0, hi), (T0 + 30 * MIN, T0 + 130 * MIN)):
        q, mq = st.querier(lo_, hi_), mem.querier(lo_, hi_)
        assert_same(q.select(matchers), mq.select(matchers))
        assert q.series(matchers) == mq.series(matchers)
        assert q.label_names(matchers) == mq.label_names(matchers)
        assert q.label_values("round", matchers) == mq.label_values("round", matchers)
        q.close()


@pytest.mark.parametrize("fold_min", [pytest.param(0, id="fold-always"),
                                      pytest.param(40, id="fold-sometimes"),
                                      pytest.param(10**9, id="fold-never")])
@pytest.mark.parametrize("matchers", MATCHERS)
def test_interleaved_commits_queries_flushes_match_memory(
        tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch, fold_min: int,
        matchers: list[Matcher]) -> None:
    monkeypatch.setattr(head_mod, "FOLD_MIN", fold_min)
    mem = MemoryStorage(ooo_window_ms=0)  # the store's default: out-of-order samples refused
    rng = np.random.default_rng(fold_min % 97)
    with open_store(tmp_path, block_duration="1h", wal_fsync=False, auto_compact=False,
                    cache_size=0) as st:
        hi = T0
        for r in range(14):
            series = _series(r)
            ts = np.full(len(series), T0 + r * 20 * MIN, np.int64)
            hi = int(ts[0])
            _commit([st, mem], series, ts, np.round(rng.normal(size=len(series)), 3))
            if r % 3 == 1:
                # Rewrite the previous round's samples and older ones: refused (out of order) by both.
                old = np.full(len(series), T0 + (r - 1) * 20 * MIN, np.int64)
                old[::4] -= 7 * MIN
                _commit([st, mem], series, old, np.round(rng.normal(size=len(series)), 3))
            if r == 8:
                st.flush()
            if r % 2 == 0 or r == 8:
                _check(st, mem, matchers, hi)
        _check(st, mem, matchers, hi)


@pytest.mark.parametrize("flush_at", [pytest.param((), id="head-only"),
                                      pytest.param((10, 25), id="with-flushes")])
def test_concurrent_writer_readers_see_commit_prefixes(
        tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch, flush_at: tuple[int, ...]
        ) -> None:
    """Every querier sees commits 0..k-1 completely and none of the later ones."""
    monkeypatch.setattr(head_mod, "FOLD_MIN", 300)
    n_stable, n_churn, steps, commits = 300, 40, 3, 40
    stable = [Labels({"__name__": "stable", "i": str(i)}) for i in range(n_stable)]
    errors: list[str] = []
    checked = [0]
    done = threading.Event()
    sel_churn = [Matcher(EQ, "__name__", "churn")]
    sel_stable = [Matcher(EQ, "__name__", "stable")]

    with open_store(tmp_path, wal_fsync=False, auto_compact=False, cache_size=0) as st:

        def writer() -> None:
            try:
                for c in range(commits):
                    churn = [Labels({"__name__": "churn", "c": str(c), "i": str(i)})
                             for i in range(n_churn)]
                    series = stable + churn
                    idx = np.repeat(np.arange(len(series), dtype=np.int64), steps)
                    ts = np.tile(T0 + c * 10_000 + np.arange(steps, dtype=np.int64), len(series))
                    app = st.appender()
                    app.append_batch(series, idx, ts, np.full(ts.shape[0], float(c)))
                    app.commit()
                    if c in flush_at:
                        st.flush()
            except Exception as e:  # pragma: no cover - reported below
                errors.append(f"writer: {e!r}")
            finally:
                done.set()

        def visible(ss, per_series: int) -> set[int]:
            """The commits in ``ss``; each must be complete in every series it wrote."""
            cs = ss.values.astype(np.int64)
            if not ss.labels:
                return set()
            lens = np.diff(ss.offsets)
            if not (lens == lens[0]).all():
                raise AssertionError(f"uneven series lengths {sorted(set(lens.tolist()))}")
            if per_series:  # stable: every series holds steps samples of each commit seen
                got = set(cs[: lens[0]].tolist())
                assert lens[0] == steps * len(got)
                assert len(ss.labels) == n_stable
                return got
            rounds = {int(ls["c"]) for ls in ss.labels}
            assert len(ss.labels) == n_churn * len(rounds) and lens[0] == steps
            assert set(cs.tolist()) == rounds
            return rounds

        def reader() -> None:
            try:
                while True:
                    finished = done.is_set()
                    q = st.querier(0, 2**62)
                    a = visible(q.select(sel_churn), 0)
                    b = visible(q.select(sel_stable), 1)
                    q.close()
                    if a != b or a != set(range(len(a))):
                        raise AssertionError(f"not a commit prefix: churn {sorted(a)} stable {sorted(b)}")
                    checked[0] += 1
                    if finished:
                        if len(a) != commits:
                            raise AssertionError(f"final view has {len(a)} commits")
                        return
            except Exception as e:
                errors.append(f"reader: {e!r}")

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "threads did not finish"
    assert not errors, errors
    assert checked[0] >= 2


def test_head_view_without_offsets_selects_the_same() -> None:
    """A HeadView built from plain sorted arrays (no CSR offsets) answers like the head's own."""
    from promlab.storage.head import Head
    from promlab.storage.querier import HeadView

    h = Head()
    series = _series(0)
    h.add_series([(ls.hash, ls) for ls in series])
    refs = np.repeat(np.arange(len(series), dtype=np.int64), 4)
    ts = np.tile(np.arange(4, dtype=np.int64) * 10, len(series))
    h.append(refs, ts, ts.astype(np.float64))
    h.samples()  # fold: everything in the base
    h.append(refs[::3], ts[::3] + 5, -ts[::3].astype(np.float64))  # into the delta
    v = h.view()
    assert v.delta[0].shape[0] and v.offsets is not None
    plain = HeadView(v.labels, v.sids, v.index, *h.samples())
    mask = v.index.match([Matcher(RE, "i", "1.*")])
    for lo, hi in ((0, 100), (5, 25), (31, 31)):
        a, b = v.select(mask, lo, hi), plain.select(mask, lo, hi)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert v.in_range(lo, hi).tolist() == plain.in_range(lo, hi).tolist()


def test_head_view_is_kept_only_while_the_head_is_unchanged() -> None:
    """A view is reused between changes (a follower's queries between WAL polls) and a new
    one sees every change: new series, appended samples, a fold, a cut."""
    from promlab.storage.head import Head

    h = Head()
    empty = h.view()
    assert h.view() is empty
    series = _series(0)
    h.add_series([(ls.hash, ls) for ls in series[:10]])
    v1 = h.view()
    assert v1 is not empty and v1.index.n == 10 and h.view() is v1
    refs = np.repeat(np.arange(10, dtype=np.int64), 3)
    ts = np.tile(np.arange(3, dtype=np.int64) * 10, 10)
    h.append(refs, ts, ts.astype(np.float64))
    v2 = h.view()
    assert v2 is not v1 and h.view() is v2
    everything = np.ones(10, bool)
    assert v2.select(everything, 0, 100)[1].shape[0] == 30
    h.samples()  # fold into the base
    v3 = h.view()
    assert v3 is not v2 and v3.select(everything, 0, 100)[1].shape[0] == 30
    h.add_series([(ls.hash, ls) for ls in series[10:12]])
    v4 = h.view()
    assert v4.index.n == 12 and h.view() is v4
    h.append(np.array([3], np.int64), np.array([40], np.int64), np.array([1.0]))
    assert h.view().select(everything, 0, 100)[1].shape[0] == 31
    h.cut(15)
    v5 = h.view()
    assert v5 is not v4 and int(v5.ts.min() if v5.ts.shape[0] else 15) >= 15
    assert h.view() is v5

"""Backfilling recording rules over history (``promtool tsdb create-blocks-from rules``).

Each recording rule is evaluated as range queries at its group's interval over ``[start, end]``
and the results are written into the store: samples at the group's evaluation times (minus its
``query_offset``), labelled as the live rule would label them. Unlike promtool, rules of a group
see the series that earlier rules of the group recorded (through an in-memory overlay, as in
:func:`~promlab.rules.backtest.backtest`), so chains of recording rules backfill correctly.

The range is cut into chunks of ``chunk_steps`` evaluations (bounded memory, a progress bar);
an overlay keeps the previous chunk's output so rules over recorded series see their recent past.
A store with ``backfill()`` (:class:`~promlab.storage.ParquetStore`) gets its history written
straight to blocks; batches that reach into its head's time range, and stores without
``backfill()`` (:class:`~promlab.storage.MemoryStorage`), go through an appender. Alerting rules
are skipped (promtool skips them too): their ``ALERTS`` come from
:func:`~promlab.rules.backtest.backtest`.

Examples
--------
>>> from promlab.model import Labels, Matcher, MatchType
>>> from promlab.storage import MemoryStorage
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "x", "job": "a"}), [0, 60_000, 120_000], [1.0, 2.0, 3.0])
>>> rule = RecordingRule(name="job:x:double", expr="x * 2")
>>> backfill(rule, 0, 120_000, data=st, step="1m").samples
3
>>> st.querier(0, 120_000).select([Matcher(MatchType.EQUAL, "__name__", "job:x:double")]).values.tolist()
[2.0, 4.0, 6.0]
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promlab import progress as _progress
from promlab.model import Labels, parse_duration, parse_time
from promlab.model.arrays import unique
from promlab.promql.engine import Engine
from promlab.promql.values import Vector
from promlab.rules.backtest import RulesLike, as_groups, recorded
from promlab.rules.query import OverlayQueryable, query_funcs
from promlab.rules.rule import RecordingRule
from promlab.storage.interface import AppendStats, Storage
from promlab.storage.memory import MemoryStorage

__all__ = ["RuleBackfillStats", "backfill"]

@dataclass
class RuleBackfillStats:
    """What :func:`backfill` wrote: per recording rule (``group/record``) the samples written,
    the total, refusals by the store, new block directories and the time taken."""

    samples: int = 0
    series: int = 0
    per_rule: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    out_of_bounds: int = 0
    duplicates: int = 0
    blocks: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Writer:
    """Writes rule output: straight to blocks when the store can, else through appenders."""

    def __init__(self, store: Storage, stats: RuleBackfillStats) -> None:
        self.store = store
        self.stats = stats
        make = getattr(store, "backfill", None)
        self.bulk: Any = make() if make is not None else None
        self.series: set[Labels] = set()

    def write(self, vec: Vector, ts_ms: np.ndarray) -> int:
        rows, cols = np.nonzero(vec.present)
        if rows.size == 0:
            return 0
        labels = list(vec.labels)
        idx = rows.astype(np.int64)
        ts = np.asarray(ts_ms, np.int64)[cols]
        vals = vec.values[rows, cols].astype(np.float64)
        res: AppendStats | None = self.bulk.add(labels, idx, ts, vals) if self.bulk is not None else None
        if res is None:
            app = self.store.appender()
            try:
                app.append_batch(labels, idx, ts, vals)
            except BaseException:
                app.rollback()
                raise
            res = app.commit()
        self.series.update(labels[i] for i in unique(idx).tolist())
        self.stats.out_of_order += res.out_of_order
        self.stats.out_of_bounds += res.out_of_bounds
        self.stats.duplicates += res.duplicates
        return int(res.appended)

    def finish(self) -> None:
        if self.bulk is not None:
            self.stats.blocks.extend(self.bulk.finish())
        self.stats.series = len(self.series)


def _ms(t: Any) -> int:
    return int(t) if isinstance(t, int | np.integer) else parse_time(t)


def backfill(rules_or_file: RulesLike, start: Any, end: Any, *, data: Storage | str | os.PathLike[str],
             step: str | int | None = None, chunk_steps: int = 1440, engine: Engine | None = None,
             progress: bool | None = None) -> RuleBackfillStats:
    """Evaluate the recording rules over ``[start, end]`` and write their series into ``data``.

    Parameters
    ----------
    rules_or_file
        A rule file path, a :class:`~promlab.rules.rule.RuleGroup`, a rule, or a list of those.
    start, end
        First and last evaluation time (datetime, Timestamp, RFC 3339, unix seconds,
        ``now-1d``, or int milliseconds). Groups evaluate at ``start, start + interval, ...``.
    data
        A writable store, or a store directory (opened writable and closed again).
    step
        Overrides every group's ``interval``.
    chunk_steps
        Evaluations per range query (memory grows with series × ``chunk_steps``).
    engine
        The engine to evaluate with (its lookback and limits); a default one otherwise.
    progress
        Show a progress bar over chunks × rules (None: :data:`promlab.progress.DEFAULT`).

    Returns
    -------
    RuleBackfillStats
    """
    t0 = time.perf_counter()
    step_ms = None if step is None else step if isinstance(step, int) else parse_duration(step)
    start_ms, end_ms = _ms(start), _ms(end)
    if end_ms < start_ms:
        raise ValueError("end must not be before start")
    if chunk_steps < 1:
        raise ValueError("chunk_steps must be at least 1")
    groups = [g for g in as_groups(rules_or_file, step_ms)
              if any(isinstance(r, RecordingRule) for r in g.rules)]
    owned = isinstance(data, str | os.PathLike)
    if owned:
        from promlab.storage import open_store

        store: Storage = open_store(data, progress=progress)  # type: ignore[arg-type]
    else:
        store = data  # type: ignore[assignment]
    stats = RuleBackfillStats()
    eng = engine if engine is not None else Engine()
    try:
        writer = _Writer(store, stats)
        plan = []
        for g in groups:
            evals = np.arange(start_ms, end_ms + 1, g.interval_ms, dtype=np.int64)
            rules = [r for r in g.rules if isinstance(r, RecordingRule)]
            plan.append((g, evals, rules))
        total = sum(-(-len(ev) // chunk_steps) * len(rules) for _, ev, rules in plan)
        with _progress.bar(progress, total=total, desc="rules backfill", unit="query") as bar:
            for g, evals, _rules in plan:
                prev = MemoryStorage()
                for lo in range(0, evals.shape[0], chunk_steps):
                    q_ms = evals[lo:lo + chunk_steps] - g.query_offset_ms
                    cur = MemoryStorage()
                    _, ranged = query_funcs(OverlayQueryable(OverlayQueryable(store, prev), cur), eng)
                    for rule in g.rules:
                        if not isinstance(rule, RecordingRule):
                            continue
                        vec, _ = recorded(rule, g.rule_labels(rule), ranged(
                            rule.expr, int(q_ms[0]), int(q_ms[-1]), g.interval_ms), limit=g.limit)
                        for i, ls in enumerate(vec.labels):
                            m = vec.present[i]
                            if m.any():
                                cur.add_series(ls, q_ms[m], vec.values[i, m])
                        n = writer.write(vec, q_ms)
                        key = f"{g.name}/{rule.name}"
                        stats.per_rule[key] = stats.per_rule.get(key, 0) + n
                        stats.samples += n
                        bar.update(1)
                    prev = cur
        writer.finish()
    finally:
        if owned:
            store.close()
    stats.seconds = time.perf_counter() - t0
    return stats

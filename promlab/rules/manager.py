"""The live rule manager: every group evaluated on its own timer, writing back to the store,
alerts sent to Alertmanager.

As Prometheus's ``rules.Manager``:

* **Alignment.** A group evaluates at the times ``offset + k × interval`` where ``offset`` is
  the xxhash64 of the label set ``{file=<file>, name=<name>}`` modulo the interval (in ns):
  :func:`eval_timestamp` (Prometheus's ``Group.EvalTimestamp``). So a group keeps its phase
  across restarts and reloads, and groups spread over the interval. The first evaluation is at
  the first such time one interval after the start; evaluations that could not run in time are
  skipped and counted (``prometheus_rule_group_iterations_missed_total``).
* **Restore.** Groups of the first :meth:`RuleManager.update` write no ``ALERTS`` series until,
  after their second evaluation, the ``for`` state of their alerts has been read back from
  ``ALERTS_FOR_STATE`` (:mod:`promlab.rules.restore`).
* **Reload.** :meth:`RuleManager.update` with a new list of groups keeps unchanged groups
  running untouched; a changed group is stopped and replaced by one that takes over the state
  of its rules with the same name and labels (alerts, series written); a removed group's series
  get staleness markers two intervals later.
* **Metrics** in the given ``prometheus_client`` registry, Prometheus's names and
  ``rule_group="<file>;<name>"`` label: ``prometheus_rule_evaluations_total``,
  ``prometheus_rule_evaluation_failures_total``, ``prometheus_rule_group_iterations_total``,
  ``prometheus_rule_group_iterations_missed_total``, ``prometheus_rule_group_interval_seconds``,
  ``prometheus_rule_group_last_duration_seconds``,
  ``prometheus_rule_group_last_evaluation_timestamp_seconds``,
  ``prometheus_rule_group_last_evaluation_samples``, ``prometheus_rule_group_rules``, and the
  summaries ``prometheus_rule_evaluation_duration_seconds``,
  ``prometheus_rule_group_duration_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import xxhash
from prometheus_client import CollectorRegistry

from promlab.model import STALE_NAN
from promlab.promql.engine import Engine
from promlab.rules.alerting import Alert
from promlab.rules.group import DEFAULT_RESEND_DELAY_MS, GroupState
from promlab.rules.notifier import Notifier, to_notifier_alerts
from promlab.rules.query import QueryFunc, query_funcs
from promlab.rules.restore import (
    DEFAULT_FOR_GRACE_PERIOD_MS,
    DEFAULT_OUTAGE_TOLERANCE_MS,
    restore_for_state,
)
from promlab.rules.rule import RuleGroup
from promlab.rules.rulemetrics import rule_metrics
from promlab.rules.views import alert_json, group_json, query_string
from promlab.storage.interface import Storage

__all__ = ["RuleManager", "eval_timestamp", "group_offset_ns"]

log = logging.getLogger("promlab.rules")

_NS_PER_MS = 1_000_000


def group_offset_ns(group: RuleGroup) -> int:
    """The group's phase in its interval, in ns: Prometheus's label-set hash of
    ``{file, name}`` (xxhash64 of ``file\\xff<file>\\xffname\\xff<name>\\xff``) mod interval."""
    data = b"file\xff" + group.file.encode() + b"\xffname\xff" + group.name.encode() + b"\xff"
    return xxhash.xxh64_intdigest(data) % (group.interval_ms * _NS_PER_MS)


def eval_timestamp(group: RuleGroup, start_ns: int) -> int:
    """The group's latest evaluation time at or before ``start_ns`` (ns), on its phase."""
    interval = group.interval_ms * _NS_PER_MS
    offset = group_offset_ns(group)
    start = start_ns - offset
    return start - start % interval + offset


class _Runner:
    """One group's timer thread."""

    def __init__(self, mgr: RuleManager, state: GroupState) -> None:
        self.mgr = mgr
        self.state = state
        self.should_restore = not state.restored
        self.stopped = threading.Event()
        self.mark_stale = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"promlab-rules-{self.state.group.name}")
        self.thread.start()

    def stop(self, *, mark_stale: bool = False) -> None:
        self.mark_stale = mark_stale
        self.stopped.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()

    def _sleep_until(self, ts_ns: int) -> bool:
        delay = (ts_ns - self.mgr.clock_ns()) / 1e9
        return not self.stopped.wait(max(0.0, delay))

    def _run(self) -> None:
        interval = self.state.group.interval_ms * _NS_PER_MS
        ts = eval_timestamp(self.state.group, self.mgr.clock_ns()) + interval
        appender = self.mgr.storage.appender()
        query = self.mgr.query
        done = 0
        try:
            if not self._sleep_until(ts):
                return
            while True:
                self.mgr.eval_once(self.state, ts // _NS_PER_MS, query, appender)
                done += 1
                if self.should_restore and done >= 2:
                    # After two evaluations recording rules have caught up: restore now.
                    self.mgr.restore(self.state)
                    self.should_restore = False
                missed = max(0, (self.mgr.clock_ns() - ts) // interval - 1)
                if missed:
                    self.mgr.metrics.missed.labels(self.state.key).inc(missed)
                    self.mgr.metrics.iterations.labels(self.state.key).inc(missed)
                ts += (missed + 1) * interval
                if not self._sleep_until(ts):
                    return
        finally:
            if self.mark_stale:
                self._write_stale(appender, 2 * interval)

    def _write_stale(self, appender: Any, wait_ns: int) -> None:
        # Wait two intervals so that a renamed rule elsewhere writes its series first.
        if self.mgr.done.wait(wait_ns / 1e9):
            return
        series = self.state.all_series()
        if not series:
            return
        t = self.mgr.clock_ns() // _NS_PER_MS
        for ls in series:
            appender.append(ls, t, STALE_NAN)
        try:
            appender.commit()
        except Exception as e:  # the store may be closing
            log.warning("marking series of removed group %s stale failed: %s", self.state.key, e)


class RuleManager:
    """Evaluate rule groups on their intervals against a store, and send their alerts.

    Parameters
    ----------
    storage
        Where rules read (unless ``query`` is given) and write.
    query
        The :data:`~promlab.rules.query.QueryFunc` rules evaluate with (default: ``engine``
        over ``storage``).
    engine
        The engine of the default query function.
    notifier
        Where alerts go (None: nowhere). The manager starts and stops it.
    registry
        The ``prometheus_client`` registry for the ``prometheus_rule_*`` metrics (a private
        one if None).
    external_labels, external_url
        For templates (``$externalLabels``, ``$externalURL``); ``external_url`` also starts the
        alerts' ``generatorURL``.
    resend_delay_ms, outage_tolerance_ms, for_grace_period_ms
        Prometheus's ``--rules.alert.resend-delay`` (1m), ``--rules.alert.for-outage-tolerance``
        (1h) and ``--rules.alert.for-grace-period`` (10m).
    default_query_offset_ms
        The global ``rule_query_offset`` for groups without ``query_offset``.
    clock_ns
        The wall clock in ns (``time.time_ns``).
    """

    def __init__(self, storage: Storage, *, query: QueryFunc | None = None,
                 engine: Engine | None = None, notifier: Notifier | None = None,
                 registry: CollectorRegistry | None = None,
                 external_labels: Mapping[str, str] | None = None, external_url: str = "",
                 resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS,
                 outage_tolerance_ms: int = DEFAULT_OUTAGE_TOLERANCE_MS,
                 for_grace_period_ms: int = DEFAULT_FOR_GRACE_PERIOD_MS,
                 default_query_offset_ms: int = 0,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.storage = storage
        self.query: QueryFunc = query if query is not None else query_funcs(storage, engine)[0]
        self.notifier = notifier
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = rule_metrics(self.registry)  # shared with the registry's other managers
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.resend_delay_ms = int(resend_delay_ms)
        self.outage_tolerance_ms = int(outage_tolerance_ms)
        self.for_grace_period_ms = int(for_grace_period_ms)
        self.default_query_offset_ms = int(default_query_offset_ms)
        self.clock_ns = clock_ns
        self.done = threading.Event()  # set by stop(): ends every wait
        self._lock = threading.RLock()
        self._runners: dict[tuple[str, str], _Runner] = {}
        self._running = False
        self._first_update = True

    # --- groups -------------------------------------------------------------------------------------
    def update(self, groups: Sequence[RuleGroup], *,
               external_labels: Mapping[str, str] | None = None,
               external_url: str | None = None,
               default_query_offset_ms: int | None = None) -> None:
        """Make ``groups`` the manager's groups (a reload when it already has some).

        Groups are identified by ``(file, name)``; see the module docstring for what is kept.
        New external labels, URL or global ``rule_query_offset`` replace every group (their
        alert state is kept).
        """
        with self._lock:
            if external_labels is not None and dict(external_labels) != self.external_labels:
                self.external_labels = dict(external_labels)
                changed_env = True
            else:
                changed_env = False
            if external_url is not None and external_url != self.external_url:
                self.external_url = external_url
                changed_env = True
            if default_query_offset_ms is not None and default_query_offset_ms != self.default_query_offset_ms:
                self.default_query_offset_ms = int(default_query_offset_ms)
                changed_env = True
            restore = self._first_update
            self._first_update = False
            new: dict[tuple[str, str], _Runner] = {}
            for g in groups:
                key = (g.file, g.name)
                if key in new:
                    raise ValueError(f"duplicate group {g.name!r} in {g.file!r}")
                old = self._runners.get(key)
                if old is not None and old.state.group == g and not changed_env:
                    new[key] = old
                    continue
                state = GroupState(g, default_query_offset_ms=self.default_query_offset_ms,
                                   external_labels=self.external_labels,
                                   external_url=self.external_url, restored=not restore)
                if old is not None:
                    old.stop()
                    state.copy_state_from(old.state)
                new[key] = _Runner(self, state)
            for key, old in self._runners.items():
                if key not in new:
                    old.stop(mark_stale=True)
                    self.metrics.remove_group(old.state.key, self)
            for key, runner in new.items():
                if self._runners.get(key) is not runner:
                    self.metrics.add_group(runner.state, self)
                    if self._running:
                        runner.start()
            self._runners = new
            # A stopped manager's groups on the same registry are gone now (unless taken over).
            self.metrics.prune()

    def group_states(self) -> list[GroupState]:
        """The groups' states, in the order given to :meth:`update`."""
        with self._lock:
            return [r.state for r in self._runners.values()]

    # --- lifecycle ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Start every group's timer (and the notifier). Idempotent."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self.done.clear()
            self.metrics.revive(self)
            if self.notifier is not None:
                self.notifier.start()
            for key, r in list(self._runners.items()):
                if r.stopped.is_set():  # started before: a timer thread runs once
                    r = self._runners[key] = _Runner(self, r.state)
                # Another manager on the registry may have removed them meanwhile.
                self.metrics.add_group(r.state, self)
                r.start()

    def stop(self) -> None:
        """Stop evaluating (waits for evaluations under way) and stop the notifier."""
        with self._lock:
            self._running = False
            self.done.set()
            self.metrics.retire(self)
            runners = list(self._runners.values())
        for r in runners:
            r.stop()
        if self.notifier is not None:
            self.notifier.stop()

    # --- one evaluation (called by the timers; public for tests and tools) --------------------------
    def eval_once(self, state: GroupState, t_ms: int, query: QueryFunc | None = None,
                  appender: Any = None) -> None:
        """Evaluate ``state`` at ``t_ms`` with the manager's query, sender and metrics."""
        res = state.eval(t_ms, query or self.query,
                         appender if appender is not None else self.storage.appender(),
                         notify=self._notify, resend_delay_ms=self.resend_delay_ms)
        m, key = self.metrics, state.key
        m.iterations.labels(key).inc()
        m.evaluations.labels(key).inc(res.evaluations)
        if res.failures:
            m.failures.labels(key).inc(res.failures)
        m.group_duration.observe(res.duration_seconds)
        for st in state.status:
            m.eval_duration.observe(st.evaluation_seconds)
        m.last_eval.labels(key).set(t_ms / 1000)
        m.last_duration.labels(key).set(res.duration_seconds)
        m.last_samples.labels(key).set(res.samples)

    def restore(self, state: GroupState) -> None:
        """Read the ``for`` state of ``state``'s alerts back from ``ALERTS_FOR_STATE`` now."""
        try:
            with state.lock:
                n = restore_for_state([s for s in state.alerting if s is not None], self.storage,
                                      self.clock_ns() // _NS_PER_MS,
                                      outage_tolerance_ms=self.outage_tolerance_ms,
                                      for_grace_period_ms=self.for_grace_period_ms)
            if n:
                log.info("group %s: restored the for state of %d alerts", state.key, n)
        except Exception as e:  # a failed restore must not stop the group
            log.warning("group %s: restoring for state failed: %s", state.key, e)
            state.mark_restored()

    def _notify(self, expr: str, alerts: list[Alert]) -> None:
        # The generatorURL links the expression as Prometheus prints it (``r.vector.String()``),
        # not as written in the file: ``a  offset 3s>8`` links ``a offset 3s > 8``.
        if self.notifier is not None:
            self.notifier.send(to_notifier_alerts(query_string(expr), alerts, self.external_url))

    # --- views --------------------------------------------------------------------------------------
    def rules_data(self) -> list[dict[str, Any]]:
        """``/api/v1/rules``'s ``data.groups``."""
        return [group_json(s) for s in self.group_states()]

    def alerts_data(self) -> list[dict[str, Any]]:
        """``/api/v1/alerts``'s ``data.alerts``: pending and firing alerts of every rule."""
        return [alert_json(a) for s in self.group_states() for a in s.alerts()]

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<RuleManager {len(self._runners)} groups {state}>"

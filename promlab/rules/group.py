"""One rule group's runtime state and its evaluation step: the driver every live loop and test
runner shares.

:class:`GroupState` holds what a group learns between evaluations (each alerting rule's
:class:`~promlab.rules.alerting.AlertingRuleState`, each rule's health and last error, the
series each rule wrote last time). :meth:`GroupState.eval` evaluates the group **once** at a
given time and is pure over its two collaborators, so a simulated clock can drive it:

* a :data:`~promlab.rules.query.QueryFunc` ``(expr, time_ms) -> Vector`` to query with, and
* an :class:`~promlab.storage.interface.Appender` to write to; it is committed after every
  rule, so when the QueryFunc reads the store the appender writes (the usual setup), later
  rules of the group see what earlier ones wrote at the same evaluation.

What one evaluation at ``t_ms`` does, as Prometheus's ``Group.Eval``:

* every rule, in file order, queries at ``t_ms - query_offset`` and its samples are written at
  that time: a recording rule's result renamed and relabelled, an alerting rule's ``ALERTS`` /
  ``ALERTS_FOR_STATE``;
* a series a rule wrote at its previous successful evaluation and not now gets a staleness
  marker at the same time;
* a rule that fails (query error, duplicate label sets, ``limit`` exceeded, a failed commit) is
  recorded (``health == "err"``, ``last_error``) and the group goes on with the next rule; a
  failed rule writes nothing and keeps its previous series (no staleness markers);
* after an alerting rule, the alerts that need sending (firing ones first and every
  ``resend_delay``, resolved ones until 15 minutes after resolving) go to ``notify``.

Examples
--------
>>> from promlab.model import Labels
>>> from promlab.rules.query import query_funcs
>>> from promlab.rules.rule import AlertingRule, RecordingRule, RuleGroup
>>> from promlab.storage import MemoryStorage
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0], [0.0])
>>> g = RuleGroup(name="g", interval_ms=10_000, rules=(
...     RecordingRule(name="job:up", expr="sum by (job) (up)"),
...     AlertingRule(name="Down", expr="job:up == 0")))
>>> state = GroupState(g)
>>> query, _ = query_funcs(st)
>>> res = state.eval(10_000, query, st.appender())
>>> res.failures, [a.labels["alertname"] for a in state.alerts()]
(0, ['Down'])
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from promlab.errors import RuleError
from promlab.model import METRIC_NAME, STALE_NAN, Labels
from promlab.model.histogram import FloatHistogram
from promlab.promql.values import Vector
from promlab.rules.alerting import Alert, AlertingRuleState, AlertState, Sample
from promlab.rules.query import QueryFunc
from promlab.rules.rule import AlertingRule, RecordingRule, Rule, RuleGroup
from promlab.storage.interface import Appender

__all__ = [
    "DEFAULT_RESEND_DELAY_MS",
    "GroupEvalResult",
    "GroupState",
    "NotifyFunc",
    "RuleStatus",
    "eval_recording",
    "needs_sending",
    "recorded_labels",
    "rule_key",
]

log = logging.getLogger("promlab.rules")

DEFAULT_RESEND_DELAY_MS = 60_000  # Prometheus's --rules.alert.resend-delay

#: ``notify(expr, alerts)``: called after an alerting rule's evaluation with copies of the alerts
#: to send (firing and resolved ones), as Prometheus's ``NotifyFunc``.
NotifyFunc = Callable[[str, list[Alert]], None]

DUPLICATE_SERIES_MSG = "vector contains metrics with the same labelset after applying rule labels"


@dataclass(slots=True)
class RuleStatus:
    """What the last evaluation of one rule left: health ``"ok"``, ``"err"`` or ``"unknown"``
    (never evaluated), the error text, when it ran and how long it took."""

    health: str = "unknown"
    last_error: str = ""
    last_evaluation_ms: int | None = None
    evaluation_seconds: float = 0.0


@dataclass(slots=True)
class GroupEvalResult:
    """What one :meth:`GroupState.eval` did."""

    t_ms: int
    evaluations: int = 0
    failures: int = 0
    samples: int = 0
    duration_seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (rule name, error)


def rule_key(rule: Rule) -> tuple[str, tuple[tuple[str, str], ...]]:
    """How a reload recognises a rule: its name and its own labels (Prometheus's
    ``nameAndLabels``), so editing an expression keeps the alerts."""
    return rule.name, tuple(sorted(rule.labels.items()))


def needs_sending(alert: Alert, t_ms: int, resend_delay_ms: int) -> bool:
    """Whether ``alert`` goes to Alertmanager after the evaluation at ``t_ms``.

    Pending alerts never; one resolved since it was last sent, always; otherwise when it was
    never sent or last sent more than ``resend_delay_ms`` ago.
    """
    if alert.state == AlertState.PENDING:
        return False
    last = alert.last_sent_ms
    if alert.resolved_at_ms is not None and (last is None or alert.resolved_at_ms > last):
        return True
    return last is None or last + resend_delay_ms < t_ms


def recorded_labels(labels: Labels, name: str, extra: Mapping[str, str]) -> Labels:
    """A recording rule's output label set for a result element's ``labels``: ``__name__`` set
    to ``name``, then ``extra`` applied (an empty value removes the label)."""
    d = labels.to_dict()
    d[METRIC_NAME] = name
    for k, v in extra.items():
        if v == "":
            d.pop(k, None)
        else:
            d[k] = v
    return Labels(d)


def eval_recording(rule: RecordingRule, vector: Vector, t_ms: int, *,
                   labels: Mapping[str, str] | None = None, limit: int = 0) -> list[Sample]:
    """A recording rule's samples from its query result: ``__name__`` set to the rule's name,
    then ``labels`` applied (an empty value removes the label), written at ``t_ms``.

    Raises
    ------
    RuleError
        Two result elements with one label set, or more series than ``limit`` (> 0).
    """
    extra = dict(rule.labels if labels is None else labels)
    out: dict[Labels, tuple[float, FloatHistogram | None]] = {}
    if vector.values.ndim == 2 and vector.values.shape[1]:
        col = vector.values.shape[1] - 1
        hists = vector.histograms
        for i, ls in enumerate(vector.labels):
            if not bool(vector.present[i, col]):
                continue
            key = recorded_labels(ls, rule.name, extra)
            if key in out:
                raise RuleError(DUPLICATE_SERIES_MSG, rule=rule.name)
            out[key] = (float(vector.values[i, col]), None if hists is None else hists[i, col])
    if limit > 0 and len(out) > limit:
        raise RuleError(f"exceeded limit of {limit} with {len(out)} series", rule=rule.name)
    return [Sample(ls, t_ms, v, h) for ls, (v, h) in out.items()]


class GroupState:
    """The runtime state of one :class:`~promlab.rules.rule.RuleGroup`.

    Parameters
    ----------
    group
        The frozen group.
    default_query_offset_ms
        The global ``rule_query_offset``, used when the group sets no ``query_offset``.
    external_labels, external_url
        For ``$externalLabels`` / ``$externalURL`` in alert templates.
    restored
        False for a group whose alerts' ``for`` state is still to be read back from
        ``ALERTS_FOR_STATE`` (:func:`promlab.rules.restore.restore_for_state`): until then its
        alerting rules write no ``ALERTS`` series, as in Prometheus.
    timer
        Seconds for durations (``time.perf_counter``); a test may pass a fake.

    Thread safety: :meth:`eval` and the views take :attr:`lock`, held per rule, so a view taken
    during an evaluation sees every rule either before or after its step.
    """

    def __init__(self, group: RuleGroup, *, default_query_offset_ms: int = 0,
                 external_labels: Mapping[str, str] | None = None, external_url: str = "",
                 restored: bool = True, timer: Callable[[], float] = time.perf_counter) -> None:
        self.group = group
        self.query_offset_ms = group.query_offset_ms or int(default_query_offset_ms)
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.timer = timer
        self.lock = threading.RLock()
        self.alerting: list[AlertingRuleState | None] = []
        for r in group.rules:
            if isinstance(r, AlertingRule):
                st = AlertingRuleState(r, group_labels=group.labels, limit=group.limit,
                                       query_offset_ms=self.query_offset_ms,
                                       external_labels=self.external_labels,
                                       external_url=external_url)
                st.restored = restored
                self.alerting.append(st)
            else:
                self.alerting.append(None)
        self.status = [RuleStatus() for _ in group.rules]
        self.previous_series: list[set[Labels]] = [set() for _ in group.rules]
        self.stale_series: list[Labels] = []  # of rules gone in a reload: marked stale next eval
        self.last_evaluation_ms: int | None = None
        self.last_duration_seconds = 0.0
        self.last_samples = 0

    @property
    def key(self) -> str:
        """``file;name``: the group's identity (Prometheus's ``GroupKey``, the metrics label)."""
        return f"{self.group.file};{self.group.name}"

    @property
    def restored(self) -> bool:
        return all(s.restored for s in self.alerting if s is not None)

    def mark_restored(self) -> None:
        for s in self.alerting:
            if s is not None:
                s.restored = True

    # --- the step ---------------------------------------------------------------------------------
    def eval(self, t_ms: int, query: QueryFunc, appender: Appender, *,
             notify: NotifyFunc | None = None,
             resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS) -> GroupEvalResult:
        """Evaluate every rule once at ``t_ms`` (see the module docstring).

        Never raises for a failing rule: failures are in the result and in :attr:`status`.
        ``notify`` (None: alerts are not sent, but their send bookkeeping still advances so
        a later run with a sender behaves like a live one) gets the alerts that need sending,
        with ``valid_until_ms`` (``endsAt``) set to ``t + 4 × max(resend delay, interval)``.
        """
        t = int(t_ms)
        res = GroupEvalResult(t)
        start = self.timer()
        write_t = t - self.query_offset_ms
        for i, rule in enumerate(self.group.rules):
            with self.lock:
                self._eval_rule(i, rule, t, write_t, query, appender, notify, resend_delay_ms, res)
        with self.lock:
            if self.stale_series:
                for ls in self.stale_series:
                    appender.append(ls, write_t, STALE_NAN)
                try:
                    appender.commit()
                except Exception as e:  # a store error must not stop the loop
                    log.warning("group %s: writing staleness markers failed: %s", self.key, e)
                    appender.rollback()
                self.stale_series = []
            res.duration_seconds = self.timer() - start
            self.last_evaluation_ms = t
            self.last_duration_seconds = res.duration_seconds
            self.last_samples = res.samples
        return res

    def eval_rule(self, i: int, t_ms: int, query: QueryFunc, appender: Appender, *,
                  notify: NotifyFunc | None = None,
                  resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS) -> GroupEvalResult:
        """Evaluate rule ``i`` alone at ``t_ms``, as :meth:`eval` does within its step.

        For a driver that evaluates rule by rule over many steps (a rule unit test whose rules
        do not read each other's current output): the group's own bookkeeping (last
        evaluation, staleness markers of rules removed by a reload) is left alone."""
        t = int(t_ms)
        res = GroupEvalResult(t)
        with self.lock:
            self._eval_rule(i, self.group.rules[i], t, t - self.query_offset_ms, query, appender,
                            notify, resend_delay_ms, res)
        return res

    def _eval_rule(self, i: int, rule: Rule, t: int, write_t: int, query: QueryFunc,
                   appender: Appender, notify: NotifyFunc | None, resend_delay_ms: int,
                   res: GroupEvalResult) -> None:
        status = self.status[i]
        t0 = self.timer()
        res.evaluations += 1
        status.last_evaluation_ms = t
        state = self.alerting[i]
        try:
            if state is not None:
                _, samples = state.eval_query(query, t)
            else:
                assert isinstance(rule, RecordingRule)
                vec = query(rule.expr, write_t)
                samples = eval_recording(rule, vec, write_t, labels=self.group.rule_labels(rule),
                                         limit=self.group.limit)
        except Exception as e:  # any failure is the rule's, never the group's
            self._fail(status, rule, e, t0, res)
            return
        if state is not None:  # before writing, as Prometheus: a failed commit still sends
            self._send(state, t, notify, resend_delay_ms)
        returned: set[Labels] = set()
        for s in samples:
            if s.histogram is not None:
                appender.append_histogram(s.labels, s.t_ms, s.histogram)
            else:
                appender.append(s.labels, s.t_ms, s.value)
            returned.add(s.labels)
        for ls in self.previous_series[i] - returned:
            appender.append(ls, write_t, STALE_NAN)
        try:
            stats = appender.commit()
        except Exception as e:
            appender.rollback()
            self._fail(status, rule, e, t0, res)
            return
        if stats.out_of_order or stats.duplicates or stats.out_of_bounds:
            log.debug("group %s rule %s: %d out of order, %d duplicate, %d out of bounds samples",
                      self.key, rule.name, stats.out_of_order, stats.duplicates,
                      stats.out_of_bounds)
        self.previous_series[i] = returned
        res.samples += len(samples)
        status.health = "ok"
        status.last_error = ""
        status.evaluation_seconds = self.timer() - t0

    def _fail(self, status: RuleStatus, rule: Rule, e: Exception, t0: float,
              res: GroupEvalResult) -> None:
        msg = e.reason if isinstance(e, RuleError) else str(e) or type(e).__name__
        status.health = "err"
        status.last_error = msg
        status.evaluation_seconds = self.timer() - t0
        res.failures += 1
        res.errors.append((rule.name, msg))
        log.warning("group %s: evaluating rule %s failed: %s", self.key, rule.name, msg)

    def _send(self, state: AlertingRuleState, t: int, notify: NotifyFunc | None,
              resend_delay_ms: int) -> None:
        delta = max(resend_delay_ms, self.group.interval_ms)
        out: list[Alert] = []
        for key in sorted(state.alerts):
            a = state.alerts[key]
            if needs_sending(a, t, resend_delay_ms):
                a.last_sent_ms = t
                a.valid_until_ms = t + 4 * delta  # two missed evaluations or sends are tolerated
                out.append(dataclasses.replace(a, annotations=dict(a.annotations)))
        if out and notify is not None:
            try:
                notify(state.rule.expr, out)
            except Exception as e:  # a broken sender must not stop the group
                log.warning("group %s: sending alerts of %s failed: %s", self.key, state.rule.name, e)

    # --- reload -------------------------------------------------------------------------------------
    def copy_state_from(self, old: GroupState) -> None:
        """Take over ``old``'s state after a reload: for each rule, the state of the first
        not yet matched rule of ``old`` with the same :func:`rule_key` (its written series and,
        alerting to alerting, its alerts); series of ``old``'s unmatched rules are marked stale
        at this group's next evaluation."""
        with old.lock:
            self.last_evaluation_ms = old.last_evaluation_ms
            self.last_duration_seconds = old.last_duration_seconds
            by_key: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = {}
            for j, r in enumerate(old.group.rules):
                by_key.setdefault(rule_key(r), []).append(j)
            for i, r in enumerate(self.group.rules):
                idx = by_key.get(rule_key(r))
                if not idx:
                    continue
                j = idx.pop(0)
                self.previous_series[i] = set(old.previous_series[j])
                new_st, old_st = self.alerting[i], old.alerting[j]
                if new_st is not None and old_st is not None:
                    new_st.alerts.update(old_st.alerts)
                    new_st.restored = new_st.restored or old_st.restored
            self.stale_series = list(old.stale_series)
            for idx in by_key.values():
                for j in idx:
                    self.stale_series.extend(sorted(old.previous_series[j]))

    def all_series(self) -> list[Labels]:
        """Every series the group wrote at its last evaluations (to mark stale when removed)."""
        with self.lock:
            out = {ls for s in self.previous_series for ls in s}
            out.update(self.stale_series)
        return sorted(out)

    # --- views --------------------------------------------------------------------------------------
    def alerts(self) -> list[Alert]:
        """Pending and firing alerts of every alerting rule, in rule order."""
        with self.lock:
            return [dataclasses.replace(a, annotations=dict(a.annotations))
                    for s in self.alerting if s is not None for a in s.active_alerts()]

    def rule_states(self) -> Sequence[tuple[Rule, RuleStatus, AlertingRuleState | None]]:
        """``(rule, status, alert state or None)`` per rule, in order (live objects: copy them
        under :attr:`lock` if they must not change)."""
        return list(zip(self.group.rules, self.status, self.alerting, strict=True))

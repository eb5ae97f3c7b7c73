"""The ``prometheus_rule_*`` metrics: one set per registry, shared by the rule managers that
use it in turn.

A ``prometheus_client`` registry refuses a second metric of the same name, so a session whose
rules are stopped and started again (a new :class:`~promlab.rules.manager.RuleManager` on the
session's registry) must reuse the metrics of the first: :func:`rule_metrics` creates them once
per registry. Each ``rule_group`` series belongs to the manager that last added its group:

* a stopped manager's series stay (their final values) until another manager on the registry
  updates its groups; then the series of groups it does not have are removed, and those it
  has continue (a stop and start with the same rule files keeps counting, as a Prometheus
  reload that keeps a group);
* a running manager's reload removes the series of the groups it drops (Prometheus's
  ``Manager.Update``).

The two summaries have no ``rule_group`` label and simply continue.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

from promlab.registries import PerRegistry

if TYPE_CHECKING:
    from promlab.rules.group import GroupState

__all__ = ["RuleMetrics", "rule_metrics"]


class RuleMetrics:
    """The rule manager's metrics in one registry (Prometheus's names, help and labels)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        g = ["rule_group"]
        r = registry
        self.eval_duration = Summary("prometheus_rule_evaluation_duration_seconds",
                                     "The duration for a rule to execute.", registry=r)
        self.group_duration = Summary("prometheus_rule_group_duration_seconds",
                                      "The duration of rule group evaluations.", registry=r)
        self.missed = Counter("prometheus_rule_group_iterations_missed_total",
                              "The total number of rule group evaluations missed due to slow "
                              "rule group evaluation.", g, registry=r)
        self.iterations = Counter("prometheus_rule_group_iterations_total",
                                  "The total number of scheduled rule group evaluations, whether "
                                  "executed or missed.", g, registry=r)
        self.evaluations = Counter("prometheus_rule_evaluations_total",
                                   "The total number of rule evaluations.", g, registry=r)
        self.failures = Counter("prometheus_rule_evaluation_failures_total",
                                "The total number of rule evaluation failures.", g, registry=r)
        self.interval = Gauge("prometheus_rule_group_interval_seconds",
                              "The interval of a rule group.", g, registry=r)
        self.last_eval = Gauge("prometheus_rule_group_last_evaluation_timestamp_seconds",
                               "The timestamp of the last rule group evaluation in seconds.", g,
                               registry=r)
        self.last_duration = Gauge("prometheus_rule_group_last_duration_seconds",
                                   "The duration of the last rule group evaluation.", g, registry=r)
        self.rules = Gauge("prometheus_rule_group_rules", "The number of rules.", g, registry=r)
        self.last_samples = Gauge("prometheus_rule_group_last_evaluation_samples",
                                  "The number of samples returned during the last rule group "
                                  "evaluation.", g, registry=r)
        self._labelled = (self.missed, self.iterations, self.evaluations, self.failures,
                          self.interval, self.last_eval, self.last_duration, self.rules,
                          self.last_samples)
        self._lock = threading.Lock()
        # rule_group -> the manager whose group it is (weakly: a dropped manager owns nothing).
        self._owner: dict[str, weakref.ReferenceType[Any]] = {}
        self._retired: weakref.WeakSet[Any] = weakref.WeakSet()  # stopped managers

    def add_group(self, state: GroupState, owner: Any) -> None:
        """Export ``state``'s series (counters at 0 from the start, as Prometheus; counters
        already there continue) and make them ``owner``'s."""
        key = state.key
        with self._lock:
            self._owner[key] = weakref.ref(owner)
        for m in (self.missed, self.iterations, self.evaluations, self.failures):
            m.labels(key)
        self.interval.labels(key).set(state.group.interval_ms / 1000)
        self.rules.labels(key).set(state.group.num_rules)

    def remove_group(self, key: str, owner: Any) -> None:
        """Remove the series of ``key`` if they are still ``owner``'s."""
        with self._lock:
            ref = self._owner.get(key)
            if ref is None or ref() is not owner:
                return
            del self._owner[key]
        self._remove(key)

    def retire(self, owner: Any) -> None:
        """``owner`` stopped: its series stay until another manager updates its groups."""
        with self._lock:
            self._retired.add(owner)

    def revive(self, owner: Any) -> None:
        """``owner`` started again."""
        with self._lock:
            self._retired.discard(owner)

    def prune(self) -> None:
        """Remove the series of groups whose manager stopped or is gone."""
        with self._lock:
            stale = []
            for key, ref in self._owner.items():
                got = ref()
                if got is None or got in self._retired:
                    stale.append(key)
            for key in stale:
                del self._owner[key]
        for key in stale:
            self._remove(key)

    def _remove(self, key: str) -> None:
        for m in self._labelled:
            with contextlib.suppress(KeyError):
                m.remove(key)


#: The :class:`RuleMetrics` of a registry, registered on first use.
rule_metrics: PerRegistry[RuleMetrics] = PerRegistry(RuleMetrics)

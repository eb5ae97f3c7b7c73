"""Restoring alerts' ``for`` state after a restart, from the ``ALERTS_FOR_STATE`` series.

Prometheus's ``Group.RestoreForState``: a restarted server would otherwise start every pending
alert's ``for`` clock again. Each active alert (those the first evaluations after the start
produced) looks up its ``ALERTS_FOR_STATE`` series in ``[t - outage_tolerance, t]``; the last
sample's value is the old ``active_at`` (unix seconds) and its timestamp when the server went
down. Then:

* a rule whose ``for`` is shorter than ``for_grace_period`` is not restored (it waits its whole
  ``for`` again, never more than the grace period);
* an alert that had already waited its ``for`` gets its old ``active_at`` back (it fires at the
  next evaluation if still there);
* one with less than ``for_grace_period`` left fires ``for_grace_period`` after ``t``;
* otherwise the outage does not count: ``active_at`` moves forward by ``t - down_at``.

A series whose last sample is a staleness marker (the alert had ended) restores nothing.
"""

from __future__ import annotations

from promlab.model import METRIC_NAME, Labels, Matcher, MatchType, is_stale
from promlab.rules.alerting import AlertingRuleState
from promlab.rules.rule import ALERT_NAME_LABEL, ALERTS_FOR_STATE_METRIC
from promlab.storage.interface import Queryable

__all__ = ["DEFAULT_FOR_GRACE_PERIOD_MS", "DEFAULT_OUTAGE_TOLERANCE_MS", "restore_for_state"]

DEFAULT_OUTAGE_TOLERANCE_MS = 3_600_000  # --rules.alert.for-outage-tolerance
DEFAULT_FOR_GRACE_PERIOD_MS = 600_000  # --rules.alert.for-grace-period


def restore_for_state(states: list[AlertingRuleState], queryable: Queryable, t_ms: int, *,
                      outage_tolerance_ms: int = DEFAULT_OUTAGE_TOLERANCE_MS,
                      for_grace_period_ms: int = DEFAULT_FOR_GRACE_PERIOD_MS) -> int:
    """Restore the ``active_at`` of the active alerts of ``states`` at time ``t_ms`` and mark
    every state restored. Returns how many alerts were restored."""
    restored = 0
    t = int(t_ms)
    q = queryable.querier(t - outage_tolerance_ms, t)
    try:
        for st in states:
            hold = st.rule.for_ms
            if hold < for_grace_period_ms or not st.alerts:
                st.restored = True
                continue
            ss = q.select([Matcher(MatchType.EQUAL, METRIC_NAME, ALERTS_FOR_STATE_METRIC),
                           Matcher(MatchType.EQUAL, ALERT_NAME_LABEL, st.rule.name)])
            last: dict[Labels, tuple[int, float]] = {}
            for i in range(len(ss)):
                ls, ts, vs = ss.series(i)
                if ts.shape[0]:
                    last[ls.without_name()] = (int(ts[-1]), float(vs[-1]))
            for a in st.active_alerts():
                found = last.get(a.labels)
                if found is None or is_stale(found[1]):
                    continue
                down_at = (found[0] // 1000) * 1000  # Prometheus works in whole seconds here
                active_at = int(found[1]) * 1000
                remaining = hold - (down_at - active_at)
                if remaining <= 0:
                    pass  # it was firing: the next evaluation makes it fire again
                elif remaining < for_grace_period_ms:
                    active_at = t + for_grace_period_ms - hold
                else:
                    active_at += t - down_at
                a.active_at_ms = active_at
                restored += 1
            st.restored = True
    finally:
        q.close()
    return restored

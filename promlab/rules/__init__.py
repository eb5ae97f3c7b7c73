"""Recording and alerting rules: rule files, the alert state machine, backtests over history.

* :mod:`~promlab.rules.rule` — frozen definitions (``RecordingRule``, ``AlertingRule``,
  ``RuleGroup``); :mod:`~promlab.rules.load` reads and checks rule files.
* :mod:`~promlab.rules.alerting` — the state machine step by step (the live loop);
  :mod:`~promlab.rules.timeline` — the same machine vectorised over evaluation times.
* :mod:`~promlab.rules.query` — query functions over a Queryable; :mod:`~promlab.rules.backtest`
  — episodes, sweeps and incident scores over history; :mod:`~promlab.rules.backfill` — recording
  rules' series written over a past range; :mod:`~promlab.rules.plot` — alert timelines
  (``df.alerts``/``df.prom.plot_timeline()``).
"""

from promlab.rules.alerting import Alert, AlertingRuleState, AlertState, Sample
from promlab.rules.backfill import RuleBackfillStats, backfill
from promlab.rules.backtest import Score, backtest, backtest_sweep, score
from promlab.rules.load import check_file, check_files, load_rules, parse_rules, validate_rules
from promlab.rules.plot import AlertsAccessor, plot_backtest, plot_timeline
from promlab.rules.query import OverlayQueryable, QueryFunc, RangeQueryFunc, query_funcs
from promlab.rules.rule import AlertingRule, RecordingRule, Rule, RuleGroup
from promlab.rules.timeline import AlertTimeline, run_timeline

__all__ = [
    "Alert",
    "AlertState",
    "AlertTimeline",
    "AlertingRule",
    "AlertingRuleState",
    "AlertsAccessor",
    "OverlayQueryable",
    "QueryFunc",
    "RangeQueryFunc",
    "RecordingRule",
    "Rule",
    "RuleBackfillStats",
    "RuleGroup",
    "Sample",
    "Score",
    "backfill",
    "backtest",
    "backtest_sweep",
    "check_file",
    "check_files",
    "load_rules",
    "parse_rules",
    "plot_backtest",
    "plot_timeline",
    "query_funcs",
    "run_timeline",
    "score",
    "validate_rules",
]

"""``session.rules``: load, start, stop, reload and inspect the rule manager of a Session.

The rule files are the config's ``rule_files`` (globs expanded, as Prometheus does) unless
given; groups without ``interval`` use the config's ``evaluation_interval``; alerts go to the
Alertmanagers of the config's ``alerting`` section with its external labels; templates see the
external labels and the session's ``external_url``.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from promlab.errors import ConfigError
from promlab.model import parse_duration
from promlab.promql.engine import Engine
from promlab.rules.rule import DEFAULT_INTERVAL_MS, RuleGroup
from promlab.storage.interface import Storage

if TYPE_CHECKING:
    import pandas as pd
    from prometheus_client import CollectorRegistry

    from promlab.config import Config
    from promlab.rules.manager import RuleManager

__all__ = ["RuleControl", "expand_rule_files"]

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


class _Owner(Protocol):
    """What the rule control needs of its session."""

    engine: Engine
    registry: CollectorRegistry
    external_url: str

    @property
    def storage(self) -> Storage: ...

    @property
    def config(self) -> Config | None: ...


def expand_rule_files(patterns: Iterable[str]) -> list[str]:
    """``rule_files`` entries expanded as Prometheus's ``filepath.Glob`` (sorted matches per
    pattern; a pattern matching nothing adds nothing)."""
    out: list[str] = []
    for p in patterns:
        for f in sorted(glob.glob(p)):
            if f not in out:
                out.append(f)
    return out


class RuleControl:
    """The rule manager of a session (stopped until :meth:`start`).

    Examples
    --------
    >>> from promlab import MemoryStorage, Session
    >>> with Session(MemoryStorage()) as s:
    ...     s.rules.running, len(s.rules.groups())
    (False, 0)
    """

    def __init__(self, owner: _Owner) -> None:
        self._owner = owner
        self._lock = threading.RLock()
        self._manager: RuleManager | None = None
        self._files: list[str] | None = None  # given explicitly; None: the config's
        self._groups: list[RuleGroup] = []

    @property
    def running(self) -> bool:
        m = self._manager
        return m is not None and m.running

    @property
    def manager(self) -> RuleManager | None:
        """The :class:`~promlab.rules.manager.RuleManager` (None before :meth:`start`)."""
        return self._manager

    @property
    def files(self) -> list[str]:
        """The rule files in use: those given to :meth:`load`/:meth:`start`, else the config's."""
        if self._files is not None:
            return list(self._files)
        cfg = self._owner.config
        return expand_rule_files(cfg.rule_files) if cfg is not None else []

    def load(self, files: Paths | None = None) -> list[RuleGroup]:
        """Read and check rule files (default: the config's ``rule_files``); a running manager
        switches to them at once, keeping the state of unchanged rules.

        Raises
        ------
        ConfigError
            A file is missing or invalid; nothing changes then.
        """
        with self._lock:
            paths = self._paths(files)
            cfg = self._owner.config
            interval = cfg.global_config.evaluation_interval_ms if cfg else DEFAULT_INTERVAL_MS
            from promlab.rules.load import load_rules

            groups = load_rules(paths, default_interval_ms=interval)
            seen: set[tuple[str, str]] = set()
            for g in groups:
                if (g.file, g.name) in seen:
                    raise ConfigError(f"{g.name}: groupname must be unique within a file",
                                      file=g.file)
                seen.add((g.file, g.name))
            if files is not None:
                self._files = paths
            self._groups = groups
            if self._manager is not None:
                self._apply_config(self._manager)
                self._manager.update(groups, external_labels=self._external_labels(),
                                     external_url=self._owner.external_url,
                                     default_query_offset_ms=self._query_offset_ms())
            return groups

    def start(self, files: Paths | None = None, *, resend_delay: Any = None,
              notify: bool = True) -> RuleManager:
        """Load the rule files (see :meth:`load`) and start evaluating them.

        ``resend_delay`` (default ``"1m"``) is Prometheus's ``--rules.alert.resend-delay``;
        ``notify=False`` sends no alerts even when the config names Alertmanagers.

        Raises
        ------
        ConfigError
            Bad rule files, or the manager already runs.
        StorageError
            The session is read-only.
        """
        # The manager, the notifier and their HTTP client load only when rules run: a session
        # that only queries (``promlab query``) starts faster without them.
        from promlab.rules.group import DEFAULT_RESEND_DELAY_MS
        from promlab.rules.manager import RuleManager
        from promlab.rules.notifier import Notifier

        with self._lock:
            if self.running:
                raise ConfigError("the rule manager is already running: stop it or reload it")
            storage = self._owner.storage  # raises on a read-only session
            groups = self.load(files)
            cfg = self._owner.config
            notifier = None
            if notify and cfg is not None and cfg.alerting.alertmanagers:
                notifier = Notifier(cfg.alerting, external_labels=self._external_labels(),
                                    registry=self._owner.registry)
            delay = DEFAULT_RESEND_DELAY_MS if resend_delay is None else parse_duration(resend_delay)
            mgr = RuleManager(storage, engine=self._owner.engine, notifier=notifier,
                              registry=self._owner.registry,
                              external_labels=self._external_labels(),
                              external_url=self._owner.external_url, resend_delay_ms=delay,
                              default_query_offset_ms=self._query_offset_ms())
            if notifier is None:  # a previous run's Alertmanager series go
                from promlab.rules.sendloop import prune_notifier_metrics

                prune_notifier_metrics(self._owner.registry)
            mgr.update(groups)
            mgr.start()
            self._manager = mgr
            return mgr

    def reload(self, files: Paths | None = None) -> list[RuleGroup]:
        """Re-read the rule files (and the session config's ``alerting`` and external labels)."""
        return self.load(files)

    def stop(self) -> None:
        """Stop evaluating and sending (idempotent); alert state is dropped with the manager."""
        with self._lock:
            m, self._manager = self._manager, None
        if m is not None:
            m.stop()

    # --- views --------------------------------------------------------------------------------------
    def rules_data(self) -> list[dict[str, Any]]:
        """``/api/v1/rules``'s ``data.groups`` (empty when not running)."""
        m = self._manager
        return m.rules_data() if m is not None else []

    def alerts_data(self) -> list[dict[str, Any]]:
        """``/api/v1/alerts``'s ``data.alerts`` (empty when not running)."""
        m = self._manager
        return m.alerts_data() if m is not None else []

    def alertmanagers_data(self) -> dict[str, list[dict[str, str]]]:
        """``/api/v1/alertmanagers``'s ``data``: the notifier's Alertmanagers (discovered and
        relabelled) and those its relabelling dropped; empty lists when it does not run."""
        m = self._manager
        n = m.notifier if m is not None and m.running else None
        active = n.alertmanagers() if n is not None else []
        dropped = n.dropped_alertmanagers() if n is not None else []
        return {"activeAlertmanagers": [{"url": u} for u in active],
                "droppedAlertmanagers": [{"url": u} for u in dropped]}

    def groups(self) -> pd.DataFrame:
        """One row per rule: group, file, rule, type, health, state, alerts, last error, last
        evaluation and its duration."""
        import pandas as pd

        cols = ["group", "file", "rule", "type", "query", "health", "state", "alerts",
                "last_error", "last_evaluation", "evaluation_seconds", "interval_seconds"]
        rows = []
        for g in self.rules_data():
            for r in g["rules"]:
                rows.append({"group": g["name"], "file": g["file"], "rule": r["name"],
                             "type": r["type"], "query": r["query"], "health": r["health"],
                             "state": r.get("state"), "alerts": len(r.get("alerts", [])),
                             "last_error": r.get("lastError", ""),
                             "last_evaluation": _ts(r["lastEvaluation"]),
                             "evaluation_seconds": r["evaluationTime"],
                             "interval_seconds": g["interval"]})
        return pd.DataFrame(rows, columns=cols)

    def alerts(self) -> pd.DataFrame:
        """Pending and firing alerts: alertname, state, active_at, value, then one column per
        label and per annotation (``annotation:<name>``)."""
        import pandas as pd

        rows = []
        for a in self.alerts_data():
            row: dict[str, Any] = {"alertname": a["labels"].get("alertname", ""),
                                   "state": a["state"], "active_at": _ts(a["activeAt"]),
                                   "value": float(a["value"])}
            row.update({k: v for k, v in a["labels"].items() if k != "alertname"})
            row.update({f"annotation:{k}": v for k, v in a["annotations"].items()})
            rows.append(row)
        base = ["alertname", "state", "active_at", "value"]
        extra = sorted({k for r in rows for k in r} - set(base),
                       key=lambda k: (k.startswith("annotation:"), k))
        return pd.DataFrame(rows, columns=base + extra)

    # --- helpers ------------------------------------------------------------------------------------
    def _paths(self, files: Paths | None) -> list[str]:
        if files is None:
            return self.files
        items: Sequence[Any] = [files] if isinstance(files, str | os.PathLike) else list(files)
        return [os.fspath(p) for p in items]

    def _query_offset_ms(self) -> int:
        """The config's global ``rule_query_offset`` (groups without ``query_offset`` use it)."""
        cfg = self._owner.config
        return cfg.global_config.rule_query_offset_ms if cfg is not None else 0

    def _external_labels(self) -> dict[str, str]:
        cfg = self._owner.config
        return cfg.global_config.external_labels.to_dict() if cfg is not None else {}

    def _apply_config(self, mgr: RuleManager) -> None:
        cfg = self._owner.config
        if mgr.notifier is not None and cfg is not None:
            mgr.notifier.apply_config(cfg.alerting, self._external_labels())

    def __repr__(self) -> str:
        m = self._manager
        return repr(m) if m is not None else "<RuleControl stopped>"


def _ts(text: str) -> Any:
    import pandas as pd

    return pd.NaT if text.startswith("0001-") else pd.Timestamp(text)

"""The daemon: ``promlab scrape --config prometheus.yml`` runs :func:`run` in the foreground.

It is a :class:`~promlab.session.Session` on the data directory with the scraper started, and
the rule manager when the config has ``rule_files`` (alerts go to its ``alerting`` section).
With ``listen`` (``promlab serve``) it also serves the Prometheus HTTP API; ``promlab serve``
without a config serves the store only. SIGTERM/SIGINT stop it (the server stops accepting and
finishes its requests, scraping stops, everything scraped is committed, the store is flushed
and closed; exit code 0). SIGHUP, or a change of the config file's modification time, reloads
the config and the rule files; a bad new config or rule file is logged and the running one is
kept.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from promlab.errors import ConfigError, PromlabError
from promlab.session import Session

__all__ = ["run"]

log = logging.getLogger("promlab.daemon")


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def _signals(handlers: dict[signal.Signals, Callable[[int, FrameType | None], None]]) -> Iterator[None]:
    """Install ``handlers`` (only possible in the main thread) and restore the previous ones."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig, fn in handlers.items():
            previous[sig] = signal.signal(sig, fn)
    try:
        yield
    finally:
        for sig, fn in previous.items():
            signal.signal(sig, fn)


def _reload_rules(session: Session, rule_options: dict[str, Any] | None = None) -> None:
    """Apply the (reloaded) config's rule files: start or reload the rule manager.

    A config without ``rule_files`` any more leaves the manager running with no groups, as
    Prometheus: the removed groups' series leave ``/metrics`` and the notifier follows the
    config's ``alerting`` section.
    """
    cfg = session.config
    try:
        if session.rules.running:
            session.rules.reload()
            log.info("rules reloaded")
        elif cfg is not None and cfg.rule_files:
            session.rules.start(**(rule_options or {}))
            log.info("rules reloaded")
    except (PromlabError, OSError) as exc:
        log.error("rule reload failed, keeping the running rules: %s", exc)
    except Exception:  # a reload never takes the daemon down
        log.exception("rule reload failed, keeping the running rules")


def run(config_path: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str], *,
        watch_interval: float = 1.0, stop_event: threading.Event | None = None,
        progress: bool | None = None, listen: str | None = None,
        server_options: dict[str, Any] | None = None,
        session_options: dict[str, Any] | None = None,
        rule_options: dict[str, Any] | None = None) -> int:
    """Scrape (and serve, with ``listen``) until told to stop. Returns the process exit code
    (0 on a clean stop, 1 if the first config, the store or the server cannot be started).

    ``server_options`` go to :meth:`Session.serve` (``web_config``, ``enable_lifecycle``, ...);
    the lifecycle API's ``/-/reload`` reloads at once (a bad config answers 500) and ``/-/quit``
    acts as SIGTERM. ``session_options`` go to :class:`Session` (``engine``,
    ``external_url``), ``rule_options`` to :meth:`Session.rules.start` (``resend_delay``).
    """
    session_options = session_options or {}
    if config_path is None:
        return _serve_only(data_dir, stop_event=stop_event, progress=progress,
                           listen=listen or "127.0.0.1:9090", server_options=server_options,
                           session_options=session_options)
    config_path = str(config_path)
    _setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    stop = stop_event or threading.Event()
    reload_now = threading.Event()
    # The modification time before the first load: a file changed while starting is reloaded.
    seen = _mtime(config_path)
    try:
        session = Session(data_dir, config=config_path, progress=progress, **session_options)
    except (PromlabError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    try:
        session.scrape.start()
    except (PromlabError, OSError) as exc:
        log.error("cannot start: %s", exc)
        session.close()
        return 1
    assert session.config is not None
    log.info("scraping %d jobs into %s", len(session.config.scrape_configs), data_dir)
    if session.config.rule_files:
        try:
            mgr = session.rules.start(**(rule_options or {}))
            log.info("evaluating %d rule groups", len(mgr.group_states()))
        except (PromlabError, OSError) as exc:
            log.error("cannot start: %s", exc)
            session.close()
            return 1
    if listen is not None:
        def reload_sync() -> None:  # /-/reload answers with the outcome, as Prometheus
            session.scrape.reload(config_path)
            _reload_rules(session, rule_options)

        opts = {"reload": reload_sync, "quit": stop.set, **(server_options or {})}
        try:
            session.serve(listen, **opts)
        except (PromlabError, OSError) as exc:
            log.error("cannot serve: %s", exc)
            session.close()
            return 1

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload_now.set()

    with _signals({signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_hup}):
        try:
            _watch(session, config_path, seen, stop, reload_now, watch_interval, rule_options)
        finally:
            session.close()
    return 0


def _watch(session: Session, config_path: str, seen: float, stop: threading.Event,
           reload_now: threading.Event, watch_interval: float,
           rule_options: dict[str, Any] | None = None) -> None:
    """Until ``stop``: reload on SIGHUP or when the config file's modification time changes."""
    while not stop.wait(watch_interval):
        m = _mtime(config_path)
        if reload_now.is_set() or m != seen:
            reload_now.clear()
            seen = m
            try:
                session.scrape.reload(config_path)
                log.info("config reloaded from %s", config_path)
            except ConfigError as exc:
                log.error("config reload failed, keeping the running config: %s", exc)
                continue
            except Exception:  # a reload never takes the daemon down
                log.exception("config reload failed, keeping the running config")
                continue
            _reload_rules(session, rule_options)


def _serve_only(data_dir: str | os.PathLike[str], *, stop_event: threading.Event | None,
                progress: bool | None, listen: str,
                server_options: dict[str, Any] | None,
                session_options: dict[str, Any]) -> int:
    """``promlab serve`` without a config: the store and the API, no scraping or rules."""
    _setup_logging()
    stop = stop_event or threading.Event()
    try:
        session = Session(data_dir, progress=progress, **session_options)
    except (PromlabError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    try:
        session.serve(listen, **{"quit": stop.set, "reload": lambda: None,
                                 **(server_options or {})})
    except (PromlabError, OSError) as exc:
        log.error("cannot serve: %s", exc)
        session.close()
        return 1

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with _signals({signal.SIGTERM: on_stop, signal.SIGINT: on_stop}):
        try:
            stop.wait()
        finally:
            session.close()
    return 0

"""Prometheus's server flags for ``promlab serve`` and ``promlab scrape`` and what they become.

Split out of :mod:`promlab.cli`, which builds the parser and dispatches. Like the rest of the
command line, heavy modules are imported inside the functions.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_daemon_flags", "daemon_options"]


def daemon_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``Session`` and ``rules.start`` options from Prometheus's server flags (``--query.*``,
    ``--web.external-url``, ``--rules.alert.resend-delay``)."""
    from promlab.model import parse_duration
    from promlab.promql.engine import Engine

    parse_duration(args.resend_delay)  # a bad one fails now, not when the rules start
    session: dict[str, Any] = {"engine": Engine(
        lookback_delta=args.lookback_delta, max_samples=args.max_samples,
        timeout=None if args.query_timeout in ("0", "0s") else args.query_timeout)}
    if args.external_url:
        session["external_url"] = args.external_url
    return session, {"resend_delay": args.resend_delay}


def add_daemon_flags(p: argparse.ArgumentParser) -> None:
    """Add the flags :func:`daemon_options` reads to the parser of a long-running command."""
    p.add_argument("--web.external-url", dest="external_url",
                   help="the URL promlab is reachable under (alerts' generatorURL, templates' "
                        "$externalURL; with --listen its path is the route prefix)")
    p.add_argument("--rules.alert.resend-delay", dest="resend_delay", default="1m",
                   help="minimum wait before resending an alert to Alertmanager (default 1m)")
    p.add_argument("--query.lookback-delta", dest="lookback_delta", default="5m",
                   help="how far back an instant selector looks for a sample (default 5m)")
    p.add_argument("--query.max-samples", dest="max_samples", type=int, default=50_000_000,
                   help="most samples a query may hold in memory (default 50000000)")
    p.add_argument("--query.timeout", dest="query_timeout", default="2m",
                   help="longest a query may run, 0 for no limit (default 2m)")

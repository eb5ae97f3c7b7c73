"""The ``promlab`` command line: a thin layer over the library's public functions.

Subcommands: ``demo``, ``import``, ``query``, ``scrape``, ``serve``, ``tsdb info``. Heavy modules are
imported inside the handlers, so ``promlab --help`` works with only the standard library.
The ``rules`` and ``test rules`` handlers live in :mod:`promlab.cli_rules`, ``check config`` in
:mod:`promlab.cli_config`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from promlab.cli_config import add_check_config_flags, cmd_check_config
from promlab.cli_rules import (
    cmd_rules_backfill,
    cmd_rules_backtest,
    cmd_rules_check,
    cmd_test_rules,
)
from promlab.cli_rules import fail as _err
from promlab.cli_server import add_daemon_flags, daemon_options

if TYPE_CHECKING:
    from promlab.importer import ImportStats
    from promlab.storage import StoreInfo

__all__ = ["main"]

DEFAULT_DATA = "data"


def _stats_text(stats: ImportStats) -> str:
    """The import's counters, refusals only when there were some: ``series=32, samples=384, ...``."""
    text = f"series={stats.series:,}, samples={stats.samples:,}, appended={stats.appended:,}"
    for name in ("duplicates", "out_of_order", "out_of_bounds", "too_old"):
        if getattr(stats, name):
            text += f", {name}={getattr(stats, name):,}"
    if stats.errors:
        text += f"; {len(stats.errors)} errors, first: {stats.errors[0]}"
    return text


def _iso(ms: int) -> str:
    from promlab.model import to_timestamp

    return to_timestamp(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_info(info: StoreInfo) -> None:
    span = ""
    if info.mint_ms is not None and info.maxt_ms is not None:
        span = f"  ({_iso(info.mint_ms)} .. {_iso(info.maxt_ms)})"
    bps = info.bytes_per_sample
    print(f"  series:       {info.series:,}")
    print(f"  samples:      {info.samples:,}{span}")
    print(f"  blocks:       {info.blocks:,} ({info.block_samples:,} samples, {info.block_bytes:,} bytes)")
    print(f"  bytes/sample: {bps:.3f} (blocks only)" if bps is not None else "  bytes/sample: - (no blocks yet)")
    print(f"  other bytes:  {info.other_bytes:,} (WAL, head)")
    print(f"  label names:  {', '.join(info.label_names)}")


# --------------------------------------------------------------------------- handlers


def cmd_import(args: argparse.Namespace) -> int:
    from promlab.errors import ExpositionError, PromlabError
    from promlab.session import Session

    if args.source:
        return _import_remote(args)
    if not args.file:
        _err("import", "usage error: give a file, or --from URL")
        return 2
    path = Path(args.file)
    if not path.is_file():
        return _err("import", f"no such file: {path}")
    t0 = time.perf_counter()
    options: dict[str, Any] = {
        "format": args.format, "strict": args.strict,
        "convert_classic_histograms_to_nhcb": args.convert_classic_histograms_to_nhcb,
        "keep_classic_histograms": args.keep_classic_histograms,
        "skip_created_series": args.skip_created_series}
    if args.keep_classic_histograms and not args.convert_classic_histograms_to_nhcb:
        _err("import", "usage error: --keep-classic-histograms needs --convert-classic-histograms-to-nhcb")
        return 2
    if args.default_timestamp is not None:
        from promlab.model import parse_time

        try:
            options["default_timestamp_ms"] = parse_time(args.default_timestamp)
        except PromlabError as e:
            return _err("import", e)
    try:
        with Session(args.data, progress=not args.quiet) as session:
            stats = session.import_file(path, progress=not args.quiet, **options)
    except ExpositionError as e:
        where = f"line {e.lineno}: " if e.lineno else ""
        return _err("import", f"{path}: {where}{e.reason} (nothing imported)")
    except PromlabError as e:
        return _err("import", f"{path}: {e} (nothing imported)")
    dt = time.perf_counter() - t0
    print(f"imported {path} ({stats.format}, {stats.format_reason}) into {args.data} in {dt:.2f} s "
          f"({stats.samples / dt:,.0f} samples/s): {_stats_text(stats)}")
    return 0


def _import_remote(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError
    from promlab.session import Session

    if args.file:
        return _err("import", "a file and --from exclude each other")
    if not args.match or not args.start:
        return _err("import", "--from needs --match and --start")
    token = None
    if args.bearer_token_file:
        token = Path(args.bearer_token_file).read_text().strip()
    try:
        with Session(args.data, progress=not args.quiet) as session:
            stats = session.import_from(
                args.source, match=args.match, start=args.start, end=args.end, slice=args.slice,
                username=args.user, password=os.environ.get("PROMLAB_PASSWORD"),
                bearer_token=token, ca_file=args.ca_file, cert_file=args.cert_file,
                key_file=args.key_file, insecure_skip_verify=args.insecure_skip_verify,
                progress=not args.quiet)
    except PromlabError as e:
        return _err("import", e)
    print(f"imported {stats.samples:,} samples of {stats.series:,} series from {stats.url} into "
          f"{args.data} in {stats.seconds:.2f} s ({stats.samples_per_second:,.0f} samples/s; "
          f"{stats.slices} slices, {stats.slices_skipped} already done)")
    return 0


def _format_frame(df: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(df.prom.to_prometheus_json())
    if fmt == "csv":
        return str(df.to_csv(index=False)).rstrip("\n")
    return "(empty result)" if df.empty else str(df.to_string(index=False))


def cmd_query(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError
    from promlab.promql import Engine
    from promlab.session import Session

    ranged = args.start is not None or args.end is not None or args.step is not None
    if ranged and (args.start is None or args.end is None or args.step is None):
        return _err("query", "a range query needs --start, --end and --step")
    if ranged and args.time is not None:
        return _err("query", "--time and --start/--end/--step exclude each other")
    remote = "://" in args.data and not args.data.startswith("file://")
    if not remote and not Path(args.data).is_dir():
        return _err("query", f"no store at {args.data}")
    store_options: dict[str, Any] = {}
    if args.storage_option:
        if not remote:
            return _err("query", "--storage-option applies to a store at a URL (--data s3://...)")
        store_options["storage_options"] = _storage_options(args.storage_option)
    try:
        # Progress (a long WAL replay) goes to stderr: stdout stays clean for json/csv.
        engine = Engine(timeout=args.timeout, max_samples=args.max_samples,
                        features=args.enable_feature)
        with Session(args.data, read_only=True, progress=not args.quiet, engine=engine,
                     **store_options) as session:
            if ranged:
                df = session.query_range(args.expr, args.start, args.end, args.step)
            else:
                df = session.query(args.expr, time=args.time)
    except PromlabError as e:
        return _err("query", e)
    print(_format_frame(df, args.format))
    return 0


def _storage_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as fsspec storage options (``true``/``false`` and numbers parsed)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"promlab: bad --storage-option {pair!r} (use KEY=VALUE)")
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            try:
                value = json.loads(text) if text[:1] in "{[" else (int(text) if text.isdigit() else text)
            except ValueError:
                value = text
        out[key] = value
    return out


def cmd_scrape(args: argparse.Namespace) -> int:
    from promlab import daemon
    from promlab.errors import PromlabError

    try:
        session_options, rule_options = daemon_options(args)
    except PromlabError as e:
        return _err("scrape", e)
    return int(daemon.run(args.config, args.data, progress=not args.quiet,
                          session_options=session_options, rule_options=rule_options))


def cmd_serve(args: argparse.Namespace) -> int:
    from promlab import daemon
    from promlab.api.malloc import fix_malloc_policy

    fix_malloc_policy()  # a serving process: fixed glibc thresholds (PROMLAB_MALLOC=default: off)

    options: dict[str, Any] = {"enable_lifecycle": args.web_enable_lifecycle,
                               "enable_admin_api": args.web_enable_admin_api,
                               "compression": args.web_compression}
    if args.web_config_file:
        options["web_config"] = args.web_config_file
    if args.bearer_token_file:
        options["bearer_token"] = Path(args.bearer_token_file).read_text().strip()
    from promlab.api.server import normalize_prefix
    from promlab.errors import PromlabError

    try:
        session_options, rule_options = daemon_options(args)
    except PromlabError as e:
        return _err("serve", e)
    prefix = args.route_prefix
    if prefix is None and args.external_url:
        prefix = urlsplit(args.external_url).path  # as Prometheus: the external URL's path
    options["route_prefix"] = normalize_prefix(prefix)
    return int(daemon.run(args.config, args.data, progress=not args.quiet, listen=args.listen,
                          server_options=options, session_options=session_options,
                          rule_options=rule_options))


def cmd_tsdb_verify(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError
    from promlab.storage.verify import repair_store, verify_store

    what = f"tsdb {args.tsdb_command}"
    try:
        if args.tsdb_command == "repair":
            damaged = repair_store(args.data)
            for r in damaged:
                print(f"quarantined {r.path}: {r.reason}")
            print(f"{len(damaged)} damaged blocks quarantined; the WAL was replayed and flushed")
            return 0
        reports = verify_store(args.data)
    except PromlabError as e:
        return _err(what, e)
    for r in reports:
        print(f"{'ok     ' if r.reason is None else 'DAMAGED'} {r.path}"
              + ("" if r.reason is None else f": {r.reason}"))
    bad = sum(r.reason is not None for r in reports)
    print(f"{len(reports)} blocks, {bad} damaged")
    return 1 if bad else 0


def cmd_tsdb_info(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError
    from promlab.session import Session

    if not Path(args.data).is_dir():
        return _err("tsdb info", f"no store at {args.data}")
    try:
        with Session(args.data, read_only=True, progress=not args.quiet) as session:
            info = session.info()
    except PromlabError as e:
        return _err("tsdb info", e)
    if args.json:
        print(json.dumps(info.to_dict()))
    else:
        print(f"store {args.data}:")
        _print_info(info)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from promlab.demo import run

    return run(data=args.data, headless=args.headless, duration=args.duration, quick=args.quick,
               hours=args.hours, scale=args.scale, cache_dir=args.cache_dir, open_browser=not args.no_browser)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from promlab.version import __version__

    ap = argparse.ArgumentParser(prog="promlab", description="Prometheus as a Jupyter-native analysis environment.")
    ap.add_argument("--version", action="version", version=f"promlab {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str,
            parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = add("demo", cmd_demo, "live demo: scrape the demo targets into the store with the demo rules and "
            "open JupyterLab on quickstart.ipynb (--headless: in the terminal, with queries and a plot)")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("--headless", action="store_true", help="no JupyterLab: scrape, import, query, plot, print")
    p.add_argument("--no-browser", action="store_true", help="start JupyterLab without opening a browser")
    p.add_argument("--duration", type=float, help="seconds of live scraping (headless: default 30, 5 with "
                   "--quick; with JupyterLab: until Ctrl-C)")
    p.add_argument("--quick", action="store_true", help="a short headless run (for tests)")
    p.add_argument("--hours", type=float, help="hours of the standard dataset to import (default 2)")
    p.add_argument("--scale", type=float, help="fraction of its 100 instances (default 0.1)")
    p.add_argument("--cache-dir", help="where generated datasets are kept (default: $XDG_CACHE_HOME/promlab or ~/.cache/promlab)")

    p = add("import", cmd_import, "import an OpenMetrics / text-format file with timestamps, or "
            "a live Prometheus's samples (--from)")
    p.add_argument("file", nargs="?", help="the file (not with --from)")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--format", choices=("auto", "openmetrics", "text"), default="auto",
                   help="file format (default: auto, detected and reported; refused when ambiguous)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1, nothing stored) if any sample would be dropped, duplicated "
                   "or out of order")
    p.add_argument("--default-timestamp", metavar="TIME",
                   help="stamp samples without a timestamp with TIME (default: they are an error)")
    p.add_argument("--convert-classic-histograms-to-nhcb", action="store_true",
                   help="store histogram families as native histograms with custom buckets (as the "
                   "scrape option of that name; promtool 2.42 has no such option)")
    p.add_argument("--keep-classic-histograms", action="store_true",
                   help="with --convert-classic-histograms-to-nhcb, keep the classic series too")
    p.add_argument("--skip-created-series", action="store_true",
                   help="do not store OpenMetrics _created samples as series (promtool 2.42 does)")
    p.add_argument("--from", dest="source", metavar="URL",
                   help="a Prometheus server to copy raw samples from (remote read)")
    p.add_argument("--match", action="append", default=[], help="series selector (repeatable)")
    p.add_argument("--start", help="range start (RFC 3339, unix seconds, now-1d)")
    p.add_argument("--end", default="now", help="range end (default now)")
    p.add_argument("--slice", default="1h", help="time range per request (default 1h)")
    p.add_argument("--user", help="basic-auth user (password from PROMLAB_PASSWORD)")
    p.add_argument("--bearer-token-file", help="file holding a bearer token")
    p.add_argument("--ca-file", help="CA bundle to verify the server")
    p.add_argument("--cert-file", help="client certificate")
    p.add_argument("--key-file", help="client certificate key")
    p.add_argument("--insecure-skip-verify", action="store_true", help="do not verify TLS")

    p = add("query", cmd_query, "evaluate a PromQL expression against a store")
    p.add_argument("expr")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory or URL such as s3://bucket/prefix "
                   f"(default: {DEFAULT_DATA})")
    p.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an fsspec option of a store at a URL (e.g. endpoint_url=http://127.0.0.1:9000, "
                   "anon=true); AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... work too")
    p.add_argument("--time", help="evaluation time (RFC 3339, unix seconds or now-1h; default now)")
    p.add_argument("--start", help="range query start")
    p.add_argument("--end", help="range query end")
    p.add_argument("--step", help="range query step (e.g. 15s, 1m)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--timeout", default="2m", help="longest evaluation (default 2m, as Prometheus)")
    p.add_argument("--max-samples", type=int, default=50_000_000,
                   help="most samples a query may load at once (default 50000000, as Prometheus)")
    p.add_argument("--enable-feature", action="append", default=[], metavar="NAME[,NAME...]",
                   help="PromQL feature flags with Prometheus's names (repeatable), e.g. "
                        "promql-experimental-functions, promql-duration-expr, "
                        "promql-extended-range-selectors, promql-binop-fill-modifiers, all")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (on stderr)")

    p = add("scrape", cmd_scrape, "run the scraper daemon with a prometheus.yml")
    p.add_argument("--config", required=True, help="prometheus.yml")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (on stderr)")
    add_daemon_flags(p)

    p = add("serve", cmd_serve, "serve the Prometheus HTTP API over a store (with --config: "
            "also scrape and evaluate rules)")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("--config", help="prometheus.yml: scrape and evaluate its rules too")
    p.add_argument("--listen", "--web.listen-address", dest="listen", default="127.0.0.1:9090",
                   help="host:port to listen on (default 127.0.0.1:9090)")
    p.add_argument("--web.config.file", dest="web_config_file",
                   help="web config: TLS, basic auth users (bcrypt), headers")
    p.add_argument("--web.enable-lifecycle", dest="web_enable_lifecycle", action="store_true",
                   help="enable /-/reload and /-/quit")
    p.add_argument("--web.enable-admin-api", dest="web_enable_admin_api", action="store_true",
                   help="enable the admin API")
    p.add_argument("--bearer-token-file", help="require this bearer token on every request")
    p.add_argument("--web.compression", dest="web_compression", default="auto",
                   choices=("auto", "always", "never"),
                   help="gzip JSON answers, /federate and /metrics for clients that ask: auto "
                        "(default: peers not on loopback), always (as Prometheus), never")
    p.add_argument("--web.route-prefix", dest="route_prefix",
                   help="path prefix of every endpoint (default: the path of --web.external-url)")
    add_daemon_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (on stderr)")

    rules = add("rules", lambda a: 2, "check, backtest and backfill rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    p = add("check", cmd_rules_check, "check rule files as promtool check rules does", parent=rules_sub)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--lint", default="duplicate-rules", help="lint checks, comma-separated: all, "
                   "duplicate-rules, none (default duplicate-rules)")
    p.add_argument("--lint-fatal", action="store_true", help="exit 3 on lint findings")
    _add_promtool_features(p)
    p = add("backtest", cmd_rules_backtest, "alert episodes the rules would have produced over stored history",
            parent=rules_sub)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("--start", required=True, help="first evaluation time")
    p.add_argument("--end", required=True, help="last evaluation time")
    p.add_argument("--step", help="evaluation interval for every group (default: each group's)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p = add("backfill", cmd_rules_backfill,
            "write recording rules' series over a past range into the store "
            "(as promtool tsdb create-blocks-from rules)", parent=rules_sub)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("--start", required=True, help="first evaluation time")
    p.add_argument("--end", required=True, help="last evaluation time")
    p.add_argument("--step", help="evaluation interval for every group (default: each group's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (on stderr)")

    check = add("check", lambda a: 2, "check configuration files")
    check_sub = check.add_subparsers(dest="check_command", metavar="COMMAND", required=True)
    p = add("config", cmd_check_config, "check prometheus.yml files (and their rule files) as "
            "promtool check config does", parent=check_sub)
    add_check_config_flags(p)

    test = add("test", lambda a: 2, "unit tests")
    test_sub = test.add_subparsers(dest="test_command", metavar="COMMAND", required=True)
    p = add("rules", cmd_test_rules, "rule unit tests as promtool test rules runs them",
            parent=test_sub)
    p.add_argument("files", nargs="*", metavar="FILE", help="unit-test files (promtool's format)")
    p.add_argument("--run", action="append", metavar="REGEX",
                   help="only test groups whose name matches (repeatable)")
    p.add_argument("--debug", action="store_true", help="print debug output and a data dump")
    p.add_argument("--diff", action="store_true", help="print alert differences as a diff")
    p.add_argument("--ignore-unknown-fields", action="store_true",
                   help="ignore unknown fields in the rule files")
    _add_promtool_features(p)
    p.add_argument("--from-history", metavar="DIR",
                   help="instead: write a test file whose input_series come from the store DIR")
    p.add_argument("--rules", action="append", metavar="FILE", help="rule file (--from-history)")
    p.add_argument("--start", help="first sample time (--from-history)")
    p.add_argument("--end", help="last sample time (--from-history)")
    p.add_argument("--interval", default="1m", help="input series interval (default 1m)")
    p.add_argument("--match", action="append", metavar="SELECTOR",
                   help="extra series to include (--from-history, repeatable)")
    p.add_argument("--relative", action="store_true",
                   help="no start_timestamp: times start at 0 (promtool 2.x)")
    p.add_argument("-o", "--output", metavar="OUT.yml", help="where to write (default stdout)")

    tsdb = add("tsdb", lambda a: 2, "inspect a store")
    tsdb_sub = tsdb.add_subparsers(dest="tsdb_command", metavar="COMMAND", required=True)
    for name, what in (("verify", "check every block's checksums and data (exit 1 if damaged)"),
                       ("repair", "quarantine damaged blocks, keep what the WAL and intact blocks hold")):
        p = add(name, cmd_tsdb_verify, what, parent=tsdb_sub)
        p.add_argument("--data", required=True, help="the store directory")
    p = add("info", cmd_tsdb_info, "series, samples, blocks and bytes/sample of a store", parent=tsdb_sub)
    p.add_argument("--data", default=DEFAULT_DATA, help=f"store directory (default: {DEFAULT_DATA})")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (on stderr)")
    return ap


def _add_promtool_features(p: argparse.ArgumentParser) -> None:
    p.add_argument("--enable-feature", action="append", default=[], metavar="NAME[,NAME...]",
                   help="promtool 2.42's flag: promql-at-modifier and promql-negative-offset are "
                        "stable (a warning), no-default-scrape-port is accepted, others are unknown")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (argparse's 0/2 included)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return int(args.handler(args))
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("promlab"):
            return _err(args.command, f"{e.name} is not available yet in this build")
        raise
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``promlab query ... | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

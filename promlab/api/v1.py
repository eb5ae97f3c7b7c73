"""API v1 query handlers: ``query``, ``query_range``, ``series``, ``labels``, label values,
``metadata``, ``format_query``, ``parse_query`` and ``query_exemplars``.

Handlers read parameters from the URL and, for a form POST, the body (as Prometheus's
``r.Form``), evaluate in a worker thread (the event loop stays free while the engine runs; a
query already seen to be cheap runs on the loop, :mod:`promlab.api.costs`) and
answer with Prometheus's JSON; any :class:`~promlab.errors.PromlabError` becomes the error body
of :mod:`promlab.api.errors`.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from promlab.api.ast_json import expr_to_json
from promlab.api.costs import CostMemo
from promlab.api.encode import query_response, query_stats, success
from promlab.api.errors import api_error
from promlab.api.metrics import ApiMetrics
from promlab.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    parse_api_duration_ns,
    parse_api_time,
    parse_api_time_parts,
    parse_count_limit,
    parse_limit,
    parse_match_list,
    read_params,
    time_order_key,
    time_parts_ms,
)
from promlab.api.service import Service
from promlab.errors import BadData, ParseError, PromlabError, QueryError, QueryTimeout
from promlab.model.value import format_float
from promlab.promql.engine import Engine, Result
from promlab.promql.features import check_features
from promlab.promql.parser import parse_expr, prettify
from promlab.promql.parser.ast import VectorSelector, walk
from promlab.promql.parser.literals import go_quote
from promlab.promql.parser.types import ValueType
from promlab.storage.exemplars import exemplars_of
from promlab.storage.lookup import label_lookup, series_lookup

__all__ = ["MAX_CONCURRENT_QUERIES", "MAX_POINTS", "QueryAPI", "check_open", "handler"]

#: Most points per series a range query may ask for (Prometheus's 11,000).
MAX_POINTS = 11_000

#: Queries evaluated at once (Prometheus's ``--query.max-concurrency`` default); more wait.
MAX_CONCURRENT_QUERIES = 20

Handler = Callable[[Request], Awaitable[Response]]


def handler(name: str, metrics: ApiMetrics, fn: Handler) -> Handler:
    """``fn`` with typed errors turned into API errors and its requests counted as ``name``."""
    duration = metrics.http_duration.labels(name)
    by_code: dict[int, Any] = {}  # the counter's children, looked up once per status code

    async def wrapped(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            resp = await fn(request)
        except PromlabError as exc:
            resp = api_error(exc)
        code = resp.status_code
        counter = by_code.get(code)
        if counter is None:
            counter = by_code[code] = metrics.http_requests.labels(name, str(code))
        counter.inc()
        duration.observe(time.perf_counter() - t0)
        return resp

    return wrapped


def check_open(service: Service) -> None:
    """Raise :class:`PromlabError` when ``service`` is closed (the handlers' common guard)."""
    if service.closed:
        raise PromlabError("the session is closed")


def _invalid_query(exc: ParseError) -> BadData:
    return BadData(f'invalid parameter "query": {exc}')


class QueryAPI:
    """The query handlers over one service."""

    def __init__(self, service: Service, metrics: ApiMetrics) -> None:
        self.service = service
        self.metrics = metrics
        self.costs = CostMemo()
        self._outcome = {(kind, outcome): metrics.queries.labels(kind, outcome)
                         for kind in ("instant", "range") for outcome in ("ok", "error")}
        self._inner_eval = metrics.query_duration.labels("inner_eval")
        # Threads start on demand; close() lets them go (a server started again gets new ones).
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            pool = self._pool = ThreadPoolExecutor(MAX_CONCURRENT_QUERIES,
                                                   thread_name_prefix="promlab-query")
        return pool

    def close(self) -> None:
        """Let the query threads go once the queries in flight are done."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def routes(self) -> list[BaseRoute]:
        both, get = ["GET", "POST"], ["GET"]
        # Methods as Prometheus 2.42 routes them (label values and metadata: GET only).
        table: list[tuple[str, str, Handler, list[str]]] = [
            ("/api/v1/query", "query", self.query, both),
            ("/api/v1/query_range", "query_range", self.query_range, both),
            ("/api/v1/series", "series", self.series, both),
            ("/api/v1/labels", "labels", self.labels, both),
            ("/api/v1/label/{name}/values", "label/:name/values", self.label_values, get),
            ("/api/v1/metadata", "metadata", self.metadata, get),
            ("/api/v1/format_query", "format_query", self.format_query, both),
            ("/api/v1/parse_query", "parse_query", self.parse_query, both),
            ("/api/v1/query_exemplars", "query_exemplars", self.query_exemplars, both),
        ]
        return [Route(path, handler(f"/api/v1/{name}", self.metrics, fn), methods=methods)
                for path, name, fn, methods in table]

    # --- queries ------------------------------------------------------------------------------
    def _engine(self, p: Any) -> Engine:
        """The engine with the request's ``timeout`` and ``lookback_delta`` (Prometheus 3.x's
        per-query lookback), checked in Prometheus's order."""
        engine = self.service.engine
        timeout, lookback = p.get("timeout"), p.get("lookback_delta")
        ms = None
        if timeout:
            ms = _ns_to_ms(parse_api_duration_ns(timeout, "timeout"))
        lookback_ms = 0
        if lookback:
            try:
                lookback_ms = _ns_to_ms(parse_api_duration_ns(lookback, "lookback_delta"))
            except BadData as exc:
                detail = str(exc).split(": ", 1)[1]  # without the "invalid parameter" prefix
                raise BadData(f"error parsing lookback delta duration: {detail}") from None
        tighter = ms is not None and (engine.timeout_ms is None or ms < engine.timeout_ms)
        if not tighter and lookback_ms <= 0:
            return engine
        limited = copy.copy(engine)  # the engine holds its limits only: a shallow copy is enough
        if tighter:
            limited.timeout_ms = ms
        if lookback_ms > 0:  # zero or less: the engine's default, as Prometheus
            limited.lookback_ms = lookback_ms
        return limited

    def _check_open(self) -> None:
        check_open(self.service)

    async def _run(self, kind: str, params: Any, evaluate: Callable[[Engine, bool], Result],
                   cost_key: Hashable, *, limit: int) -> Response:
        self._check_open()
        engine = self._engine(params)
        want_stats = bool(params.get("stats"))
        extra_warnings = _stats_warning(params.get("stats", ""))
        t0 = time.perf_counter()

        def run() -> tuple[Response, float, float, float]:
            # Evaluation and encoding in one call: at most one thread hop per query.
            t1 = time.perf_counter()
            try:
                result = evaluate(engine, want_stats)
            except ParseError as exc:
                raise _invalid_query(exc) from None
            t2 = time.perf_counter()
            stats = query_stats(result, prepare_s=0.0, eval_s=t2 - t1, queue_s=t1 - t0,
                                per_step=params.get("stats") == "all") if want_stats else None
            response = query_response(result, stats=stats, limit=limit,
                                      extra_warnings=extra_warnings)
            return response, t1, t2, time.perf_counter()

        try:
            if self.costs.inline(cost_key):
                # Seen to be cheap: a thread hop would cost more than it saves (promlab.api.costs).
                response, started, done, encoded = run()
            else:
                # A plain executor, not anyio's thread pool: less bookkeeping per call.
                response, started, done, encoded = await asyncio.get_running_loop().run_in_executor(
                    self._executor(), run)
        except PromlabError:
            self._outcome[kind, "error"].inc()
            raise
        self.costs.record(cost_key, encoded - started)
        self._outcome[kind, "ok"].inc()
        self._inner_eval.observe(done - started)
        return response

    async def query(self, request: Request) -> Response:
        p = await read_params(request)
        expr = p.get("query", "")
        limit = parse_limit(p.get("limit"))
        t = parse_api_time(p.get("time"), "time", nano=True)
        store = self.service.store
        return await self._run("instant", p, lambda e, s: e.instant(store, expr, t, stats=s),
                               ("instant", expr), limit=limit)

    async def query_range(self, request: Request) -> Response:
        p = await read_params(request)
        expr = p.get("query", "")
        limit = parse_limit(p.get("limit"))
        # Compared at Prometheus's precision (ns), evaluated at the engine's (ms).
        start_t = parse_api_time_parts(p.get("start"), "start", required=True)
        end_t = parse_api_time_parts(p.get("end"), "end", required=True)
        start_k, end_k = time_order_key(start_t), time_order_key(end_t)
        if end_k < start_k:
            raise BadData('invalid parameter "end": end timestamp must not be before start time')
        step_ns = parse_api_duration_ns(p.get("step"), "step")
        if step_ns <= 0:
            raise BadData('invalid parameter "step": zero or negative query resolution step '
                          "widths are not accepted. Try a positive integer")
        # Go's Duration arithmetic: the span saturates at int64 ns, the division truncates;
        # a step under 1 ms passes only for a span of at most 11,000 steps (_zero_interval).
        span_ns = min((end_k[0] - start_k[0]) * 1_000_000_000 + end_k[1] - start_k[1], 2**63 - 1)
        start, end = time_parts_ms(start_t, nano=True), time_parts_ms(end_t, nano=True)
        if span_ns // step_ns > MAX_POINTS:
            raise BadData("exceeded maximum resolution of 11,000 points per timeseries. Try "
                          "decreasing the query resolution (?step=XX)")
        step = step_ns // 1_000_000
        if step == 0:
            return await self._run("range", p, lambda e, s: _zero_interval(e, expr),
                                   ("range", expr, 0, 0), limit=limit)
        store = self.service.store
        return await self._run("range", p, lambda e, s: e.range(store, expr, start, end, step,
                                                                       stats=s),
                               ("range", expr, (end - start) // step, step), limit=limit)

    # --- series and labels --------------------------------------------------------------------
    def _bounds(self, p: Any) -> tuple[int, int, bool]:
        """``start`` and ``end`` in ms (all of time when absent), and whether they are in order
        as Go compares times (``Inf`` and ``NaN`` give times before every other)."""
        start_t = parse_api_time_parts(p.get("start"), "start", default=_UNBOUNDED_START)
        end_t = parse_api_time_parts(p.get("end"), "end", default=_UNBOUNDED_END)
        start = MIN_TIME_MS if start_t is _UNBOUNDED_START else time_parts_ms(start_t)
        end = MAX_TIME_MS if end_t is _UNBOUNDED_END else time_parts_ms(end_t)
        return start, end, time_order_key(start_t) <= time_order_key(end_t)

    async def series(self, request: Request) -> Response:
        p = await read_params(request, multipart=False)  # r.ParseForm first
        if p.form_error:
            raise BadData(f"error parsing form values: {p.form_error}")
        values = p.getlist("match[]")
        if not values:
            raise BadData("no match[] parameter provided")
        limit = parse_limit(p.get("limit"))
        start, end, ordered = self._bounds(p)
        sets = parse_match_list(values)
        self._check_open()
        if not ordered:  # Prometheus does not refuse it; its answer depends on its blocks
            return success([])

        series = await run_in_threadpool(series_lookup, self.service.store, start, end, sets)
        warnings = []
        if limit and len(series) > limit:
            series = series[:limit]
            warnings.append("results truncated due to limit")
        return success([ls.to_dict() for ls in series], warnings=warnings)

    async def _label_query(self, request: Request, name: str | None) -> Response:
        p = await read_params(request)
        limit = parse_limit(p.get("limit"))
        start, end, ordered = self._bounds(p)
        sets = parse_match_list(p.getlist("match[]"), wrap=False) or [()]
        self._check_open()
        if not ordered:  # Prometheus does not refuse it; its answer depends on its blocks
            return success([])

        names = await run_in_threadpool(partial(label_lookup, name=name), self.service.store,
                                        start, end, sets)
        warnings = []
        if limit and len(names) > limit:
            names = names[:limit]
            warnings.append("results truncated due to limit")
        return success(names, warnings=warnings)

    async def labels(self, request: Request) -> Response:
        return await self._label_query(request, None)

    async def label_values(self, request: Request) -> Response:
        name = request.path_params["name"]
        raw = request.scope.get("raw_path") or b""
        seg = unquote_to_bytes(raw.rsplit(b"/values", 1)[0].rsplit(b"/", 1)[-1])
        try:  # the router decodes the path leniently; Prometheus refuses a name that is not UTF-8
            seg.decode("utf-8")
        except UnicodeDecodeError:
            raise BadData(f'invalid label name: "{seg.decode("utf-8", "backslashreplace")}"') from None
        if name.startswith("U__"):  # Prometheus's escaping of UTF-8 label names
            name = _unescape_label(name)
        if not name or "\x00" in name:
            raise BadData(f'invalid label name: "{name}"')
        return await self._label_query(request, name)

    # --- metadata -----------------------------------------------------------------------------
    async def metadata(self, request: Request) -> Response:
        """Prometheus 3.x's ``limit`` (metrics; negative: all, 0: none) and
        ``limit_per_metric`` (entries of a metric; 0 or less: all)."""
        p = await read_params(request)
        limit = parse_count_limit(p.get("limit"), "limit")
        per_metric = parse_count_limit(p.get("limit_per_metric"), "limit_per_metric")
        metric = p.get("metric", "")
        out: dict[str, list[dict[str, str]]] = {}
        for row in self.service.scrape.metadata():
            if metric and row["metric"] != metric:
                continue
            entries = out.get(row["metric"])
            if entries is None:
                if 0 <= limit <= len(out):
                    continue
                entries = out[row["metric"]] = []
            if 0 < per_metric <= len(entries):
                continue
            entry = {"type": row["type"], "help": row["help"], "unit": row["unit"]}
            if entry not in entries:
                entries.append(entry)
        return success(out)

    # --- PromQL text --------------------------------------------------------------------------
    def _parse(self, p: Any) -> Any:
        try:
            return parse_expr(p.get("query", ""))
        except ParseError as exc:
            raise _invalid_query(exc) from None

    async def format_query(self, request: Request) -> Response:
        return success(prettify(self._parse(await read_params(request))))

    async def parse_query(self, request: Request) -> Response:
        return success(expr_to_json(self._parse(await read_params(request))))

    async def query_exemplars(self, request: Request) -> Response:
        """The scraped exemplars (promlab.storage.exemplars) of the series any selector of
        ``query`` matches, in ``[start, end]``; Prometheus's JSON (value a string, timestamp
        in seconds)."""
        p = await read_params(request)
        start, end, ordered = self._bounds(p)
        if not ordered:
            raise BadData("end timestamp must not be before start timestamp")
        try:  # unlike the other endpoints, not as an "invalid parameter"
            expr = parse_expr(p.get("query", ""))
        except ParseError as exc:
            raise BadData(str(exc)) from None
        self._check_open()
        sets = [n.matchers for n in walk(expr) if isinstance(n, VectorSelector)]
        if not sets:  # Prometheus answers nothing at all
            return Response(status_code=204)
        store = exemplars_of(self.service.store, create=False)
        if store is None:
            return success([])
        found = await run_in_threadpool(store.select, start, end, sets)
        return success([{"seriesLabels": r.series.to_dict(),
                         "exemplars": [{"labels": e.labels.to_dict(), "value": format_float(e.value),
                                        "timestamp": e.timestamp_ms / 1000} for e in r.exemplars]}
                        for r in found])


# Absent start/end: Prometheus's MinTime and MaxTime (as (seconds, ns); all of time in ms).
_UNBOUNDED_START = (-9_223_309_901_257_974, 0)
_UNBOUNDED_END = (9_223_309_901_257_974, 999_999_999)


def _zero_interval(engine: Engine, expr: str) -> Result:
    """A range query whose step is under 1 ms: Prometheus (2.42 and 3.x) evaluates it at an
    interval of 0 ms, and its evaluator's first step count divides by zero, a Go runtime panic
    it answers as an execution error. What it checks before evaluating comes first: the
    parse, the features, the result type (as :meth:`Engine.range`), an expired timeout."""
    node = parse_expr(expr)
    check_features(node, engine.features)
    if node.type not in (ValueType.SCALAR, ValueType.VECTOR):
        raise BadData(f'invalid expression type "{node.type.document_name}" for range query, '
                      "must be Scalar or instant Vector")
    if engine.timeout_ms is not None and engine.timeout_ms <= 0:
        raise QueryTimeout("query timed out in query queue")
    raise QueryError("unexpected error: runtime error: integer divide by zero")


def _ns_to_ms(ns: int) -> int:
    """Nanoseconds to ms, truncated toward zero (as Go's Duration division)."""
    return -(-ns // 1_000_000) if ns < 0 else ns // 1_000_000


def _stats_warning(value: str) -> list[str]:
    """Prometheus 3.x's warning for a ``stats`` value other than ``true`` and ``all`` (any
    non-empty value still turns the statistics on)."""
    if value in ("", "true", "all"):
        return []
    return [f'value {go_quote(value)} for parameter "stats" is deprecated and will be rejected '
            'in the next major release, use "true" or "all"']


def _unescape_label(name: str) -> str:
    """Prometheus's ``U__`` escaping of label names (``_`` as ``__``, ``_XX_`` as code point)."""
    out, i, s = [], 0, name[3:]
    while i < len(s):
        if s.startswith("__", i):
            out.append("_")
            i += 2
        elif s[i] == "_":
            j = s.find("_", i + 1)
            if j < 0:
                return name
            try:
                out.append(chr(int(s[i + 1:j], 16)))
            except ValueError:
                return name
            i = j + 1
        else:
            out.append(s[i])
            i += 1
    return "".join(out)

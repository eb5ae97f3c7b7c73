"""JSON bodies of the API: the success envelope, query results with stats, Go-style numbers.

Query results are encoded from the engine's :class:`~promlab.promql.results.Result` by
:func:`~promlab.promql.results.result_to_json` (label sets and arrays, values as Go formats
floats); this module wraps them in Prometheus's envelope and adds ``warnings``/``infos`` from the
result's annotations and ``stats`` when asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from promlab.promql.results import Result, result_to_json

__all__ = ["JSON_TYPE", "json_response", "query_data", "query_stats", "success"]

JSON_TYPE = "application/json"


def json_response(body: Any, *, status: int = 200) -> Response:
    """``body`` as compact JSON (Prometheus sends no spaces and no trailing newline)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(text.encode(), status_code=status, media_type=JSON_TYPE)


def success(data: Any, *, warnings: Sequence[str] = (), infos: Sequence[str] = (),
            status: int = 200) -> Response:
    """``{"status": "success", "data": ...}`` with ``warnings``/``infos`` when there are any."""
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    if infos:
        body["infos"] = list(infos)
    return json_response(body, status=status)


def query_data(result: Result, *, stats: dict[str, Any] | None = None,
               limit: int = 0) -> tuple[dict[str, Any], list[str]]:
    """The ``data`` of a query response, and the warnings to send with it.

    ``limit`` keeps the first ``limit`` series of a vector or matrix (0: all) and adds
    Prometheus's truncation warning when it cut any.
    """
    data = result_to_json(result)
    warnings = list(result.annotations.warnings)
    if limit > 0 and data["resultType"] in ("vector", "matrix") and len(data["result"]) > limit:
        data["result"] = data["result"][:limit]
        warnings.append("results truncated due to limit")
    if stats is not None:
        data["stats"] = stats
    return data, warnings


def query_stats(result: Result, *, prepare_s: float, eval_s: float, queue_s: float = 0.0,
                ) -> dict[str, Any]:
    """``data.stats`` of ``stats=all``: Prometheus's timings and sample counts.

    The engine does not count the samples it loads per query; ``peakSamples`` and
    ``totalQueryableSamples`` report the samples of the result instead.
    TODO(handle): count loaded samples in the evaluator and report them here.
    """
    value = result.value
    samples = 0
    present = getattr(value, "present", None)
    if present is not None:
        samples = int(present.sum())
    elif hasattr(value, "ts_ms"):
        samples = int(value.ts_ms.shape[0])
    else:
        samples = 1
    return {
        "timings": {
            "evalTotalTime": prepare_s + eval_s,
            "resultSortTime": 0,
            "queryPreparationTime": prepare_s,
            "innerEvalTime": eval_s,
            "execQueueTime": queue_s,
            "execTotalTime": prepare_s + eval_s + queue_s,
        },
        "samples": {"totalQueryableSamples": samples, "peakSamples": samples},
    }

"""JSON bodies of the API: the success envelope, query results with stats, Go-style numbers.

Query results are encoded from the engine's :class:`~promlab.promql.results.Result` by
:func:`~promlab.promql.results.result_to_json` (label sets and arrays, values as Go formats
floats); this module wraps them in Prometheus's envelope and adds ``warnings``/``infos`` from the
result's annotations and ``stats`` when asked.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from promlab.promql.results import Result, format_sample_value, result_to_json
from promlab.promql.values import Vector

__all__ = ["JSON_TYPE", "json_response", "query_data", "query_response", "query_stats",
           "sample_texts", "success"]

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


def sample_texts(values: np.ndarray) -> list[str]:
    """Sample values as the API writes them (:func:`format_sample_value`), fast.

    orjson (like Python's ``repr``) and Go's ``FormatFloat(v, 'f', -1, 64)`` pick the same
    shortest round-tripping digits; they differ only in layout: orjson writes ``1.0`` for ``1``
    (trimmed here on the joined text, not value by value), uses an exponent below 1e-4 and from
    1e16 on, and writes the special values as ``null``; only those values (found with numpy) go
    through :func:`format_sample_value`.

    Examples
    --------
    >>> sample_texts(np.array([1.0, 0.25, 1e21, float("nan"), -0.0]))
    ['1', '0.25', '1000000000000000000000', 'NaN', '-0']
    """
    arr = np.ascontiguousarray(values, np.float64)
    if not arr.shape[0]:
        return []
    # orjson writes the same shortest digits as repr (in the range where neither uses an
    # exponent), twenty times faster. ",": between values; every ".0" before one ends a
    # whole number.
    text = orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    out = (text[1:-1] + ",").replace(".0,", ",")[:-1].split(",")
    with np.errstate(invalid="ignore"):
        a = np.abs(arr)
        odd = ~np.isfinite(a) | (a >= 1e16) | ((a < 1e-4) & (a != 0))
    for i in np.flatnonzero(odd).tolist():
        out[i] = format_sample_value(float(arr[i]))
    return out


def _dumps(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _vector_result(result: Result, value: Vector, limit: int) -> tuple[str, bool]:
    """The ``result`` array of a vector/matrix response as JSON text, built column-wise.

    Returns the text and whether ``limit`` cut series off. The points of all series are laid
    out in one flat list of pieces (``[t,"``, value, ``"],``) filled by slice assignment, so
    each series' text is one ``join`` of a slice: no Python-level work per point.
    """
    rows, cols = np.nonzero(value.present)
    steps = np.asarray(result.steps_ms, np.int64)
    ts_text = [str(ms // 1000) if ms % 1000 == 0 else repr(ms / 1000) for ms in steps.tolist()]
    prefix = ["[" + t + ',"' for t in ts_text]
    n = int(rows.shape[0])
    pieces: list[str] = ['"],'] * (3 * n)
    if n:
        pieces[0::3] = operator.itemgetter(*cols.tolist())(prefix) if n > 1 \
            else [prefix[int(cols[0])]]
        pieces[1::3] = sample_texts(value.values[rows, cols])
    offsets = np.searchsorted(rows, np.arange(len(value.labels) + 1)).tolist()
    instant = result.result_type == "vector"
    parts: list[str] = []
    cut = False
    for i, ls in enumerate(value.labels):
        a, b = offsets[i], offsets[i + 1]
        if a == b:
            continue
        if limit and len(parts) >= limit:
            cut = True
            break
        metric = _dumps(ls.to_dict())
        points = "".join(pieces[3 * a:3 * b - 1]) + '"]'
        if instant:
            parts.append('{"metric":' + metric + ',"value":' + points + "}")
        else:
            parts.append('{"metric":' + metric + ',"values":[' + points + "]}")
    return "[" + ",".join(parts) + "]", cut


def query_response(result: Result, *, stats: dict[str, Any] | None = None,
                   limit: int = 0) -> Response:
    """The whole response of a successful query (same JSON as :func:`query_data` in
    :func:`success`, written directly for vector and matrix results of range and instant
    queries: the API's cost stays small beside the evaluation's)."""
    value = result.value
    # Native histogram samples take the engine's encoder (histresults.histogram_json).
    if not isinstance(value, Vector) or value.histograms is not None or \
            result.result_type not in ("vector", "matrix"):
        data, warnings = query_data(result, stats=stats, limit=limit)
        return success(data, warnings=warnings, infos=result.annotations.infos)
    text, cut = _vector_result(result, value, limit)
    warnings = list(result.annotations.warnings)
    if cut:
        warnings.append("results truncated due to limit")
    body = '{"status":"success","data":{"resultType":"' + result.result_type + '","result":' + text
    if stats is not None:
        body += ',"stats":' + _dumps(stats)
    body += "}"
    if warnings:
        body += ',"warnings":' + _dumps(warnings)
    if result.annotations.infos:
        body += ',"infos":' + _dumps(list(result.annotations.infos))
    return Response((body + "}").encode(), media_type=JSON_TYPE)

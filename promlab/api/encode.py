"""JSON bodies of the API: the success envelope, query results with stats, Go-style numbers.

Query results are encoded from the engine's :class:`~promlab.promql.results.Result` by
:func:`~promlab.promql.results.result_to_json` (label sets and arrays, values as Go formats
floats); this module wraps them in Prometheus's envelope and adds ``warnings``/``infos`` from the
result's annotations and ``stats`` when asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from promlab.promql.results import Result, format_sample_value, format_timestamp, result_to_json
from promlab.promql.values import Vector

__all__ = ["JSON_TYPE", "json_response", "query_data", "query_response", "query_stats",
           "sample_texts", "success"]

JSON_TYPE = "application/json"


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def json_response(body: Any, *, status: int = 200) -> Response:
    """``body`` as compact JSON (Prometheus sends no spaces and no trailing newline); a raw
    byte kept as a surrogate escape is written as U+FFFD, as Go writes bytes that are not UTF-8."""
    text = _dumps(body)
    try:
        data = text.encode()
    except UnicodeEncodeError:
        data = _SURROGATE_RE.sub("\ufffd", text).encode()
    return Response(data, status_code=status, media_type=JSON_TYPE)


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
                per_step: bool = False) -> dict[str, Any]:
    """``data.stats`` of a query asked with ``stats``: Prometheus's timings and sample counts.

    ``samples.totalQueryableSamples`` and ``peakSamples`` come from the evaluator's count
    (:mod:`promlab.promql.eval.querystats`; the result's own samples when the query was not
    counted); ``per_step`` (``stats=all``) adds ``totalQueryableSamplesPerStep``, as
    Prometheus does with its ``promql-per-step-stats`` feature on.
    """
    counted = result.sample_stats
    samples: dict[str, Any] = {}
    if counted is None:
        total = peak = _result_samples(result)
    else:
        total, peak = counted.total, counted.peak
        if per_step:
            samples["totalQueryableSamplesPerStep"] = [
                [format_timestamp(t), n]
                for t, n in zip(counted.steps_ms.tolist(), counted.per_step.tolist(),
                                strict=True)]
    samples["totalQueryableSamples"] = total
    samples["peakSamples"] = peak
    return {
        "timings": {
            "evalTotalTime": prepare_s + eval_s,
            "resultSortTime": 0,
            "queryPreparationTime": prepare_s,
            "innerEvalTime": eval_s,
            "execQueueTime": queue_s,
            "execTotalTime": prepare_s + eval_s + queue_s,
        },
        "samples": samples,
    }


def _result_samples(result: Result) -> int:
    value = result.value
    present = getattr(value, "present", None)
    if present is not None:
        return int(present.sum())
    if hasattr(value, "ts_ms"):
        return int(value.ts_ms.shape[0])
    return 1


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
    ['1', '0.25', '1e+21', 'NaN', '-0']
    """
    arr = np.ascontiguousarray(values, np.float64)
    if not arr.shape[0]:
        return []
    # orjson writes the same shortest digits as repr (in the range where neither uses an
    # exponent), twenty times faster. ",": between values; every ".0" before one ends a
    # whole number.
    text = orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    out = (text[1:-1] + ",").replace(".0,", ",")[:-1].split(",")
    for i in _odd_values(arr):
        out[i] = format_sample_value(float(arr[i]))
    return out


def _odd_values(values: np.ndarray) -> list[int]:
    """Positions of the values orjson writes unlike Go: specials, exponents (< 1e-4, >= 1e16)."""
    with np.errstate(invalid="ignore"):
        a = np.abs(values)
        return np.flatnonzero(~np.isfinite(a) | (a >= 1e16) | ((a < 1e-4) & (a != 0))).tolist()


def _ts_text(ms: int) -> str:
    """A step's timestamp as the API writes it (:func:`format_timestamp`)."""
    return str(format_timestamp(ms))


def _dumps(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: Widest value text the byte-matrix encoder lays out (wider: the per-point list encoder).
_MAX_VALUE_WIDTH = 40
_SUFFIX = b'"],'


def _label_json(labels: dict[str, str]) -> bytes:
    """A label set as the API writes it (``json.dumps`` compact, non-ASCII kept), fast."""
    try:
        return orjson.dumps(labels)
    except orjson.JSONEncodeError:  # lone surrogates: json writes them escaped, orjson refuses
        return _dumps(labels).encode()


def _text_matrix(texts: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` as rows of a zero-padded ``uint8`` matrix, and their lengths."""
    lens = np.fromiter(map(len, texts), np.int64, len(texts))
    width = int(lens.max()) if len(texts) else 0
    mat = np.frombuffer(b"".join(t.ljust(width, b"\0") for t in texts), np.uint8)
    return mat.reshape(len(texts), width), lens


def _windows(u8: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Rows of ``width`` bytes of ``u8`` from each of ``starts`` (past the end: zeros)."""
    padded = np.concatenate([u8, np.zeros(width, np.uint8)])
    view = np.lib.stride_tricks.as_strided(padded, (padded.shape[0] - width + 1, width),
                                           (1, 1), writeable=False)
    rows: np.ndarray = view[starts]
    return rows


def _step_prefixes(steps_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[<step time>,"`` of every step (:func:`format_timestamp`), as rows of a ``uint8``
    matrix and their lengths, written with numpy (one text per step, shared by all series).
    """
    n = int(steps_ms.shape[0])
    if not n or int(np.abs(steps_ms).max()) > 2**53:  # float64 seconds no longer exact
        return _text_matrix([b"[" + _ts_text(ms).encode() + b',"' for ms in steps_ms.tolist()])
    # orjson writes ms / 1000 as repr does (and "1.0" for whole seconds, trimmed as values
    # are); seconds are never below 1e-3 nor reach 1e16, where repr would use an exponent.
    u8, starts, lens = _value_tokens(steps_ms / 1000)
    width = int(lens.max()) + 3
    mat = np.zeros((n, width), np.uint8)
    mat[:, 0] = ord("[")
    mat[:, 1:width - 2] = _windows(u8, starts, width - 3)
    rows = np.arange(n)
    mat[rows, lens + 1] = ord(",")
    mat[rows, lens + 2] = ord('"')
    return mat, lens + 3


def _value_tokens(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """orjson's array text of ``values``: its bytes, where each value starts and the length of
    the value as the API writes it (``1`` for orjson's ``1.0``).

    Values orjson writes unlike Go (:func:`_odd_values`) are fixed afterwards by the caller.
    """
    u8 = np.frombuffer(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY), np.uint8)
    n = int(values.shape[0])
    starts = np.empty(n, np.int64)
    ends = np.empty(n, np.int64)
    commas = np.flatnonzero(u8 == ord(","))
    starts[0] = 1
    starts[1:] = commas + 1
    ends[:-1] = commas
    ends[-1] = u8.shape[0] - 1
    # orjson writes "1.0" where Go writes "1".
    lens = ends - starts - 2 * ((u8[ends - 1] == ord("0")) & (u8[ends - 2] == ord(".")))
    return u8, starts, lens


def _rows(buf: np.ndarray, width: int, stride: int = 1) -> np.ndarray:
    """``buf`` (``uint8``) as items of ``width`` bytes starting every ``stride`` bytes (a view:
    item ``i`` is ``buf[i * stride:i * stride + width]``); gathering or scattering such items
    with an index array moves ``width`` bytes per index in one copy."""
    count = (buf.shape[0] - width) // stride + 1 if buf.shape[0] >= width else 0
    return np.ndarray((count,), np.dtype((np.void, width)), buffer=buf, strides=(stride,))


def _by_width(widths: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Positions of ``widths`` grouped by value: ``(width, positions)`` pairs, positions in
    increasing order."""
    if int(widths.min()) == int(widths.max()):
        return [(int(widths[0]), np.arange(widths.shape[0]))]
    order = np.argsort(widths.astype(np.uint16), kind="stable")  # a radix sort
    counts = np.bincount(widths)
    bounds = np.cumsum(counts)
    return [(w, order[int(bounds[w]) - int(counts[w]):int(bounds[w])])
            for w in np.flatnonzero(counts).tolist()]


def _value_classes(vlens: np.ndarray, gap: int) -> list[tuple[int, np.ndarray | None]]:
    """Values grouped for writing with one width per group: ``(width, positions)`` pairs
    (positions None: all), widest group first.

    A group written with width ``w`` takes the values at least ``w - gap`` long, so that the
    bytes a write copies past a value's end (the next bytes of orjson's text) stay in the
    ``gap`` that follows it in the output, which is written afterwards. Usually one group.
    """
    hi = int(vlens.max())
    if int(vlens.min()) >= hi - gap:
        return [(hi, None)]
    out: list[tuple[int, np.ndarray | None]] = []
    todo = np.arange(vlens.shape[0])
    widths = vlens
    while todo.shape[0]:
        wide = widths >= hi - gap
        out.append((hi, todo[wide]))
        todo, widths = todo[~wide], widths[~wide]
        if widths.shape[0]:
            hi = int(widths.max())
    return out


def _point_texts(steps_ms: np.ndarray, cols: np.ndarray | None, values: np.ndarray,
                 ) -> tuple[memoryview, np.ndarray] | None:
    """The points ``[t,"v"],`` of all present cells, back to back, and the byte offset where
    each point starts (plus the end); ``None`` when a value's text is too wide.

    ``cols`` is each point's step (None: every step of every series, in order). The point
    offsets come from the texts' lengths; then the parts are copied to their places in the
    output with gathers/scatters of fixed-width items (:func:`_rows`): first the values
    (slices of orjson's text, in a few groups of one width each: :func:`_value_classes`), then
    what lies between two values, ``"],`` and the next step's prefix (one text per step,
    shared by all series), over whatever the wider value copies spilled there. Values orjson
    writes unlike Go are written last. No padded matrix or mask.
    """
    u8, starts, vlens = _value_tokens(values)
    odd = _odd_values(values)
    fixes = [format_sample_value(float(values[i])).encode() for i in odd]
    if fixes:
        vlens[odd] = [len(f) for f in fixes]
    wv = int(vlens.max())
    if wv > _MAX_VALUE_WIDTH:
        return None
    pmat, plens = _step_prefixes(steps_ms)
    n, n_steps, wp = int(values.shape[0]), pmat.shape[0], pmat.shape[1]
    point_cols = np.tile(np.arange(n_steps), n // max(n_steps, 1)) if cols is None else cols
    fixed = bool((plens == wp).all())
    point_plens = wp if fixed else plens[point_cols]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(vlens + (point_plens + len(_SUFFIX)), out=offsets[1:])
    total = int(offsets[-1])
    out = np.empty(total + wv, np.uint8)  # room for the last value's spill
    heads = offsets[:-1]
    value_at = heads + point_plens
    # The values (an odd value's orjson text too: its fix overwrites it below).
    src = np.concatenate([u8, np.zeros(wv, np.uint8)])  # every start can be read wv wide
    for w, at in _value_classes(vlens, len(_SUFFIX) + int(plens.min())):
        if at is None:
            _rows(out, w)[value_at] = _rows(src, w)[starts]
        else:
            _rows(out, w)[value_at[at]] = _rows(src, w)[starts[at]]
    suffix = np.frombuffer(_SUFFIX, np.uint8)
    if fixed:
        # '"],' + the next point's prefix: one table row per step, one scatter for all.
        joints = np.empty((n_steps, len(_SUFFIX) + wp), np.uint8)
        joints[:, :len(_SUFFIX)] = suffix
        joints[:, len(_SUFFIX):] = pmat
        width = joints.shape[1]
        _rows(out, width)[heads[1:] - len(_SUFFIX)] = _rows(joints.reshape(-1), width,
                                                            width)[point_cols[1:]]
        out[:wp] = pmat[point_cols[0]]
        out[total - len(_SUFFIX):total] = suffix
    else:
        for w, at in _by_width(np.asarray(point_plens)):
            _rows(out, w)[heads[at]] = _rows(pmat.reshape(-1), w, wp)[point_cols[at]]
        _rows(out, len(_SUFFIX))[offsets[1:] - len(_SUFFIX)] = suffix.view(
            np.dtype((np.void, len(_SUFFIX))))[0]
    for i, text in zip(odd, fixes, strict=True):
        pos = int(value_at[i])
        out[pos:pos + len(text)] = np.frombuffer(text, np.uint8)
    return out[:total].data, offsets


def _vector_result(result: Result, value: Vector, limit: int,
                   ) -> tuple[list[bytes | memoryview], bool]:
    """The ``result`` array of a vector/matrix response as JSON bytes, built column-wise.

    Returns the text (in pieces, joined once with the envelope by :func:`query_response`) and
    whether ``limit`` cut series off. The points of all series are
    written as one byte string (:func:`_point_texts`), so each series' points are one slice of
    it: no Python-level work per point.
    """
    steps = np.asarray(result.steps_ms, np.int64)
    present = np.asarray(value.present, bool)
    n_series = len(value.labels)
    counts = present.sum(axis=1) if present.ndim == 2 and n_series else np.zeros(0, np.int64)
    bounds = np.zeros(n_series + 1, np.int64)
    np.cumsum(counts, out=bounds[1:])
    n = int(bounds[-1])
    cols: np.ndarray | None
    if n and n == present.size:  # every cell present: no index arrays at all
        cols = None
        vals = np.ascontiguousarray(value.values, np.float64).reshape(-1)
    else:
        flat = np.flatnonzero(present.reshape(-1))
        cols = flat % max(present.shape[1], 1) if present.ndim == 2 else flat
        vals = np.ascontiguousarray(value.values.reshape(-1)[flat], np.float64)
    written = _point_texts(steps, cols, vals) if n else None
    if written is None:
        # Huge values (or no points): one text per point.
        if cols is None:
            cols = np.tile(np.arange(steps.shape[0]), n_series)
        prefix = ["[" + _ts_text(ms) + ',"' for ms in steps.tolist()]
        pieces = [prefix[c] + v + '"],'
                  for c, v in zip(cols.tolist(), sample_texts(vals), strict=True)]
        text = "".join(pieces).encode()
        ends = np.zeros(n + 1, np.int64)
        np.cumsum([len(p.encode()) for p in pieces], out=ends[1:])
        written = memoryview(text), ends
    view, point_offsets = written
    offsets = point_offsets[bounds].tolist()
    nonempty = (counts > 0).tolist()
    open_ = b',"value":' if result.result_type == "vector" else b',"values":['
    close = b"}" if result.result_type == "vector" else b"]}"
    parts: list[bytes | memoryview] = [b"["]
    cut = False
    count = 0
    for i, ls in enumerate(value.labels):
        if not nonempty[i]:
            continue
        if limit and count >= limit:
            cut = True
            break
        parts += [b',{"metric":' if count else b'{"metric":', _label_json(ls.to_dict()),
                  open_, view[offsets[i]:offsets[i + 1] - 1], close]
        count += 1
    parts.append(b"]")
    return parts, cut


def query_response(result: Result, *, stats: dict[str, Any] | None = None,
                   limit: int = 0, extra_warnings: Sequence[str] = ()) -> Response:
    """The whole response of a successful query (same JSON as :func:`query_data` in
    :func:`success`, written directly for vector and matrix results of range and instant
    queries: the API's cost stays small beside the evaluation's). ``extra_warnings`` (the
    handler's, about its parameters) follow the query's."""
    value = result.value
    # Native histogram samples take the engine's encoder (histresults.histogram_json).
    if not isinstance(value, Vector) or value.histograms is not None or \
            result.result_type not in ("vector", "matrix"):
        data, warnings = query_data(result, stats=stats, limit=limit)
        return success(data, warnings=[*warnings, *extra_warnings],
                       infos=result.annotations.infos)
    pieces, cut = _vector_result(result, value, limit)
    warnings = list(result.annotations.warnings)
    if cut:
        warnings.append("results truncated due to limit")
    warnings.extend(extra_warnings)
    head = '{"status":"success","data":{"resultType":"' + result.result_type + '","result":'
    tail = ""
    if stats is not None:
        tail += ',"stats":' + _dumps(stats)
    tail += "}"
    if warnings:
        tail += ',"warnings":' + _dumps(warnings)
    if result.annotations.infos:
        tail += ',"infos":' + _dumps(list(result.annotations.infos))
    return Response(b"".join([head.encode(), *pieces, (tail + "}").encode()]),
                    media_type=JSON_TYPE)

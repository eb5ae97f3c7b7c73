"""Label functions: ``label_replace`` and ``label_join``.

They loop over series (label manipulation, not samples); series that end up with the same
label set are merged when their samples do not collide, as Prometheus does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from promlab.errors import QueryError, RegexError
from promlab.model import METRIC_NAME, Labels
from promlab.model.re2 import Regex, compile_anchored, expand
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import string_arg
from promlab.promql.parser.ast import Call
from promlab.promql.values import Vector

__all__ = ["PRECHECKS", "function", "merge_same_labelsets"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()



def _valid_label_name(name: str) -> bool:
    if name == "" or "\ufffd" in name:
        # U+FFFD marks bytes that were not valid UTF-8 in the query string.
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def merge_same_labelsets(v: Vector) -> Vector:
    """Merge series with identical labels; overlapping samples are an error."""
    index: dict[Labels, int] = {}
    groups: list[list[int]] = []
    for i, ls in enumerate(v.labels):
        g = index.get(ls)
        if g is None:
            index[ls] = len(groups)
            groups.append([i])
        else:
            groups[g].append(i)
    if len(groups) == len(v.labels):
        return v
    gid = np.empty(len(v.labels), np.int64)
    for g, members in enumerate(groups):
        gid[members] = g
    counts = np.zeros((len(groups), v.values.shape[1]), np.int64)
    np.add.at(counts, gid, v.present.astype(np.int64))
    if (counts > 1).any():
        raise QueryError("vector cannot contain metrics with the same labelset")
    values = np.zeros((len(groups), v.values.shape[1]))
    present = counts > 0
    rows, cols = np.nonzero(v.present)
    values[gid[rows], cols] = v.values[rows, cols]
    dn = v.drop_name_mask()
    new_dn = np.zeros(len(groups), bool)
    np.logical_or.at(new_dn, gid, dn)
    ts = None
    if v.timestamps_ms is not None:
        ts = np.zeros((len(groups), v.values.shape[1]), np.int64)
        ts[gid[rows], cols] = v.timestamps_ms[rows, cols]
    hists = None
    if v.histograms is not None:
        hists = np.full((len(groups), v.values.shape[1]), None, object)
        hists[gid[rows], cols] = v.histograms[rows, cols]
    return Vector([v.labels[m[0]] for m in groups], values, present, new_dn, ts, hists)


def _replace_args(node: Call) -> tuple[str, str, str, Regex]:
    """label_replace's string arguments, checked: (dst, replacement, src, compiled regex)."""
    nodes = node.args
    dst, repl, src, regex_str = (string_arg((), nodes, i) for i in range(1, 5))
    try:
        regex = compile_anchored(regex_str)
    except RegexError as exc:
        raise QueryError(f"invalid regular expression in label_replace(): {regex_str}") from exc
    if not _valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    return dst, repl, src, regex


def _join_args(node: Call) -> tuple[str, str, list[str]]:
    """label_join's string arguments, checked: (dst, separator, sources)."""
    nodes = node.args
    dst = string_arg((), nodes, 1)
    sep = string_arg((), nodes, 2)
    srcs = [string_arg((), nodes, i) for i in range(3, len(nodes))]
    for s in srcs:
        if not _valid_label_name(s):
            raise QueryError(f"invalid source label name in label_join(): {s}")
    if not _valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    return dst, sep, srcs


#: Checks of a call's literal arguments made before its vector argument is evaluated (as
#: Prometheus does: a bad regex or label name is the error, whatever the vector would raise).
PRECHECKS: dict[str, Callable[[Call], object]] = {
    "label_replace": _replace_args,
    "label_join": _join_args,
}


@function("label_replace")
def func_label_replace(call: FunctionCall) -> Vector:
    """``label_replace(v instant-vector, dst string, replacement string, src string, regex string)``."""
    dst, repl, src, regex = _replace_args(call.node)
    v = call.args[0]
    assert isinstance(v, Vector)
    labels = list(v.labels)
    dn = v.drop_name_mask().copy()
    for i, ls in enumerate(labels):
        m = regex.match(ls.get(src, ""))
        if m is None:
            continue
        labels[i] = ls.set(dst, expand(repl, m))
        if dst == METRIC_NAME:
            dn[i] = False
    return merge_same_labelsets(Vector(labels, v.values, v.present, dn, None, v.histograms))


@function("label_join")
def func_label_join(call: FunctionCall) -> Vector:
    """``label_join(v instant-vector, dst string, separator string, src string, ...)``."""
    dst, sep, srcs = _join_args(call.node)
    v = call.args[0]
    assert isinstance(v, Vector)
    labels = [ls.set(dst, sep.join(ls.get(s, "") for s in srcs)) for ls in v.labels]
    dn = v.drop_name_mask().copy()
    if dst == METRIC_NAME:
        dn[:] = False
    return merge_same_labelsets(Vector(labels, v.values, v.present, dn, None, v.histograms))

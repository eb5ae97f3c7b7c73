"""OpenMetrics 1.0 type-specific rules, checked after a page has been parsed.

The rules (those prometheus_client's OpenMetrics parser enforces, plus the spec's "one sample
per series and timestamp"):

* families are contiguous and their sample names follow from the type: a counter ``x`` has only
  ``x_total``/``x_created``, a histogram ``x_bucket``/``x_count``/``x_sum``/``x_created``, a
  gaugehistogram ``x_bucket``/``x_gcount``/``x_gsum``, a summary ``x``/``x_count``/``x_sum``/
  ``x_created``, an info ``x_info``, others ``x``; any other name starts a new family, and two
  families may not claim the same sample name ("clashing name");
* UNIT is not allowed on info and stateset families;
* buckets carry a valid ``le`` (``+Inf`` spelt canonically), summary quantiles a ``quantile`` in
  [0, 1], stateset samples the label named after the family;
* within a family the samples of one label group (labels without ``le``/``quantile``/the state)
  are contiguous, either all have a timestamp or none, and timestamps do not go backwards;
* histograms: per group, ``le`` strictly ascending ending in ``+Inf``, cumulative counts
  non-decreasing, ``_count`` equal to the ``+Inf`` bucket, ``_sum``/``_gsum`` together with the
  count, no ``_sum`` with negative buckets, no negative ``_gsum`` with non-negative buckets;
* values: counter-like samples (``_total``, ``_count``, ``_sum``, ``_bucket``, ``_gcount``) are
  not NaN or negative (``_gsum``: not NaN), bucket and count values are integers, stateset values
  0 or 1, info values 1, quantile values not negative;
* exemplars only on counters' ``_total`` and (gauge)histograms' ``_bucket`` samples;
* one sample per series and timestamp: a series repeated in a page needs strictly increasing
  timestamps.

The work is split so that a scrape loop pays almost nothing: :func:`build_plan` walks the
page's families once (Python work per line) and depends only on the comment lines and on which
series each line holds, so the parser memoises it; :func:`check_values` then checks the
value- and timestamp-dependent rules with a few numpy operations per page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.exposition.comments import Comment
from promlab.exposition.page import NO_TIMESTAMP
from promlab.model import Labels

__all__ = ["OmPlan", "RuleError", "build_plan", "check_values"]

_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "histogram": ("_count", "_sum", "_bucket", "_created"),
    "gaugehistogram": ("_gcount", "_gsum", "_bucket"),
    "info": ("_info",),
}
_NOT_NAN = frozenset({"_total", "_sum", "_count", "_bucket", "_gcount", "_gsum"})
_NOT_NEG = frozenset({"_total", "_sum", "_count", "_bucket", "_gcount"})
_HIST_KIND = {"_bucket": 0, "_count": 1, "_gcount": 1, "_sum": 2, "_gsum": 3, "_created": 4}

_Idx = npt.NDArray[np.intp]


class RuleError(Exception):
    """A broken rule: ``index`` is the 0-based line index within the page."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


@dataclass(slots=True)
class OmPlan:
    """What :func:`check_values` checks, as line indices (all arrays are sorted)."""

    not_nan: _Idx
    not_neg: _Idx
    integer: _Idx
    zero_one: _Idx
    one: _Idx
    quantile: _Idx
    # Consecutive lines of one label group: (previous, next) and whether timestamps may go back.
    grp_prev: _Idx
    grp_next: _Idx
    grp_any_order: npt.NDArray[np.bool_]
    # Histogram lines (suffixed samples of histogram/gaugehistogram families), in line order.
    h_line: _Idx
    h_group: npt.NDArray[np.int64]
    h_kind: npt.NDArray[np.int8]
    h_le: npt.NDArray[np.float64]
    # Lines allowed to carry an exemplar.
    exemplar_ok: frozenset[int] = field(default_factory=frozenset)
    # Sample lines whose series occurs more than once in the page (in line order), if any.
    repeated: _Idx | None = None
    h_static: _HistSegments | None = None  # histogram segments of pages without timestamps


def _idx(xs: list[int]) -> _Idx:
    return np.array(xs, np.intp)


def _le_ok(raw: str | None) -> bool:
    """Valid ``le``: a float other than NaN, +Inf written as ``+Inf``."""
    if raw is None or raw == "NaN":
        return False
    try:
        v = float(raw)
    except ValueError:
        return False
    return not math.isnan(v) and (v != math.inf or raw == "+Inf")


def _quantile_ok(raw: str | None) -> bool:
    if raw is None:
        return False
    try:
        v = float(raw)
    except ValueError:
        return False
    return 0.0 <= v <= 1.0


@dataclass(slots=True)
class _Family:
    name: str
    line: int
    typ: str = "unknown"
    unit_line: int = -1
    samples: int = 0
    groups: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)
    group: int = -1
    group_line: int = -1


def build_plan(events: list[tuple[int, Comment]], refs: npt.NDArray[np.int64],
               series: list[Labels]) -> OmPlan:
    """Walk the families of a page (``refs``: series ref of every line, -1 for comments) and
    check the structural rules.

    Raises
    ------
    RuleError
        A rule that does not depend on sample values is broken.
    """
    sample_lines = np.flatnonzero(refs >= 0).tolist()
    sample_refs = refs[refs >= 0].tolist()
    order: list[tuple[int, int, Comment | None]] = [(i, -1, c) for i, c in events if c.kind]
    order.extend((i, r, None) for i, r in zip(sample_lines, sample_refs, strict=True))
    order.sort(key=lambda t: t[0])

    not_nan: list[int] = []
    not_neg: list[int] = []
    integer: list[int] = []
    zero_one: list[int] = []
    one: list[int] = []
    quantile: list[int] = []
    grp_prev: list[int] = []
    grp_next: list[int] = []
    grp_any: list[bool] = []
    h_line: list[int] = []
    h_group: list[int] = []
    h_kind: list[int] = []
    h_le: list[float] = []
    ex_ok: set[int] = set()
    seen_names: set[str] = set()
    n_groups = 0

    fam: _Family | None = None
    allowed: tuple[str, ...] = ()

    def finish(f: _Family | None) -> None:
        if f is None:
            return
        for suffix in {"", *_SUFFIXES.get(f.typ, ())}:
            if f.name + suffix in seen_names:
                raise RuleError(f.line, f"clashing name {f.name + suffix!r}: metric families must be "
                                        "contiguous and may not share sample names")
            seen_names.add(f.name + suffix)
        if f.unit_line >= 0 and f.typ in ("info", "stateset"):
            raise RuleError(f.unit_line, f"UNIT is not allowed for {f.typ} metric {f.name!r}")

    for i, ref, c in order:
        if c is not None:
            if fam is not None and c.name == fam.name:
                if fam.samples:
                    raise RuleError(i, f"{c.kind} line for metric {c.name!r} after its samples")
            else:
                finish(fam)
                fam = _Family(c.name, i)
                allowed = (c.name,)
            if c.kind == "TYPE":
                fam.typ = c.text
                allowed = tuple(fam.name + s for s in _SUFFIXES.get(c.text, ("",)))
            elif c.kind == "UNIT":
                fam.unit_line = i
            continue
        ls = series[ref]
        sname = ls.name
        if fam is None or sname not in allowed:
            finish(fam)
            fam = _Family(sname, i)
            allowed = (sname,)
        fam.samples += 1
        name, typ = fam.name, fam.typ
        suffix = sname[len(name):]
        drop = ""
        le: str | None = None
        if typ == "stateset":
            if name not in ls:
                raise RuleError(i, f"stateset sample without the label {name!r}")
            zero_one.append(i)
            drop = name
        elif typ == "info":
            one.append(i)
        elif typ == "summary" and not suffix:
            if not _quantile_ok(ls.get("quantile")):
                raise RuleError(i, "summary quantile sample without a valid 'quantile' label in [0, 1]")
            quantile.append(i)
            drop = "quantile"
        elif suffix == "_bucket":
            le = ls.get("le")
            if not _le_ok(le):
                raise RuleError(i, "histogram bucket without a valid 'le' label")
            drop = "le"
        if suffix in _NOT_NAN:
            not_nan.append(i)
            if suffix in _NOT_NEG:
                not_neg.append(i)
            if suffix in ("_bucket", "_count", "_gcount"):
                integer.append(i)
        if (typ == "counter" and suffix == "_total") or (
                suffix == "_bucket" and typ in ("histogram", "gaugehistogram")):
            ex_ok.add(i)
        # Label group: the labels without __name__ and without the per-sample label.
        if typ == "info":
            key: tuple[tuple[str, str], ...] = ()
        else:
            key = tuple(p for p in ls.pairs if p[0] != "__name__" and p[0] != drop)
        g = fam.groups.get(key)
        if g is None:
            g = fam.groups[key] = n_groups
            n_groups += 1
        elif g == fam.group:
            grp_prev.append(fam.group_line)
            grp_next.append(i)
            grp_any.append(typ == "info")
        else:
            raise RuleError(i, f"samples of one label group of metric {name!r} are not contiguous")
        fam.group = g
        fam.group_line = i
        if suffix and typ in ("histogram", "gaugehistogram"):
            h_line.append(i)
            h_group.append(g)
            h_kind.append(_HIST_KIND[suffix])
            h_le.append(float(le) if suffix == "_bucket" and le is not None else math.nan)
    finish(fam)

    repeated: _Idx | None = None
    if len(set(sample_refs)) < len(sample_refs):
        arr = np.array(sample_refs, np.int64)
        _, inv, counts = np.unique(arr, return_inverse=True, return_counts=True)
        repeated = np.array(sample_lines, np.intp)[counts[inv.reshape(-1)] > 1]
    return OmPlan(_idx(not_nan), _idx(not_neg), _idx(integer), _idx(zero_one), _idx(one),
                  _idx(quantile), _idx(grp_prev), _idx(grp_next), np.array(grp_any, bool),
                  _idx(h_line), np.array(h_group, np.int64), np.array(h_kind, np.int8),
                  np.array(h_le, np.float64), frozenset(ex_ok), repeated)


def _first(mask: npt.NDArray[np.bool_], lines: _Idx, reason: str,
           found: list[tuple[int, str]]) -> None:
    if mask.any():
        found.append((int(lines[int(np.argmax(mask))]), reason))


def check_values(plan: OmPlan, refs: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
                 ts: npt.NDArray[np.int64], exemplar_lines: list[int]) -> None:
    """Check the value- and timestamp-dependent rules (``values``/``ts``/``refs`` per line).

    Raises
    ------
    RuleError
        For the earliest offending line.
    """
    found: list[tuple[int, str]] = []
    for i in exemplar_lines:
        if i not in plan.exemplar_ok:
            found.append((i, "exemplars are only allowed on counter _total and histogram _bucket samples"))
            break
    if plan.not_nan.size:
        v = values[plan.not_nan]
        _first(np.isnan(v), plan.not_nan, "counter-like samples cannot be NaN", found)
    if plan.not_neg.size:
        _first(values[plan.not_neg] < 0, plan.not_neg, "counter-like samples cannot be negative", found)
    if plan.integer.size:
        v = values[plan.integer]
        with np.errstate(invalid="ignore"):
            _first(~(np.isfinite(v) & (v == np.floor(v))), plan.integer,
                   "bucket and count values must be integers", found)
    if plan.zero_one.size:
        v = values[plan.zero_one]
        _first((v != 0) & (v != 1), plan.zero_one, "stateset values must be 0 or 1", found)
    if plan.one.size:
        _first(values[plan.one] != 1, plan.one, "info values must be 1", found)
    if plan.quantile.size:
        _first(values[plan.quantile] < 0, plan.quantile, "quantile values cannot be negative", found)
    if plan.grp_next.size:
        tp, tn = ts[plan.grp_prev], ts[plan.grp_next]
        _first((tp == NO_TIMESTAMP) != (tn == NO_TIMESTAMP), plan.grp_next,
               "mix of samples with and without timestamps in one label group", found)
        _first((tn < tp) & ~plan.grp_any_order, plan.grp_next,
               "timestamps went backwards within a label group", found)
    if plan.h_line.size:
        _check_histograms(plan, values, ts, found)
    if plan.repeated is not None:
        lines = plan.repeated
        r = refs[lines]
        o = np.argsort(r, kind="stable")
        same = r[o][1:] == r[o][:-1]
        t = ts[lines][o]
        bad = same & ((t[1:] <= t[:-1]) | (t[:-1] == NO_TIMESTAMP))
        if bad.any():
            k = np.flatnonzero(bad)
            at = lines[o][1:][k]
            j = int(np.argmin(at))
            reason = ("duplicate sample for a series" if t[1:][k[j]] == t[:-1][k[j]]
                      or t[:-1][k[j]] == NO_TIMESTAMP else "timestamps went backwards within a series")
            found.append((int(at[j]), reason))
    if found:
        i, reason = min(found)
        raise RuleError(i, reason)


@dataclass(slots=True)
class _HistSegments:
    """How a page's histogram lines split into (label group, timestamp) segments, and the
    checks that depend only on that split."""

    seg: npt.NDArray[np.int64]
    nseg: int
    first_line: _Idx
    b: _Idx                           # positions (in the histogram lines) of buckets
    bs: npt.NDArray[np.int64]         # their segments
    same: npt.NDArray[np.bool_]       # bucket k+1 in the segment of bucket k
    last: npt.NDArray[np.bool_]       # bucket is its segment's last
    c: _Idx                           # positions of counts
    g: _Idx                           # positions of gsums
    found: list[tuple[int, str]]      # broken rules that need no values


def _segments(plan: OmPlan, t: npt.NDArray[np.int64]) -> _HistSegments:
    lines, grp, kind, le = plan.h_line, plan.h_group, plan.h_kind, plan.h_le
    start = np.ones(lines.shape[0], bool)
    start[1:] = (grp[1:] != grp[:-1]) | (t[1:] != t[:-1])
    seg = np.cumsum(start) - 1
    nseg = int(seg[-1]) + 1
    first_line = lines[start]
    b = np.flatnonzero(kind == 0)
    bs, ble = seg[b], le[b]
    same = bs[1:] == bs[:-1]
    last = np.ones(b.shape[0], bool)
    last[:-1] = ~same
    found: list[tuple[int, str]] = []
    _first(same & (ble[1:] <= ble[:-1]), lines[b][1:], "histogram buckets out of order (le must ascend)",
           found)
    last_le = np.full(nseg, np.nan)
    last_le[bs[last]] = ble[last]
    _first(last_le != np.inf, first_line, "histogram without a '+Inf' bucket", found)

    def has(k: int) -> npt.NDArray[np.bool_]:
        out = np.zeros(nseg, bool)
        out[seg[kind == k]] = True
        return out

    has_count, has_sum, has_gsum = has(1), has(2), has(3)
    _first((has_sum | has_gsum) & ~has_count, first_line, "histogram sum without a count", found)
    _first(has_count & ~(has_sum | has_gsum), first_line, "histogram count without a sum", found)
    neg_bucket = np.zeros(nseg, bool)
    neg_bucket[bs[ble < 0]] = True
    _first(neg_bucket & has_sum, first_line, "histogram _sum with negative buckets", found)
    g = np.flatnonzero(kind == 3)
    g = g[~neg_bucket[seg[g]]]  # gsums that must not be negative
    return _HistSegments(seg, nseg, first_line, b, bs, same, last, np.flatnonzero(kind == 1), g, found)


def _check_histograms(plan: OmPlan, values: npt.NDArray[np.float64], ts: npt.NDArray[np.int64],
                      found: list[tuple[int, str]]) -> None:
    """Per (label group, timestamp) segment of a histogram's lines: the bucket rules."""
    lines = plan.h_line
    t = ts[lines]
    if plan.h_static is not None and not (t != NO_TIMESTAMP).any():
        sg = plan.h_static
    else:
        sg = _segments(plan, t)
        if not (t != NO_TIMESTAMP).any():
            plan.h_static = sg
    found.extend(sg.found)
    v = values[lines]
    bv = v[sg.b]
    _first(sg.same & (bv[1:] < bv[:-1]), lines[sg.b][1:], "histogram bucket counts must not decrease",
           found)
    last_v = np.zeros(sg.nseg)
    last_v[sg.bs[sg.last]] = bv[sg.last]
    cs = sg.seg[sg.c]
    _first(v[sg.c] != last_v[cs], lines[sg.c], "histogram count does not match the +Inf bucket", found)
    _first(v[sg.g] < 0, lines[sg.g], "negative _gsum with non-negative buckets", found)

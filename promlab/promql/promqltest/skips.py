"""What the runner skips, and why: every skipped eval is counted under one of these reasons.

The engine now covers native histograms and the experimental features, so by default nothing
is skipped. What remains:

* optionally (``Runner(file_skips=True)``), every eval of the files that exist to test one
  experimental feature (:data:`FILE_SKIPS`);
* :func:`syntax_skip_reason`, detection by syntax (so a skip does not depend on whether our
  parser accepts the construct); its rule list is empty today;
* :func:`selects_any` and :func:`nhcb_series`, for skipping evals that select given series
  (not used by the runner today).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from promlab.model import Labels
from promlab.promql.parser.ast import Expr, VectorSelector, walk

__all__ = [
    "FILE_SKIPS",
    "HISTOGRAM_EXPECTED",
    "HISTOGRAM_SERIES",
    "START_TIMESTAMP_SERIES",
    "file_skip_reason",
    "nhcb_series",
    "selects_any",
    "syntax_skip_reason",
]

DURATION_EXPR = "experimental: duration expressions (and step()/range()/start()/end())"
FILL = "experimental: fill modifiers"
EXTENDED = "experimental: anchored/smoothed selectors"
INFO = "experimental: info() function"
TYPE_UNIT = "experimental: __type__/__unit__ labels"
START_TS = "experimental: start timestamps"
HISTOGRAM_EXPECTED = "native histograms: histogram in expected result"
HISTOGRAM_FUNCTION = "native histograms: native-only function or operator"
HISTOGRAM_SERIES = "native histograms: selects histogram series"
START_TIMESTAMP_SERIES = "experimental: start timestamps"
NATIVE_FILE = "native histograms"

FILE_SKIPS: dict[str, str] = {
    "duration_expression.test": DURATION_EXPR,
    "fill-modifier.test": FILL,
    "extended_vectors.test": EXTENDED,
    "info.test": INFO,
    "type_and_unit.test": TYPE_UNIT,
    "start_timestamps.test": START_TS,
    "native_histograms.test": NATIVE_FILE,
}

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
_SYNTAX_RULES: list[tuple[re.Pattern[str], str]] = []


def file_skip_reason(name: str) -> str | None:
    """The reason a whole file is skipped (each of its evals counted under it), if any."""
    reason = FILE_SKIPS.get(name)
    return f"{reason} (whole file)" if reason else None


def syntax_skip_reason(expr: str) -> str | None:
    """The experimental or native-histogram syntax ``expr`` uses that promlab lacks, as a skip
    reason (duration expressions, ``fill`` modifiers and type-and-unit labels are supported)."""
    bare = _STRING.sub('""', expr)
    for pattern, reason in _SYNTAX_RULES:
        if pattern.search(bare):
            return reason
    return None


def selects_any(expr: Expr, series: Sequence[Labels]) -> bool:
    """Whether some vector selector in ``expr`` matches one of ``series``."""
    if not series:
        return False
    for node in walk(expr):
        if isinstance(node, VectorSelector):
            ms = node.matchers
            for ls in series:
                if all(m.matches(ls.get(m.name, "")) for m in ms):
                    return True
    return False


_SUFFIXES = ("_bucket", "_count", "_sum")


def nhcb_series(labels: Iterable[Labels]) -> list[Labels]:
    """The native histograms ``load_with_nhcb`` builds from classic histogram series.

    Each ``X_bucket{le=...}`` (numeric, non-NaN ``le``), ``X_count`` and ``X_sum`` series yields
    the base series ``X{labels without le}``.
    """
    out: dict[Labels, None] = {}
    for ls in labels:
        name = ls.name
        for suffix in _SUFFIXES:
            if not name.endswith(suffix):
                continue
            if suffix == "_bucket":
                le = ls.get("le")
                try:
                    bound = float(le) if le is not None else float("nan")
                except ValueError:
                    break
                if bound != bound:
                    break
            base = ls.without(("le",)).set("__name__", name[: -len(suffix)])
            out[base] = None
            break
    return list(out)

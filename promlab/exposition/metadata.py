"""HELP/TYPE/UNIT lines of a page: collected into :class:`MetricMetadata` and checked.

Checks (line numbers are those of the offending metadata line):

* at most one HELP, TYPE and UNIT line per metric family;
* a TYPE line (OpenMetrics: any metadata line) may not follow samples of its family, where the
  family's sample names follow from its type (``x_bucket``/``x_sum``/``x_count`` for a histogram,
  ``x_total``/``x_created`` for an OpenMetrics counter, ...);
* OpenMetrics: ``# EOF`` only as the very last line.

A Prometheus scrape checks only the last of these (``strict=False``, the scraper's mode): its
parsers keep whatever metadata line came last and never look at the order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from promlab.errors import ExpositionError
from promlab.exposition.comments import Comment
from promlab.exposition.page import MetricMetadata

__all__ = ["build_metadata"]

# Sample-name suffixes of a family, by type (types not listed: the bare name only).
_TEXT_SUFFIXES = {
    "summary": ("", "_sum", "_count"),
    "histogram": ("_bucket", "_sum", "_count"),
}
_OM_SUFFIXES = {
    "counter": ("_total", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


def build_metadata(
    events: list[tuple[int, Comment]],
    refs: npt.NDArray[np.int64],
    ref_names: npt.NDArray[np.int64],
    name_ids: dict[str, int],
    om: bool,
    first_lineno: int,
    *,
    strict: bool = True,
) -> dict[str, MetricMetadata]:
    """Metadata by family name from the page's comment lines.

    Parameters
    ----------
    events
        ``(line index, comment)`` in line order.
    refs
        Series ref of every line of the page (-1 for lines without a sample).
    ref_names, name_ids
        The parser's metric-name id of each series ref, and name -> id.
    om
        OpenMetrics rules (all metadata must precede samples; ``# EOF`` handling).
    first_lineno
        Line number of line index 0, for errors.
    strict
        Check the order and uniqueness of metadata lines. ``False`` is a Prometheus scrape:
        only data after ``# EOF`` is an error and a repeated line replaces the earlier one.

    Raises
    ------
    ExpositionError
        Duplicate metadata or metadata after its samples (``strict``), or data after ``# EOF``.
    """
    if not events:
        return {}
    fields: dict[str, dict[str, str]] = {}
    checks: list[tuple[int, str, str]] = []
    for i, c in events:
        kind = c.kind
        if not kind:
            continue
        if kind == "EOF":
            raise ExpositionError("unexpected data after '# EOF'", lineno=first_lineno + i + 1)
        key = kind.lower()
        f = fields.setdefault(c.name, {})
        if key in f and strict:
            raise ExpositionError(f"second {kind} line for metric {c.name!r}",
                                  lineno=first_lineno + i)
        f[key] = c.text
        if om or kind == "TYPE":
            checks.append((i, kind, c.name))
    if strict:
        _check_order(checks, fields, refs, ref_names, name_ids, om, first_lineno)
    out = {}
    for name, f in fields.items():
        typ = f.get("type", "unknown")
        out[name] = MetricMetadata(name, "unknown" if typ == "untyped" else typ,
                                   f.get("help", ""), f.get("unit", ""))
    return out


def _check_order(checks: list[tuple[int, str, str]], fields: dict[str, dict[str, str]],
                 refs: npt.NDArray[np.int64], ref_names: npt.NDArray[np.int64],
                 name_ids: dict[str, int], om: bool, first_lineno: int) -> None:
    """Raise if a checked metadata line follows samples of its family."""
    if not checks:
        return
    lines_with = np.flatnonzero(refs >= 0)
    if not lines_with.size:
        return
    # First line of each metric name on this page, all names at once.
    first = np.full(len(name_ids), np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, ref_names[refs[lines_with]], lines_with)
    table = _OM_SUFFIXES if om else _TEXT_SUFFIXES
    for i, kind, name in checks:
        typ = fields[name].get("type", "unknown")
        for suffix in table.get(typ, ("",)):
            j = name_ids.get(name + suffix)
            if j is not None and first[j] < i:
                raise ExpositionError(
                    f"{kind} line for metric {name!r} after its samples (line "
                    f"{first_lineno + int(first[j])})", lineno=first_lineno + i)

"""How promtool prints what a rule unit test expected and got (Go's formatting).

* labels as Go's ``labels.Labels.String()``: ``{__name__="up", job="a"}`` (every label inside
  the braces, values quoted as ``strconv.Quote`` does);
* sample values as ``strconv.FormatFloat(v, 'E', -1, 64)``: ``1E+00``, ``6.5E+01``;
* evaluation times as ``model.Duration`` (``5m``, ``1d``) and rule-error times as Go's
  ``time.Duration`` (``1h0m0s``, ``2m59.999s``).

Examples
--------
>>> from promlab.model import Labels
>>> go_labels(Labels({"__name__": "up", "job": "a"}))
'{__name__="up", job="a"}'
>>> samples_text([(Labels({"__name__": "up"}), 60.0, ""), (Labels(), 0.0, "{{count:1 buckets:[1]}}")])
'{__name__="up"} 6E+01, {} {{count:1 buckets:[1]}}'
>>> go_duration(0), go_duration(60_000), go_duration(179_999), go_duration(86_400_000)
('0s', '1m0s', '2m59.999s', '24h0m0s')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from promlab.model import Labels
from promlab.rules.template.gofmt import format_float, quote

__all__ = [
    "AlertText",
    "ExprSample",
    "alerts_text",
    "go_duration",
    "go_labels",
    "go_quote",
    "go_read_error",
    "indent_lines",
    "samples_text",
]

#: One alert as the test compares it: its labels and annotations, each sorted by name.
AlertText = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
#: One sample as a promql_expr_test compares it: labels, float value and, for a native
#: histogram, its test expression (``""`` for a float sample). An expected sample's labels can
#: be a plain list of pairs, when they hold what no series has (a name twice, an empty value).
ExprSample = tuple[Labels | tuple[tuple[str, str], ...], float, str]


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``); a raw byte kept by unquoting (``surrogateescape``,
    e.g. a label value written ``"\\xff"``) is shown as Go shows invalid UTF-8: ``\\xff``."""
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return quote(text)
    parts = re.split("([\udc80-\udcff])", text)
    return '"' + "".join(f"\\x{ord(p) - 0xDC00:02x}" if len(p) == 1 and "\udc80" <= p <= "\udcff"
                         else quote(p)[1:-1] for p in parts) + '"'


def go_read_error(path: str, exc: OSError) -> str:
    """Go's ``os.ReadFile`` error text for ``path``: a directory opens and fails at the read
    (``read x: is a directory``), anything else at the open (``open x: no such file ...``)."""
    op = "read" if isinstance(exc, IsADirectoryError) else "open"
    return f"{op} {path}: {(exc.strerror or str(exc)).lower()}"


def go_labels(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``labels.Labels.String()``: sorted ``name="value"`` pairs in braces, ``, `` between."""
    pairs = sorted(labels.items() if isinstance(labels, Mapping) else labels, key=lambda p: p[0])
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in pairs) + "}"


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()`` of ``ms`` milliseconds."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(int(ms))
    if ms < 1000:
        return f"{sign}{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, frac = divmod(rest, 1000)
    sec = f"{s}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if h:
        return f"{sign}{h}h{m}m{sec}"
    if m:
        return f"{sign}{m}m{sec}"
    return f"{sign}{sec}"


def indent_lines(text: str, indent: str) -> str:
    """Prefix every line but the first with ``indent`` (promtool's ``indentLines``)."""
    return ("\n" + indent).join(text.split("\n"))


def samples_text(samples: Sequence[ExprSample]) -> str:
    """promtool's list of samples: ``{labels} 1E+00, ...`` (a native histogram as its test
    expression, see :func:`~promlab.rules.unittest.histograms.go_histogram_text`), or ``nil``
    when empty."""
    if not samples:
        return "nil"
    return ", ".join(f"{go_labels(ls)} {h or format_float(v, 'E', -1)}" for ls, v, h in samples)


def alerts_text(alerts: Sequence[AlertText]) -> str:
    """promtool's list of alerts: ``[]``, or numbered ``Labels:{...}`` / ``Annotations:{...}``."""
    if not alerts:
        return "[]"
    parts = []
    for i, (labels, annots) in enumerate(alerts):
        one = f"Labels:{go_labels(labels)}\nAnnotations:{go_labels(annots)}"
        parts.append(f"{i}:" + indent_lines("\n" + one, "  "))
    return "[\n" + ",\n".join(parts) + "\n]"

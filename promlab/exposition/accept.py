"""``Accept`` header negotiation for exposition answers, as Prometheus 2.42's ``expfmt.Negotiate``.

The header's clauses are ordered as its bundled goautoneg orders them (by ``q``, then concrete
types and subtypes before wildcards, with Go's insertion sort and that comparison as it is, which
is not a total order), and the first clause naming a format wins: the ``MetricFamily`` protobuf
media type with an ``encoding`` of ``delimited``, ``text`` or ``compact-text``, or ``text/plain``
without a version or with version ``0.0.4``. Anything else gives the text format 0.0.4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ACCEPT_FORMATS", "Accept", "AcceptFormat", "negotiate_accept", "parse_accept"]

AcceptFormat = Literal["text", "proto-delimited", "proto-text", "proto-compact-text"]

_PROTO = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;"

#: The ``Content-Type`` Prometheus answers each format with (``expfmt.Fmt*``).
ACCEPT_FORMATS: dict[AcceptFormat, str] = {
    "text": "text/plain; version=0.0.4; charset=utf-8",
    "proto-delimited": _PROTO + " encoding=delimited",
    "proto-text": _PROTO + " encoding=text",
    "proto-compact-text": _PROTO + " encoding=compact-text",
}

_PROTO_ENCODINGS: dict[str, AcceptFormat] = {
    "delimited": "proto-delimited", "text": "proto-text", "compact-text": "proto-compact-text",
}


@dataclass
class Accept:
    """One clause of an ``Accept`` header."""

    type: str
    subtype: str
    q: float = 1.0
    params: dict[str, str] = field(default_factory=dict)


def _parse_q(text: str) -> float:
    # Go's strconv.ParseFloat(s, 32) with its error ignored: no trimming, 0 when unparsable.
    try:
        return float(text) if text.strip() == text and "_" not in text else 0.0
    except ValueError:
        return 0.0


def _before(a: Accept, b: Accept) -> bool:
    # goautoneg's Less, which ignores b's q once a's is not larger.
    return a.q > b.q or (a.type != "*" and b.type == "*") or (a.subtype != "*" and b.subtype == "*")


def parse_accept(header: str) -> list[Accept]:
    """The clauses of ``header`` in the order negotiation tries them.

    Examples
    --------
    >>> [(a.type, a.subtype, a.q) for a in parse_accept("*/*;q=0.1, text/plain;q=0.5")]
    [('text', 'plain', 0.5), ('*', '*', 0.1)]
    """
    out: list[Accept] = []
    for part in header.split(","):
        media, *params = part.strip(" ").split(";")
        kind = media.split("/")
        clause = Accept(type=kind[0].strip(" "), subtype="")
        if len(kind) == 1 and clause.type == "*":
            clause.subtype = "*"
        elif len(kind) == 2:
            clause.subtype = kind[1].strip(" ")
        else:
            continue
        for param in params:
            key, eq, value = param.partition("=")
            if not eq:
                continue
            if key.strip(" ") == "q":
                clause.q = _parse_q(value)
            else:
                clause.params[key.strip(" ")] = value.strip(" ")
        out.append(clause)
    for i in range(1, len(out)):  # Go's insertion sort (sort.Sort for up to 12 clauses)
        j = i
        while j > 0 and _before(out[j], out[j - 1]):
            out[j - 1], out[j] = out[j], out[j - 1]
            j -= 1
    return out


def negotiate_accept(header: str | None) -> AcceptFormat:
    """The exposition format Prometheus 2.42 answers an ``Accept`` header with.

    Examples
    --------
    >>> negotiate_accept("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    ...                  "encoding=delimited")
    'proto-delimited'
    >>> negotiate_accept("application/openmetrics-text; version=1.0.0")
    'text'
    """
    for clause in parse_accept(header or ""):
        if (f"{clause.type}/{clause.subtype}" == "application/vnd.google.protobuf"
                and clause.params.get("proto") == "io.prometheus.client.MetricFamily"):
            encoding = _PROTO_ENCODINGS.get(clause.params.get("encoding", ""))
            if encoding is not None:
                return encoding
        if (clause.type, clause.subtype) == ("text", "plain") \
                and clause.params.get("version", "") in ("", "0.0.4"):
            return "text"
    return "text"

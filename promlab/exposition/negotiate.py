"""Content negotiation: which text format a scrape body (or import file) is in.

The scraper sends :data:`ACCEPT_HEADER` (Prometheus 3's default for the text protocols,
OpenMetrics preferred) and hands the response's ``Content-Type`` to :func:`negotiate`.
"""

from __future__ import annotations

from typing import Literal

from promlab.errors import ExpositionError

__all__ = ["ACCEPT_HEADER", "Format", "detect_format", "negotiate"]

Format = Literal["openmetrics", "text"]

#: The ``Accept`` header of a scrape: OpenMetrics 1.0.0 first, then OpenMetrics 0.0.1, then the
#: Prometheus text formats 1.0.0 and 0.0.4, then anything (as Prometheus 3 sends by default
#: when protobuf is not enabled; see content_negotiation.md).
ACCEPT_HEADER = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,"
    "*/*;q=0.1"
)

_OM_VERSIONS = {"", "0.0.1", "1.0.0"}
_TEXT_VERSIONS = {"", "0.0.4", "1.0.0"}


def negotiate(content_type: str | None, *, fallback: Format | None = "text") -> Format:
    """Map a response ``Content-Type`` to the parser to use.

    Parameters
    ----------
    content_type
        The header value, e.g. ``"application/openmetrics-text; version=1.0.0; charset=utf-8"``.
        The shorthands ``"openmetrics"`` and ``"text"`` are accepted as they are.
    fallback
        The format for a missing, unparsable or unsupported content type (Prometheus's
        ``fallback_scrape_protocol``). ``None`` makes such a content type an error, as
        Prometheus 3 does without a fallback.

    Raises
    ------
    ExpositionError
        The content type is not supported and there is no fallback.

    Examples
    --------
    >>> negotiate("application/openmetrics-text; version=1.0.0; charset=utf-8")
    'openmetrics'
    >>> negotiate("text/plain; version=0.0.4")
    'text'
    >>> negotiate(None)
    'text'
    """
    if content_type in ("openmetrics", "text"):
        return content_type  # type: ignore[return-value]
    if content_type:
        media, _, rest = content_type.partition(";")
        media = media.strip().lower()
        params = {}
        for part in rest.split(";"):
            key, _, value = part.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        version = params.get("version", "")
        if media == "application/openmetrics-text" and version in _OM_VERSIONS:
            return "openmetrics"
        if media == "text/plain" and version in _TEXT_VERSIONS:
            return "text"
    if fallback is None:
        raise ExpositionError(f"unsupported or missing Content-Type {content_type!r}")
    return fallback


def detect_format(head: bytes, tail: bytes) -> Format:
    """Guess the format of a file from its first and last bytes.

    OpenMetrics when the data ends with ``# EOF`` or the head shows OpenMetrics-only syntax
    (``# UNIT`` lines, OpenMetrics-only types, exemplars); the Prometheus text format otherwise.
    """
    if tail.rstrip(b"\n").endswith(b"# EOF"):
        return "openmetrics"
    for marker in (b"\n# UNIT ", b"\n# EOF", b" # {"):
        if marker in b"\n" + head:
            return "openmetrics"
    for typ in (b"info", b"stateset", b"gaugehistogram", b"unknown"):
        for line in head.split(b"\n"):
            if line.startswith(b"# TYPE ") and line.endswith(b" " + typ):
                return "openmetrics"
    return "text"

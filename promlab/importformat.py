"""Which exposition format a file to import is in, and whether it is complete: the check
:func:`promlab.importer.import_file` makes before it reads or stores anything."""

from __future__ import annotations

from promlab.errors import ExpositionError, ImportRejected
from promlab.exposition import Format, detect_format

__all__ = ["choose_format"]

#: Bytes read from a file's start to detect its format.
_PEEK = 1 << 16


def _sniff(path: str, size: int) -> tuple[bytes, bytes]:
    with open(path, "rb") as f:
        head = f.read(_PEEK)
        f.seek(max(size - 256, 0))
        tail = f.read()
    return head, tail


def _ends_with_eof(tail: bytes) -> bool:
    return tail.endswith((b"\n# EOF\n", b"\n# EOF")) or tail in (b"# EOF\n", b"# EOF")


def choose_format(path: str, size: int, format: str, require_eof: bool) -> tuple[Format, str]:
    """The file's format and why; raises when OpenMetrics lacks its ``# EOF``.

    Raises
    ------
    ExpositionError
        OpenMetrics (given, or detected from OpenMetrics-only syntax) without a final
        ``# EOF`` while ``require_eof``.
    """
    if size == 0:
        raise ExpositionError("empty file: nothing to import")
    head, tail = _sniff(path, size)
    eof = _ends_with_eof(tail)
    if format == "auto":
        fmt = detect_format(head, tail)
        if eof:
            reason = "detected: ends with '# EOF'"
        elif fmt == "openmetrics":
            reason = "detected: OpenMetrics-only syntax near the start"
        else:
            reason = "detected: no '# EOF' at the end and no OpenMetrics-only syntax"
    elif format == "openmetrics":
        fmt, reason = "openmetrics", "given"
    elif format == "text":
        fmt, reason = "text", "given"
    else:
        raise ImportRejected(f"unknown import format {format!r} (auto, openmetrics or text)")
    if fmt == "openmetrics" and require_eof and not eof:  # size > 0: checked above
        at = (b"\n" + head).find(b"\n# EOF\n")
        if at >= 0:  # an EOF line, then more: promtool's "unexpected data after # EOF"
            raise ExpositionError("unexpected data after '# EOF'", lineno=head.count(b"\n", 0, at) + 2)
        hint = " (a truncated file?)" if format == "auto" else ""
        lines = head.count(b"\n") if size <= len(head) else 0
        raise ExpositionError(f"data does not end with '# EOF'{hint}", lineno=lines)
    return fmt, reason

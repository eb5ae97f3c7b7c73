"""The form values of a ``multipart/form-data`` body, as Go's ``r.ParseMultipartForm`` gives
them to Prometheus's handlers (``curl -F query=up`` sends one).

Go reads such a body only when a handler first calls ``r.FormValue`` (``r.ParseForm`` leaves it
alone), whatever the method, and appends its values after the URL's (a form-urlencoded body's
come before them). A part is a value when its ``Content-Disposition`` is ``form-data`` with a
``name`` and no ``filename`` (those are files); a body that is not well-formed gives nothing,
as ``r.FormValue`` ignores the error.

Examples
--------
>>> body = (b'--b\\r\\nContent-Disposition: form-data; name="query"\\r\\n\\r\\nup\\r\\n'
...         b'--b\\r\\nContent-Disposition: form-data; name="f"; filename="x"\\r\\n\\r\\n1\\r\\n'
...         b'--b--\\r\\n')
>>> multipart_values("multipart/form-data; boundary=b", body)
[('query', 'up')]
"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser

from promlab.api.mediatype import parse_media_type

__all__ = ["is_multipart", "multipart_values"]

# Transfer encodings Go's multipart reader undoes (quoted-printable) or that leave the bytes
# as they are; any other (base64) is kept as sent.
_AS_SENT = frozenset({"", "7bit", "8bit", "binary", "quoted-printable"})


def is_multipart(content_type: str) -> bool:
    """Whether a ``Content-Type`` is ``multipart/form-data`` with a boundary and no error (Go
    reads no multipart body from another)."""
    media, params, error = parse_media_type(content_type)
    return media == "multipart/form-data" and not error and "boundary" in params


def multipart_values(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of the body's value parts, in order; [] when the body is not
    a well-formed multipart body with a boundary. Values that are not UTF-8 keep their bytes as
    surrogate escapes (as :func:`promlab.api.params.go_parse_query`)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart() or msg.defects or not msg.get_boundary():
        return []
    out: list[tuple[str, str]] = []
    for part in msg.get_payload():
        assert isinstance(part, Message)
        if part.get_content_disposition() != "form-data" or part.get_filename() is not None:
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        out.append((name, _payload(part)))
    return out


def _payload(part: Message) -> str:
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte in _AS_SENT:
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            return raw.decode("utf-8", "surrogateescape")
    text = part.get_payload(decode=False)
    return text if isinstance(text, str) else ""

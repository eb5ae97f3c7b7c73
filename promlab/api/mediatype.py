"""Go's ``mime.ParseMediaType``, as Go's ``r.ParseForm`` reads a request's ``Content-Type``.

Its error decides more than the body: a form POST whose type has a bad parameter
(``application/x-www-form-urlencoded;;``) still has its body read, but ``r.ParseForm`` answers
the error, which ``series``, ``delete_series`` and ``/federate`` refuse the request with
(``error parsing form values: mime: invalid media parameter``); a type Go cannot read at all
(``a/b,c/d``) reads no body. Multipart bodies are read only from a type without errors.

Examples
--------
>>> parse_media_type("Application/X-WWW-Form-URLEncoded; charset=utf-8")
('application/x-www-form-urlencoded', {'charset': 'utf-8'}, '')
>>> parse_media_type("application/x-www-form-urlencoded;;")
('application/x-www-form-urlencoded', {}, 'mime: invalid media parameter')
>>> parse_media_type("a/b,c/d")
('', {}, 'mime: unexpected content after media subtype')
"""

from __future__ import annotations

__all__ = ["parse_media_type"]

_TSPECIALS = frozenset(' ()<>@,;:\\"/[]?=')
_SPACE = " \t\n\r\v\f\x85\xa0"  # Go's unicode.IsSpace over Latin-1
INVALID_PARAMETER = "mime: invalid media parameter"


def _token(v: str) -> tuple[str, str]:
    i = 0
    while i < len(v) and 0x20 < ord(v[i]) < 0x7F and v[i] not in _TSPECIALS:
        i += 1
    return v[:i], v[i:]


def _value(v: str) -> tuple[str, str]:
    """Go's ``consumeValue``: a token or a quoted string; ("", v) when there is none."""
    if not v.startswith('"'):
        return _token(v)
    out: list[str] = []
    i = 1
    while i < len(v):
        c = v[i]
        if c == '"':
            return "".join(out), v[i + 1:]
        if c == "\\" and i + 1 < len(v) and v[i + 1] in _TSPECIALS:
            out.append(v[i + 1])
            i += 2
            continue
        if c in "\r\n":
            return "", v
        out.append(c)
        i += 1
    return "", v  # no closing quote


def _param(v: str) -> tuple[str, str, str]:
    """Go's ``consumeMediaParam``: (key, value, rest), or ("", "", v) when there is none."""
    rest = v.lstrip(_SPACE)
    if not rest.startswith(";"):
        return "", "", v
    key, rest = _token(rest[1:].lstrip(_SPACE))
    if not key:
        return "", "", v
    rest = rest.lstrip(_SPACE)
    if not rest.startswith("="):
        return "", "", v
    rest = rest[1:].lstrip(_SPACE)
    value, after = _value(rest)
    if not value and after == rest:
        return "", "", v
    return key.lower(), value, after


def _check_type(media: str) -> str:
    """Go's ``checkMediaTypeDisposition``: "" or its error."""
    kind, rest = _token(media)
    if not kind:
        return "mime: no media type"
    if not rest:
        return ""
    if not rest.startswith("/"):
        return "mime: expected slash after first token"
    sub, rest = _token(rest[1:])
    if not sub:
        return "mime: expected token after slash"
    return "mime: unexpected content after media subtype" if rest else ""


def parse_media_type(text: str) -> tuple[str, dict[str, str], str]:
    """(media type in lower case, parameters, error or ""), as Go returns them: the type is
    kept with an invalid parameter, dropped with the other errors. RFC 2231 continuations
    (``name*0``) are kept under their raw names."""
    base = text.split(";", 1)[0]
    media = base.strip(_SPACE).lower()
    err = _check_type(media)
    if err:
        return "", {}, err
    params: dict[str, str] = {}
    v = text[len(base):]
    while v:
        v = v.lstrip(_SPACE)
        if not v:
            break
        key, value, rest = _param(v)
        if not key:
            if rest.strip(_SPACE) == ";":  # trailing semicolons are no error
                break
            return media, {}, INVALID_PARAMETER
        if key in params:
            return "", {}, "mime: duplicate parameter name"
        params[key] = value
        v = rest
    return media, params, ""

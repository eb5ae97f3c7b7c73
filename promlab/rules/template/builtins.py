"""Go text/template's builtin functions (``eq``, ``lt``, ``index``, ``len``, ``html``, ...) with
Go's error messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from promlab.rules.template.gofmt import sprint
from promlab.rules.template.values import HTML, AnyMap, Sample, go_type

__all__ = ["CallError", "call", "eq", "eval_args", "html_escape", "index", "js_escape", "le", "length",
           "lt", "ne", "query_escape", "slice_"]


class CallError(Exception):
    """A function returned an error; the executor reports ``error calling NAME: <message>``."""


def query_escape(s: str) -> str:
    """``url.QueryEscape``."""
    return quote_plus(s, safe="")


def eval_args(args: tuple[Any, ...]) -> str:
    """The text ``html``, ``js`` and ``urlquery`` escape: one string as is, else the arguments
    printed as ``fmt.Sprint`` prints them, nil as ``<no value>``."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if a is None else a for a in args])


def html_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("\x00", "\ufffd"))


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def js_escape(s: str) -> str:
    out = []
    for c in s:
        if c in _JS:
            out.append(_JS[c])
        elif ord(c) < 0x20 or (ord(c) >= 0x80 and not c.isprintable()):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str | HTML):
        return "string"
    return None


def _plain(v: Any) -> Any:
    return v.text if isinstance(v, HTML) else v


def eq(_: object, a: Any, *others: Any) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    k1 = _kind(a)
    for b in others:
        k2 = _kind(b)
        if k1 != k2:
            if a is not None and b is not None:
                raise CallError("incompatible types for comparison")
            truth_ = False
        elif k1 is not None:
            truth_ = _plain(a) == _plain(b)
        elif a is None or b is None:
            truth_ = a is None and b is None
        elif isinstance(a, dict | list) or isinstance(b, dict | list):
            bad = b if isinstance(b, dict | list) else a
            raise CallError(f"non-comparable type {sprint([bad])}: {go_type(bad)}")
        else:
            truth_ = a is b or (type(a) is type(b) and a == b and not isinstance(a, Sample))
        if truth_:
            return True
    return False


def ne(ctx: object, a: Any, b: Any) -> bool:
    return not eq(ctx, a, b)


def lt(_: object, a: Any, b: Any) -> bool:
    k1, k2 = _kind(a), _kind(b)
    if k1 is None or k2 is None:
        raise CallError("invalid type for comparison")
    if k1 != k2:
        raise CallError("incompatible types for comparison")
    if k1 in ("bool", "complex"):
        raise CallError("invalid type for comparison")
    return bool(_plain(a) < _plain(b))


def le(ctx: object, a: Any, b: Any) -> bool:
    return lt(ctx, a, b) or eq(ctx, a, b)


def index(_: object, item: Any, *ixs: Any) -> Any:
    if item is None:
        raise CallError("index of untyped nil")
    v = item
    for ix in ixs:
        if isinstance(v, dict):
            if not isinstance(ix, str):
                raise CallError(f"value has type {go_type(ix)}; should be string")
            v = v.get(ix, None if isinstance(v, AnyMap) else "")
        elif isinstance(v, list | str):
            if not isinstance(ix, int) or isinstance(ix, bool):
                raise CallError(f"cannot index slice/array with type {go_type(ix)}")
            seq: Any = v.encode() if isinstance(v, str) else v
            if not 0 <= ix <= len(seq):
                raise CallError(f"index out of range: {ix}")
            if ix == len(seq):  # past Go's bounds check, reflect's own panic
                raise CallError(f"reflect: {'string' if isinstance(v, str) else 'slice'} index out of range")
            v = seq[ix]
        elif v is None:
            raise CallError("index of nil pointer")
        else:
            raise CallError(f"can't index item of type {go_type(v)}")
    return v


def _slice_index(ix: Any, size: int) -> int:
    if isinstance(ix, bool) or not isinstance(ix, int):
        if ix is None:
            raise CallError("cannot index slice/array with nil")
        raise CallError(f"cannot index slice/array with type {go_type(ix)}")
    if not 0 <= ix <= size:
        raise CallError(f"index out of range: {ix}")
    return ix


def slice_(_: object, item: Any, *ixs: Any) -> Any:
    if item is None:
        raise CallError("slice of untyped nil")
    if len(ixs) > 3:
        raise CallError(f"too many slice indexes: {len(ixs)}")
    if isinstance(item, str):
        if len(ixs) == 3:
            raise CallError("cannot 3-index slice a string")
    elif not isinstance(item, list):
        raise CallError(f"can't slice item of type {go_type(item)}")
    data: Any = item.encode() if isinstance(item, str) else item
    bounds = [0, len(data), len(data)]
    for i, ix in enumerate(ixs):
        bounds[i] = _slice_index(ix, len(data))  # a slice's capacity is taken as its length
    lo, hi, cap_ = bounds
    if lo > hi:
        raise CallError(f"invalid slice index: {lo} > {hi}")
    if len(ixs) == 3 and hi > cap_:
        raise CallError(f"invalid slice index: {hi} > {cap_}")
    if isinstance(item, str):
        return data[lo:hi].decode(errors="replace")
    return item[lo:hi]


def length(_: object, item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, dict | list):
        return len(item)
    if item is None:
        # Go's pipelines turn a nil interface into an invalid reflect.Value, whose type len asks.
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    raise CallError(f"len of type {go_type(item)}")


def call(_: object, fn: Any, *args: Any) -> Any:
    if fn is None:
        raise CallError("call of nil")
    raise CallError(f"non-function of type {go_type(fn)}")

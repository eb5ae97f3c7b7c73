"""What the Pushgateway makes of a push, beyond parsing: grouping keys, families, consistency.

The Pushgateway reads a push with Go's text-format parser (``expfmt.TextParser``), stores it as
``MetricFamily`` protobufs and checks every push by gathering all groups as its ``/metrics``
would (``prometheus.Gatherers``): a push that would make that fail is refused with 400 (and the
group's ``push_failure_time_seconds`` set). This module holds those rules over promlab's
sample lists:

- :func:`parse_grouping_key`: ``/metrics/job/<job>{/<label>/<value>}`` (label names checked
  before an empty job; the path's job wins over a ``job`` label in the path);
- :func:`family_of`: the family of a sample name as Go's text parser finds it (only ``_sum``
  and ``_count`` of a summary, ``_bucket`` too of a histogram, and only if that family is typed
  so: ``c_total`` under ``# TYPE c counter`` is an untyped family of its own);
- :func:`complete`: a summary or histogram as its protobuf holds it (``_sum``/``_count`` of 0
  and a ``+Inf`` bucket when not pushed, counts as unsigned integers, samples without a
  quantile or bucket bound dropped);
- :func:`check`: the gathering checks (one type per family across groups, no two metrics with
  the same labels, no ``quantile`` label on a summary, no ``x_count``/``x_sum``/``x_bucket``
  family beside a summary or histogram ``x``).
"""

from __future__ import annotations

import base64
import binascii
import math
import posixpath
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from promlab.api.params import route_path
from promlab.errors import PromlabError
from promlab.model import format_float_g

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["PushError", "check", "complete", "exposed", "family_of", "go_float_error",
           "go_float_text", "go_layout", "go_type", "gunzip", "has_timestamps", "identity",
           "implied_inf", "parse_grouping_key",
           "redirect", "text_error"]

Pairs = tuple[tuple[str, str], ...]
Samples = list[tuple[Pairs, float]]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")
#: The label a summary's or histogram's own samples carry their bound in.
BOUND_LABEL = {"histogram": "le", "summary": "quantile"}


class PushError(PromlabError, ValueError):
    """A push the Pushgateway would answer with 400."""


def decode_base64(value: str, *, utf8: bool = True) -> str:
    """A base64url value as the Pushgateway reads it: ``=`` padding optional, the URL-safe
    alphabet only (Go's ``RawURLEncoding``); ``utf8``: bytes that are no UTF-8 refused (else
    replaced)."""
    v = value.rstrip("=")
    if not _B64URL.match(v) or len(v) % 4 == 1:
        bad = next((i for i, c in enumerate(v) if not _B64URL.match(c)), len(v) - 1)
        raise PushError(f"illegal base64 data at input byte {bad}")
    try:
        raw = base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))
        return raw.decode("utf-8", "strict" if utf8 else "replace")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        # TODO(handle): the Pushgateway takes a non-UTF-8 value and then fails every gathering.
        raise PushError(f"invalid base64 encoding: {exc}") from exc


def parse_grouping_key(job: str, rest: str) -> Pairs:
    """The grouping key of ``/metrics/job/<job><rest>``, sorted by label name.

    Examples
    --------
    >>> parse_grouping_key("batch", "/path@base64/L3Zhci90bXA")
    (('job', 'batch'), ('path', '/var/tmp'))
    >>> parse_grouping_key("batch", "/")
    (('job', 'batch'),)
    """
    pairs: dict[str, str] = {}
    if len(rest) > 1:
        parts = rest[1:].split("/")
        if len(parts) % 2:
            raise PushError(f"odd number of components in label string {rest!r}")
        for name, value in zip(parts[0::2], parts[1::2], strict=True):
            trimmed = name.removesuffix("@base64")
            if not _LABEL_NAME.match(trimmed) or trimmed.startswith("__"):
                raise PushError(f"improper label name {trimmed!r}")
            if trimmed != name:
                try:
                    # (a job label is replaced by the path's job: any bytes do)
                    value = decode_base64(value, utf8=trimmed != "job")
                except PushError as exc:
                    raise PushError(f"invalid base64 encoding for label {trimmed}={value!r}: "
                                    f"{exc}") from exc
            pairs[trimmed] = value
    if not job:
        raise PushError("job name is required")
    pairs["job"] = job
    return tuple(sorted(pairs.items()))


_ESCAPE = re.compile(rb"\\(.?)")
_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def text_error(body: bytes) -> str | None:
    """What Go's text parser refuses in a body promlab's (Prometheus's) parser reads: a last
    line without its newline, and escapes other than ``\\`` and ``\n`` in HELP texts (and
    ``\"`` in label values). None if neither; the message is the Pushgateway's."""
    if body and not body.endswith(b"\n"):
        last = body.count(b"\n") + 1
        return f"line {last}: unexpected end of input stream"
    if b"\\" not in body:
        return None
    for lineno, line in enumerate(body.split(b"\n"), 1):
        if b"\\" not in line:
            continue
        if line.startswith(b"#"):
            words = line[1:].split(None, 2)
            texts = [words[2]] if len(words) == 3 and words[0] == b"HELP" else []
            allowed = b"\\n"
        else:
            texts = _QUOTED.findall(line)
            allowed = b'\\n"'
        for text in texts:
            for m in _ESCAPE.finditer(text):
                if not m[1] or m[1] not in allowed:
                    seq = (b"\\" + m[1]).decode("utf-8", "replace")
                    return f"line {lineno}: invalid escape sequence {seq!r}"
    return None


_LINE = re.compile(rb"^[ \t]*(#[^\n]*|[^{ \t\n]+)", re.M)
_GO_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Layout:
    """The families of a text-format body as Go's parser makes them: ``family`` maps each
    sample name to its family, ``types`` and ``helps`` are per family (no TYPE: untyped)."""

    family: dict[str, str]
    types: dict[str, str]
    helps: dict[str, str]


def go_layout(body: bytes) -> Layout:
    """The families of ``body`` as Go's text parser assigns them, line by line: a sample
    name is its own family unless it is the ``_sum``/``_count`` (``_bucket``) of a summary
    (histogram) typed before it. Raises :class:`PushError` where that parser refuses a second
    TYPE or HELP line for a family, or a TYPE line after the family's samples.
    """
    fams: dict[str, list[Any]] = {}  # family -> [type, help, has samples]
    out = Layout({}, {}, {})

    def resolve(name: str) -> str:
        if name in fams:
            return name
        base = family_of(name, {b: f[0] for b in _bases(name) if (f := fams.get(b))})
        if base == name:
            fams[name] = [None, None, False]
        return base

    lineno = 0
    pos = 0
    for m in _LINE.finditer(body):
        lineno += body.count(b"\n", pos, m.start())
        pos = m.start()
        token = m[1]
        if token[:1] != b"#":
            name = token.decode("utf-8", "replace")
            fam = out.family.get(name) or resolve(name)
            fams[fam][2] = True
            out.family.setdefault(name, fam)
            continue
        words = token[1:].split(None, 2)
        if len(words) < 2 or words[0] not in (b"HELP", b"TYPE"):
            continue
        fam = resolve(words[1].decode("utf-8", "replace"))
        f = fams[fam]
        if words[0] == b"TYPE":
            if f[0] is not None or f[2]:
                raise PushError(f"line {lineno + 1}: second TYPE line for metric name {fam!r}, "
                                f"or TYPE reported after samples")
            f[0] = words[2].strip().lower().decode("utf-8", "replace") if len(words) > 2 else ""
        else:
            if f[1] is not None:
                raise PushError(f"line {lineno + 1}: second HELP line for metric name {fam!r}")
            f[1] = _unescape_help(words[2] if len(words) > 2 else b"")
    for fam, (typ, help_, samples) in fams.items():
        if samples:
            out.types[fam] = typ if typ in _GO_TYPES else "untyped"
            if help_ is not None:
                out.helps[fam] = help_
    return out


def _apart(a: Pairs, b: Pairs) -> bool:
    """Whether grouping keys ``a`` and ``b`` give some label different values."""
    da = dict(a)
    return any(da.get(k, v) != v for k, v in b)


def _duplicate(name: str, ident: Pairs) -> PushError:
    return PushError(f"collected metric {name!r} {dict(ident)} was collected before with the "
                     f"same name and label values")


def _bases(name: str) -> list[str]:
    return [name[: -len(s)] for s in ("_sum", "_count", "_bucket") if name.endswith(s)]


def _unescape_help(text: bytes) -> str:
    return _ESCAPE.sub(lambda m: b"\n" if m[1] == b"n" else m[1], text.rstrip(b"\r")
                       ).decode("utf-8", "replace")


def go_float_error(label: str, value: str) -> str | None:
    """The Pushgateway's refusal of a bucket bound or quantile that is no number."""
    try:
        float(value)
    except ValueError:
        return f"expected float as value for {label!r} label, got {value!r}"
    return None


def go_type(typ: str) -> str:
    """A family type as the Pushgateway's protobufs name it (no type: untyped)."""
    return typ if typ in ("counter", "gauge", "histogram", "summary") else "untyped"


def go_float_text(text: str) -> str:
    """A bucket bound or quantile as the Pushgateway re-exposes it (Go's ``%g``: ``2.0`` is
    ``2``, ``1e6`` is ``1e+06``); text that is no number stays as it is."""
    try:
        return format_float_g(float(text))
    except ValueError:
        return text


def has_timestamps(page: Any) -> bool:
    from promlab.exposition.page import NO_TIMESTAMP

    return bool((page.timestamps_ms != NO_TIMESTAMP).any())


def gunzip(body: bytes) -> bytes:
    """A gzip body as the Pushgateway reads it: a bad header is refused, a stream that breaks
    off later (a cut trailer, corrupt data) gives what was decompressed before the break."""
    if len(body) < 10:
        raise PushError("unexpected EOF")
    if body[:3] != b"\x1f\x8b\x08":
        raise PushError("gzip: invalid header")
    d = zlib.decompressobj(31)
    out = []
    for i in range(0, len(body), 512):
        try:
            out.append(d.decompress(body[i:i + 512]))
        except zlib.error:
            break
    return b"".join(out)


def family_of(name: str, types: Mapping[str, str]) -> str:
    """The family a sample name belongs to, as Go's text parser assigns it.

    Examples
    --------
    >>> family_of("h_bucket", {"h": "histogram"}), family_of("c_total", {"c": "counter"})
    ('h', 'c_total')
    """
    if name in types:
        return name
    for suffix, kinds in (("_sum", ("summary", "histogram")), ("_count", ("summary", "histogram")),
                          ("_bucket", ("histogram",))):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in kinds:
            return name[: -len(suffix)]
    return name


def identity(pairs: Pairs, typ: str) -> Pairs:
    """The labels that make a sample's Go metric (``__name__`` and a summary's quantile or a
    histogram's bucket bound left out; ``instance=""`` added when missing, as the Pushgateway
    adds it)."""
    bound = BOUND_LABEL.get(typ)
    out = [(k, v) for k, v in pairs if k != "__name__" and k != bound]
    if not any(k == "instance" for k, _ in out):
        out.append(("instance", ""))
        out.sort()
    return tuple(out)


def _count(v: float) -> float:
    """A count as the protobuf holds it: an unsigned integer, converted as Go does on amd64
    (NaN, infinities and what does not fit are 2**63; a negative count wraps around)."""
    if not math.isfinite(v):
        return 2.0**63
    t = math.trunc(v)
    if 0 <= t < 2**64:
        return float(t)
    return float(t + 2**64) if -(2**63) <= t < 0 else 2.0**63


def complete(fam: str, typ: str, samples: Samples) -> Samples:
    """A summary's or histogram's samples as the Pushgateway re-exposes them (other types as
    they are): per metric the quantiles or buckets in order, then ``_sum`` and ``_count`` (the
    last pushed, else 0) and for a histogram a ``+Inf`` bucket holding the count if none was
    pushed."""
    bound = BOUND_LABEL.get(typ)
    if bound is None:
        return samples
    metrics: dict[Pairs, dict[str, object]] = {}
    for pairs, v in samples:
        labels = dict(pairs)
        name = labels.pop("__name__", fam)
        b = labels.pop(bound, None)
        m = metrics.setdefault(tuple(sorted(labels.items())), {"bounds": []})
        if name == fam + "_sum":
            m["sum"] = v
        elif name == fam + "_count":
            m["count"] = _count(v)
        elif b is not None and (name == fam + "_bucket" if typ == "histogram" else name == fam):
            bounds = m["bounds"]
            assert isinstance(bounds, list)
            bounds.append((b, _count(v) if typ == "histogram" else v))
    out: Samples = []
    for key, m in metrics.items():
        count = m.get("count", 0.0)
        assert isinstance(count, float)
        bounds = m["bounds"]
        assert isinstance(bounds, list)
        base = dict(key)
        for b, v in bounds:
            out.append((_sorted({**base, "__name__": fam + ("_bucket" if bound == "le" else ""),
                                 bound: b}), v))
        if typ == "histogram" and not any(b == "+Inf" for b, _ in bounds):
            out.append((_sorted({**base, "__name__": fam + "_bucket", "le": "+Inf"}), count))
        total = m.get("sum", 0.0)
        assert isinstance(total, float)
        out.append((_sorted({**base, "__name__": fam + "_sum"}), total))
        out.append((_sorted({**base, "__name__": fam + "_count"}), count))
    return out


def implied_inf(typ: str, samples: Samples) -> frozenset[Pairs]:
    """The metrics (:func:`identity`) of a pushed histogram family without a ``+Inf`` bucket:
    :func:`complete` adds one, the Pushgateway's protobuf holds none (its ``/api/v1/metrics``
    shows the pushed buckets only). Empty for other types."""
    if typ != "histogram":
        return frozenset()
    metrics = {identity(p, typ) for p, _ in samples}
    return frozenset(metrics - {identity(p, typ) for p, _ in samples
                                if ("le", "+Inf") in p and dict(p).get("__name__", "")
                                .endswith("_bucket")})


def _sorted(labels: dict[str, str]) -> Pairs:
    return tuple(sorted(labels.items()))


def check(fams: Mapping[str, tuple[str, Iterable[Pairs]]],
          others: Mapping[Pairs, Mapping[str, tuple[str, frozenset[Pairs]]]],
          key: Pairs) -> None:
    """Raise :class:`PushError` if a group holding ``fams`` (family -> type and the identity of
    each Go metric, see :func:`identity`; one per metric, so a repeat is a duplicate) under
    grouping key ``key`` cannot be gathered beside the ``others`` (grouping key -> family ->
    type and metric identities).

    Each group also has its ``push_time_seconds``: two grouping keys that differ only by an
    empty ``instance`` label make the same series, and then nothing can be gathered (every
    push fails until one of the groups is deleted).
    """
    times: dict[Pairs, Pairs] = {}
    for k in [*others, key]:
        ident = identity(k, "gauge")
        if ident in times:
            raise PushError(f"collected metric 'push_time_seconds' {dict(ident)} was collected "
                            f"before with the same name and label values")
        times[ident] = k
    # A family without metrics: its type meets the others' only when Go's random map order
    # gathers it first (left out here), its name meets theirs always (suffix collisions).
    seen: dict[str, str] = {}
    named: dict[str, str] = {}
    for other in others.values():
        for name, (typ, other_ids) in other.items():
            named.setdefault(name, typ)
            if other_ids:
                seen.setdefault(name, typ)
    _suffix_collisions({n: t for n, (t, _) in fams.items()}, named)
    fams = {name: (typ, ids) for name, (typ, ids) in fams.items() if ids}
    for name, (typ, ids) in fams.items():
        if seen.get(name, typ) != typ:
            raise PushError(f"collected metric {name!r} is not a {seen[name].upper()}")
        if typ == "summary" and "quantile" in dict(key):
            raise PushError(f"collected metric {name!r} must not have an explicit 'quantile' "
                            f"label")
        mine: set[Pairs] = set()
        for i in ids:
            if i in mine:
                raise _duplicate(name, i)
            mine.add(i)
        for other_key, other in others.items():
            o = other.get(name)
            # Every metric of a group carries its grouping labels: groups whose keys give one
            # label two values cannot share one.
            if o is not None and not _apart(key, other_key) and not o[1].isdisjoint(mine):
                raise _duplicate(name, next(iter(o[1] & mine)))
        seen[name] = typ


def _suffix_collisions(fams: Mapping[str, str], others: Mapping[str, str]) -> None:
    """Refuse an ``x_count``, ``x_sum`` (``x_bucket``) family beside a summary (histogram)
    ``x`` among ``fams`` and ``others`` (family -> type)."""
    seen = {**others, **fams}
    for name in fams:
        for other_name in (name[:-4] if name.endswith("_sum") else None,
                           name[:-6] if name.endswith("_count") else None,
                           name[:-7] if name.endswith("_bucket") else None):
            t = seen.get(other_name or "")
            if t == "histogram" or (t == "summary" and not name.endswith("_bucket")):
                raise PushError(f"collected metric named {name!r} collides with previously "
                                f"collected {t} named {other_name!r}")
        if seen[name] in ("summary", "histogram"):
            for suffix in ("_count", "_sum", "_bucket"):
                if name + suffix in seen and (suffix != "_bucket" or seen[name] == "histogram"):
                    raise PushError(f"collected histogram or summary named {name!r} collides "
                                    f"with previously collected metric named {name + suffix!r}")


class _ExactName(str):
    """A counter family's name that ``prometheus_client``'s text writer leaves as it is (it
    appends ``_total`` to every counter's name for the TYPE and HELP lines; the Pushgateway
    writes the pushed family's name, ``_total`` or not)."""

    __slots__ = ()

    def __add__(self, other: str) -> str:
        return str(self) if other == "_total" else str(self) + other


def exposed(groups: Iterable[Any], types: Mapping[str, str]) -> list[Any]:
    """The ``groups`` (:class:`~promlab.api.push.Group`) as ``prometheus_client`` metric
    families: each family once with the samples of every group (type and HELP of the first
    group that has it; ``types`` maps ours to prometheus_client's), then
    ``push_time_seconds`` and ``push_failure_time_seconds`` per group."""
    from prometheus_client.core import Metric

    families: dict[str, Metric] = {}

    def family(name: str, typ: str, doc: str) -> Metric:
        m = families.get(name)
        if m is None:
            m = families[name] = Metric(_ExactName(name) if typ == "counter" else name, doc, typ)
        return m

    for g in groups:
        for fam, samples in g.families.items():
            m = family(fam, types.get(g.types.get(fam, ""), "unknown"), g.helps.get(fam, ""))
            for pairs, v in samples:
                labels = dict(pairs)
                m.add_sample(labels.pop("__name__", fam), labels, v + 0.0)  # -0 as Go writes it
        key = dict(g.key)
        family("push_time_seconds", "gauge", "Last Unix time when changing this group in the "
               "Pushgateway succeeded.").add_sample("push_time_seconds", key, g.push_time)
        family("push_failure_time_seconds", "gauge", "Last Unix time when changing this group "
               "in the Pushgateway failed.").add_sample("push_failure_time_seconds", key,
                                                       g.failure_time)
    return list(families.values())


def redirect(request: Request) -> Response | None:
    """The Pushgateway's redirects: a path with ``//``, ``.`` or ``..`` to its cleaned form
    (301, Go's ServeMux), ``/metrics/job/`` without a job to no trailing slash (307, its
    router); None for other paths."""
    from starlette.responses import Response

    path = request.url.path
    clean = posixpath.normpath(path) + ("/" if path.endswith("/") else "")
    query = "?" + request.url.query if request.url.query else ""
    if clean != path:
        return Response(status_code=301,
                        headers={"location": quote(clean, safe="/@:$&+,;=") + query})
    if route_path(request.scope) in ("/metrics/job/", "/metrics/job@base64/"):
        return Response(status_code=307, headers={"location": path[:-1] + query})
    return None

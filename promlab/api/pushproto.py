"""Protobuf pushes: delimited ``io.prometheus.client.MetricFamily`` messages, as the
Pushgateway reads them (what Go's ``push`` package sends).

The Pushgateway reads the protobuf format only for exactly ``application/vnd.google.protobuf;
proto=io.prometheus.client.MetricFamily; encoding=delimited`` (anything else is read as text).
A later family of the same name replaces an earlier one; each ``Metric`` is one metric (its
labels kept as sent, empty values included); a summary or classic histogram is exposed with its
``_sum``, ``_count`` (and a ``+Inf`` bucket if none was sent). What its gathering would refuse
(a label name that is no label name or given twice, a metric whose value is not of its
family's type) is listed in :attr:`ProtoPush.problems` (the push is then refused as an
inconsistent one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from promlab.api.pushcheck import Pairs, PushError, go_float_text, identity

__all__ = ["ProtoPush", "is_delimited", "proto_rows", "read_delimited"]

#: MetricType enum values -> family type (a gauge histogram: TODO(handle), as a histogram).
_TYPES = {0: "counter", 1: "gauge", 2: "summary", 3: "untyped", 4: "histogram", 5: "histogram"}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def is_delimited(content_type: str | None) -> bool:
    """Whether the Pushgateway reads a body of this ``Content-Type`` as delimited protobuf."""
    if not content_type:
        return False
    media, *params = content_type.split(";")
    kv = {}
    for p in params:
        k, _, v = p.partition("=")
        kv[k.strip().lower()] = v.strip().strip('"')
    return (media.strip().lower() == "application/vnd.google.protobuf"
            and kv.get("encoding") == "delimited"
            and kv.get("proto") == "io.prometheus.client.MetricFamily")


@dataclass
class ProtoPush:
    """A protobuf push as rows: (family, labels with ``__name__``, value, metric index)."""

    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[str, dict[str, str], float, int]] = field(default_factory=list)
    timestamps: bool = False
    problems: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # families without metrics


def read_delimited(body: bytes) -> ProtoPush:
    """The families of a delimited protobuf ``body`` (ExpositionError if it does not decode)."""
    from promlab.exposition.protobuf import iter_delimited

    families = {mf.name: mf for mf in iter_delimited(body)}
    out = ProtoPush()
    n = 0
    for name, mf in families.items():
        typ = out.types[name] = _TYPES.get(mf.type, "untyped")
        if mf.HasField("help"):
            out.helps[name] = mf.help
        for m in mf.metric:
            n += 1
            out.timestamps |= m.HasField("timestamp_ms")
            labels: dict[str, str] = {}
            for lp in m.label:
                if lp.name in labels:
                    out.problems.append(f"collected metric {name!r} has two or more labels "
                                        f"with the same name: {lp.name}")
                elif not _LABEL_NAME.match(lp.name) or lp.name.startswith("__"):
                    out.problems.append(f"collected metric {name!r} has a label with an "
                                        f"invalid name: {lp.name}")
                labels[lp.name] = lp.value
            if typ == "summary" and "quantile" in labels:
                out.problems.append(f"collected metric {name!r} must not have an explicit "
                                    f"'quantile' label")
            if not m.HasField("counter" if typ == "counter" else typ):
                out.problems.append(f"collected metric {name!r} is not a {typ.upper()}")
                continue
            rows = out.rows
            if typ in ("counter", "gauge", "untyped"):
                rows.append((name, {**labels, "__name__": name},
                             getattr(m, typ).value, n))
            elif typ == "summary":
                for q in m.summary.quantile:
                    rows.append((name, {**labels, "__name__": name,
                                        "quantile": go_float_text(repr(q.quantile))}, q.value, n))
                rows.append((name, {**labels, "__name__": name + "_sum"}, m.summary.sample_sum, n))
                rows.append((name, {**labels, "__name__": name + "_count"},
                             float(m.summary.sample_count), n))
            else:
                h = m.histogram
                for b in h.bucket:
                    rows.append((name, {**labels, "__name__": name + "_bucket",
                                        "le": go_float_text(repr(b.upper_bound))},
                                 float(b.cumulative_count), n))
                rows.append((name, {**labels, "__name__": name + "_sum"}, h.sample_sum, n))
                rows.append((name, {**labels, "__name__": name + "_count"},
                             float(h.sample_count), n))
        if not mf.metric:  # an empty family still replaces the group's one of that name
            out.empty.append(name)
    return out


def proto_rows(key: Pairs, body: bytes) -> tuple[
        dict[str, str], dict[str, str], list[tuple[str, Pairs, Any, Pairs, float]], bool,
        list[str], list[str]]:
    """A delimited protobuf push to grouping key ``key`` as :func:`pushtext.text_rows` gives a
    text one, then the gathering problems found in it and its families without metrics."""
    from promlab.errors import ExpositionError

    try:
        p = read_delimited(body)
    except ExpositionError as exc:
        raise PushError(str(exc)) from exc
    grouping = dict(key)
    rows = []
    for fam, labels, v, n in p.rows:
        pairs = tuple(sorted({**labels, **grouping}.items()))
        rows.append((fam, pairs, n, identity(pairs, p.types[fam]), v))
    return p.types, p.helps, rows, p.timestamps, p.problems, p.empty

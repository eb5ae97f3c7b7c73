"""Text-format pushes read as the Pushgateway reads them: promlab's parser (non-strict) for the
line grammar, :func:`pushcheck.text_error` and :func:`pushcheck.go_layout` for what Go's text
parser refuses beyond it and for its families."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from promlab.api.pushcheck import (
    BOUND_LABEL,
    Layout,
    Pairs,
    PushError,
    go_float_error,
    go_float_text,
    go_layout,
    has_timestamps,
    identity,
    text_error,
)

__all__ = ["KeyParse", "Row", "TextRows", "text_rows"]

#: (family, stored label pairs, the Go metric of a summary's or histogram's sample (None: the
#: sample is a metric of its own), the metric's identity (:func:`pushcheck.identity`), value)
Row = tuple[str, Pairs, Any, Pairs, float]
#: types, HELP texts (by family), rows, whether a sample has a timestamp
TextRows = tuple[dict[str, str], dict[str, str], list[Row], bool]


@dataclass
class KeyParse:
    """What pushes to one key reuse: the parser (its caches make a repeated body cheap to read),
    the layout of the last body and, per series ref, its row head (valid while the layout
    holds)."""

    parser: Any
    layout: Layout = field(default_factory=lambda: Layout({}, {}, {}))
    body: bytes = b""  # the body ``layout`` was made of
    by_ref: list[tuple[str, Pairs, Any, Pairs] | None] = field(default_factory=list)


#: A sample line ending in a signed integer (its timestamp, when the parser refused it as one).
_SIGNED_LAST = re.compile(rb"^(.*[ \t])[+-]([0-9]+[ \t]*)$")


def _parse_signed(kp: KeyParse, body: bytes) -> tuple[Any, bytes]:
    """The page of ``body`` and the body read. Go's text parser (the Pushgateway's) takes a
    signed integer timestamp where a Prometheus scrape refuses it: such a sign is dropped and
    the body read again (a push with timestamps is refused later, as such, after the whole body
    parsed: a later line's error comes first, as in Go)."""
    from promlab.errors import ExpositionError

    for _ in range(body.count(b"\n") + 1):
        try:
            return kp.parser.parse(body, None), body
        except ExpositionError as exc:
            lines = body.split(b"\n")
            m = (_SIGNED_LAST.match(lines[exc.lineno - 1])
                 if "invalid timestamp" in exc.reason and 0 < exc.lineno <= len(lines) else None)
            if m is None:
                raise
            lines[exc.lineno - 1] = m[1] + m[2]
            body = b"\n".join(lines)
    return kp.parser.parse(body, None), body


def text_rows(kp: KeyParse, key: Pairs, body: bytes) -> TextRows:
    """The rows of a text-format push to grouping key ``key``; :class:`PushError` ("text
    format parsing error ...") if Go's text parser would refuse it."""
    from promlab.errors import ExpositionError

    try:
        page, body = _parse_signed(kp, body)
        err = text_error(body)
        if err is None and body != kp.body:
            layout = go_layout(body)
            if layout != kp.layout:
                kp.layout, kp.by_ref = layout, []
            kp.body = body
    except (ExpositionError, PushError) as exc:
        err = str(exc)
    if err is not None:
        raise PushError(f"text format parsing error in {err}")
    types, family = kp.layout.types, kp.layout.family
    by_ref = kp.by_ref
    by_ref.extend([None] * (len(page.series) - len(by_ref)))
    grouping = dict(key)
    rows: list[Row] = []
    for r, v in zip(page.refs.tolist(), page.values.tolist(), strict=True):
        known = by_ref[r]
        if known is None:
            labels = page.series[r].to_dict()
            fam = family.get(labels["__name__"], labels["__name__"])
            typ = types.get(fam, "untyped")
            bound = BOUND_LABEL.get(typ)
            if bound is not None and bound in labels:
                err = go_float_error(bound, labels[bound])
                if err is not None:
                    raise PushError(f"text format parsing error: {err}")
                labels[bound] = go_float_text(labels[bound])
            pairs = tuple(sorted({**labels, **grouping}.items()))
            # A summary's or histogram's samples of one label set are one Go metric.
            own = None if bound is None else tuple(sorted(
                (k, x) for k, x in labels.items() if k not in ("__name__", bound)))
            known = by_ref[r] = (fam, pairs, own, identity(pairs, typ))
        rows.append((*known, v))
    return types, kp.layout.helps, rows, has_timestamps(page)

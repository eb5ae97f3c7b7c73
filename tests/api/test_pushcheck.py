"""The Pushgateway's rules in promlab.api.pushcheck, without a Pushgateway (the differential
checks are in test_push_fuzz_pushgateway.py)."""

from __future__ import annotations

import gzip
import math

import pytest

from promlab.api.pushcheck import (
    PushError,
    check,
    complete,
    go_layout,
    gunzip,
    identity,
    parse_grouping_key,
    text_error,
)


@pytest.mark.parametrize(("job", "rest", "want"), [
    pytest.param("j", "/", (("job", "j"),), id="trailing-slash"),
    pytest.param("j", "/job/x", (("job", "j"),), id="path-job-wins"),
    pytest.param("j", "/job@base64/-_", (("job", "j"),), id="non-utf8-job-label"),
    pytest.param("j", "/e@base64/=", (("e", ""), ("job", "j")), id="empty-value"),
    pytest.param("j", "/p@base64/L3Zhci90bXA=", (("job", "j"), ("p", "/var/tmp")), id="padded"),
])
def test_grouping_key(job: str, rest: str, want: tuple[tuple[str, str], ...]) -> None:
    assert parse_grouping_key(job, rest) == want


@pytest.mark.parametrize(("job", "rest", "error"), [
    pytest.param("", "/a-b/x", "improper label name 'a-b'", id="label-before-job"),
    pytest.param("", "", "job name is required", id="no-job"),
    pytest.param("j", "/__x/y", "improper label name '__x'", id="reserved"),
    pytest.param("j", "/a/b/", "odd number", id="odd"),
    pytest.param("j", "/x@base64/a+b", "illegal base64", id="std-alphabet"),
    pytest.param("j", "/x@base64/YQ=Y", "illegal base64", id="padding-inside"),
    pytest.param("j", "/x@base64/YWJjZ", "illegal base64", id="one-char-too-many"),
    pytest.param("j", "/x@base64/_w", "invalid base64", id="non-utf8-value"),
])
def test_grouping_key_errors(job: str, rest: str, error: str) -> None:
    with pytest.raises(PushError, match=error):
        parse_grouping_key(job, rest)


@pytest.mark.parametrize(("body", "want"), [
    pytest.param(b"m 1", "line 1: unexpected end of input stream", id="no-newline"),
    pytest.param(b"m 1\n# c", "line 2: unexpected end", id="no-newline-comment"),
    pytest.param(b'm{a="\\x"} 1\n', "invalid escape sequence", id="label-escape"),
    pytest.param(b"# HELP m \\\"\n", "invalid escape sequence", id="help-escape"),
    pytest.param(b'# HELP m a\\\\b\\n\nm{a="\\"\\n\\\\"} 1\n', None, id="valid-escapes"),
    pytest.param(b"# comment \\x\n", None, id="plain-comment"),
    pytest.param(b"", None, id="empty"),
])
def test_text_error(body: bytes, want: str | None) -> None:
    got = text_error(body)
    assert (got is None) if want is None else (got is not None and want in got)


@pytest.mark.parametrize(("body", "family", "types"), [
    pytest.param(b"# TYPE c counter\nc_total 1\n", {"c_total": "c_total"}, {"c_total": "untyped"},
                 id="c_total-own-family"),
    pytest.param(b'# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
                 {"h_bucket": "h", "h_sum": "h", "h_count": "h"}, {"h": "histogram"}, id="histogram"),
    pytest.param(b"# TYPE s summary\ns_bucket 1\ns_count 1\n", {"s_bucket": "s_bucket", "s_count": "s"},
                 {"s_bucket": "untyped", "s": "summary"}, id="summary-has-no-buckets"),
    pytest.param(b"s_count 1\n# TYPE s summary\ns_count 2\n", {"s_count": "s_count"},
                 {"s_count": "untyped"}, id="suffix-seen-before-type"),
    pytest.param(b"# TYPE m GAUGE\nm 1\n", {"m": "m"}, {"m": "gauge"}, id="type-any-case"),
])
def test_go_layout(body: bytes, family: dict[str, str], types: dict[str, str]) -> None:
    layout = go_layout(body)
    assert (layout.family, layout.types) == (family, types)


@pytest.mark.parametrize("body", [
    pytest.param(b"m 1\n# TYPE m gauge\n", id="type-after-samples"),
    pytest.param(b"# TYPE s summary\n# TYPE s_sum gauge\n", id="second-type-via-suffix"),
    pytest.param(b"# HELP m a\n# HELP m b\n", id="second-help"),
])
def test_go_layout_refuses(body: bytes) -> None:
    with pytest.raises(PushError, match="second"):
        go_layout(body)


def _values(samples: list[tuple[tuple[tuple[str, str], ...], float]]) -> dict[str, float]:
    return {",".join(f"{k}={v}" for k, v in pairs): val for pairs, val in samples}


@pytest.mark.parametrize(("typ", "samples", "want"), [
    pytest.param("summary", [((("__name__", "s"), ("quantile", "0.5")), 1.0)],
                 {"__name__=s,quantile=0.5": 1.0, "__name__=s_sum": 0.0, "__name__=s_count": 0.0},
                 id="summary-sum-count"),
    pytest.param("summary", [((("__name__", "s"),), 1.0), ((("__name__", "s_count"),), 2.7)],
                 {"__name__=s_sum": 0.0, "__name__=s_count": 2.0}, id="no-quantile-dropped"),
    pytest.param("histogram", [((("__name__", "h_count"),), 3.0)],
                 {"__name__=h_bucket,le=+Inf": 3.0, "__name__=h_sum": 0.0, "__name__=h_count": 3.0},
                 id="inf-bucket"),
    pytest.param("histogram", [((("__name__", "h_bucket"), ("le", "1")), math.nan),
                               ((("__name__", "h_count"),), -1.0)],
                 {"__name__=h_bucket,le=1": 2.0**63, "__name__=h_bucket,le=+Inf": 2.0**64,
                  "__name__=h_sum": 0.0, "__name__=h_count": 2.0**64}, id="uint64-counts"),
    pytest.param("gauge", [((("__name__", "g"),), -1.0)], {"__name__=g": -1.0}, id="gauge-as-is"),
])
def test_complete(typ: str, samples: list[tuple[tuple[tuple[str, str], ...], float]],
                  want: dict[str, float]) -> None:
    assert _values(complete(samples[0][0][0][1].split("_")[0], typ, samples)) == want


def _ids(typ: str, *label_sets: dict[str, str]) -> tuple[str, list[tuple[tuple[str, str], ...]]]:
    return typ, [identity(tuple(sorted(ls.items())), typ) for ls in label_sets]


J1, J2 = (("job", "j1"),), (("job", "j2"),)


@pytest.mark.parametrize(("fams", "others", "key", "error"), [
    pytest.param({"m": _ids("counter", {"job": "j2"})},
                 {J1: {"m": ("gauge", frozenset(_ids("gauge", {"job": "j1"})[1]))}}, J2,
                 "is not a GAUGE", id="type-across-groups"),
    pytest.param({"m": _ids("gauge", {"job": "j1"}, {"job": "j1", "instance": ""})}, {}, J1,
                 "collected before", id="duplicate"),
    pytest.param({"m": _ids("gauge", {"job": "j1", "a": "x"})},
                 {J1: {"m": ("gauge", frozenset(_ids("gauge", {"job": "j1", "a": "x"})[1]))}},
                 (("a", "x"), ("job", "j1")), "collected before", id="duplicate-across-groups"),
    pytest.param({"s": _ids("summary", {"job": "j1"})}, {}, (("job", "j1"), ("quantile", "x")),
                 "quantile", id="quantile-grouping-label"),
    pytest.param({"s_count": _ids("untyped", {"job": "j2"})}, {J1: {"s": ("summary", frozenset())}},
                 J2, "collides", id="suffix-of-summary"),
    pytest.param({"h": _ids("histogram", {"job": "j2"})}, {J1: {"h_bucket": ("gauge", frozenset())}},
                 J2, "collides", id="histogram-beside-bucket"),
    pytest.param({}, {J1: {}}, (("instance", ""), ("job", "j1")), "push_time_seconds",
                 id="keys-differing-by-empty-instance"),
])
def test_check_refuses(fams: dict[str, tuple[str, list[tuple[tuple[str, str], ...]]]],
                       others: dict[tuple[tuple[str, str], ...], dict[str, tuple[str, frozenset[
                           tuple[tuple[str, str], ...]]]]],
                       key: tuple[tuple[str, str], ...], error: str) -> None:
    with pytest.raises(PushError, match=error):
        check(fams, others, key)


def test_check_accepts_summary_bucket_same_type_and_empty_family() -> None:
    check({"s_bucket": _ids("untyped", {"job": "j2"}), "m": _ids("gauge", {"job": "j2"}),
           "e": _ids("counter", {"job": "j2"})},
          {J1: {"s": ("summary", frozenset()), "e": ("gauge", frozenset()),
                "m": ("gauge", frozenset(_ids("gauge", {"job": "j1"})[1]))}},
          J2)


@pytest.mark.parametrize(("body", "want"), [
    pytest.param(gzip.compress(b"m 1\n"), b"m 1\n", id="whole"),
    pytest.param(gzip.compress(b"m 1\n")[:-5], b"m 1\n", id="cut-trailer"),
    pytest.param(b"\x1f\x8b\x08\x00garbage", b"", id="corrupt-stream"),
    pytest.param(b"m 1\nm 2\nm 3\n", "invalid header", id="not-gzip"),
    pytest.param(b"\x1f\x8b", "unexpected EOF", id="short"),
])
def test_gunzip(body: bytes, want: bytes | str) -> None:
    if isinstance(want, str):
        with pytest.raises(PushError, match=want):
            gunzip(body)
    else:
        assert gunzip(body) == want

import subprocess
import sys

import pytest

from promlab.model import Labels, Matcher, MatchType


def test_sorted_and_immutable_mapping():
    ls = Labels({"job": "api", "__name__": "up", "a": "1"})
    assert list(ls) == ["__name__", "a", "job"]
    assert ls["job"] == "api"
    assert ls.get("missing") is None
    assert ls.get("missing", "") == ""
    assert ls.name == "up"
    with pytest.raises(TypeError):
        ls["job"] = "x"  # type: ignore[index]


def test_empty_values_are_absent():
    assert Labels({"a": "", "b": "1"}) == Labels({"b": "1"})
    assert Labels({"b": "1"}).set("b", "") == Labels()


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="duplicate label name"):
        Labels([("a", "1"), ("a", "2")])


@pytest.mark.parametrize(
    ("labels", "text"),
    [
        pytest.param({"__name__": "up", "job": "a"}, 'up{job="a"}', id="name-and-label"),
        pytest.param({"__name__": "up"}, "up", id="name-only"),
        pytest.param({"job": 'a"b\\c\nd'}, '{job="a\\"b\\\\c\\nd"}', id="escapes"),
        pytest.param({"__name__": "my.metric", "a.b": "v"}, '{__name__="my.metric", "a.b"="v"}', id="utf8-names"),
        pytest.param({}, "{}", id="empty"),
    ],
)
def test_str(labels, text):
    assert str(Labels(labels)) == text


def test_hash_is_stable_across_processes():
    ls = Labels({"__name__": "http_requests_total", "job": "api", "instance": "a:1"})
    code = (
        "from promlab.model import Labels;"
        "print(Labels({'instance': 'a:1', 'job': 'api', '__name__': 'http_requests_total'}).hash)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == ls.hash
    assert Labels({"a": "b"}).hash != Labels({"a": "c"}).hash
    # The separator keeps ("ab","c") apart from ("a","bc").
    assert Labels({"ab": "c"}).hash != Labels({"a": "bc"}).hash


def test_set_keep_without():
    ls = Labels({"__name__": "x", "a": "1", "b": "2"})
    assert ls.without(["a"]) == Labels({"__name__": "x", "b": "2"})
    assert ls.keep(["a"]) == Labels({"a": "1"})
    assert ls.without_name() == Labels({"a": "1", "b": "2"})
    assert ls.set("c", "3")["c"] == "3"
    assert ls.update({"a": "", "d": "4"}) == Labels({"__name__": "x", "b": "2", "d": "4"})


def test_ordering_matches_prometheus_compare():
    a = Labels({"a": "1"})
    b = Labels({"a": "1", "b": "1"})
    c = Labels({"a": "2"})
    assert sorted([c, b, a]) == [a, b, c]


@pytest.mark.parametrize(
    ("op", "value", "candidate", "expected"),
    [
        pytest.param("=", "a", "a", True, id="eq"),
        pytest.param("=", "a", "b", False, id="eq-miss"),
        pytest.param("!=", "a", "b", True, id="neq"),
        pytest.param("=~", "a|b", "b", True, id="re-alt"),
        pytest.param("=~", "a", "ab", False, id="re-anchored-end"),
        pytest.param("=~", "b", "ab", False, id="re-anchored-start"),
        pytest.param("=~", ".*", "", True, id="re-empty"),
        pytest.param("=~", "a.b", "a\nb", True, id="re-dot-newline"),
        pytest.param("!~", "a.*", "abc", False, id="nre"),
        pytest.param("!~", "a.*", "bc", True, id="nre-miss"),
        pytest.param("=", "", "", True, id="eq-empty-means-absent"),
    ],
)
def test_matcher(op, value, candidate, expected):
    assert Matcher.parse_op(op, "l", value).matches(candidate) is expected


def test_matcher_on_labels_sees_absent_as_empty():
    m = Matcher(MatchType.EQUAL, "foo", "")
    assert m.matches_labels(Labels({"bar": "1"}))
    assert not m.matches_labels(Labels({"foo": "1"}))


def test_bad_regex():
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher(MatchType.REGEX, "a", "(")

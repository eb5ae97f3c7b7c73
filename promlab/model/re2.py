"""The one home for regular expressions from users: RE2 (Go's ``regexp``) semantics, linear time.

Every regex that comes from a query, a configuration, a rule or a template (label matchers,
relabeling, ``label_replace``, the template functions ``match`` and ``reReplaceAll``) is compiled
here, on Google's RE2 through the ``google-re2`` binding. RE2 runs in time linear in the text
(no backtracking: ``(a+)+b`` against a long value returns at once) and rejects what Go's
``regexp`` rejects (look-around, backreferences, possessive quantifiers, ...); the rejection is
a :class:`~promlab.errors.RegexError` carrying Go's message, as Prometheus prints it::

    error parsing regexp: invalid or unsupported Perl syntax: `(?=`

:func:`compile_anchored` compiles as Prometheus does for matchers, relabel rules and
``label_replace`` (``^(?s:pattern)$``); :func:`compile_regex` as Go's ``regexp.Compile`` (the
template functions). :func:`expand` is Go's ``Regexp.Expand``; :func:`replace_all` is Go's
``ReplaceAllString``. Anchored regexes that are a literal, a set of literals (``a|b|c``), a
prefix (``foo.*``), a suffix (``.*foo``), a substring (``.*foo.*``) or match-anything (``.*``)
are matched by plain string operations, as Prometheus's ``FastRegexMatcher`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from re2 import _re2  # the binding's compiled module: one call per match, no generator layer

from promlab.errors import RegexError

__all__ = [
    "Match",
    "Regex",
    "compile_anchored",
    "compile_regex",
    "expand",
    "go_regexp_error",
    "replace_all",
]

_OPTIONS = _re2.RE2.Options()
_OPTIONS.log_errors = False  # errors are raised, not printed to stderr by RE2's logger
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_NO_SPAN = (-1, -1)
_META = frozenset("\\.+*?()|[]{}^$")

# C++ RE2's error-code texts and Go's regexp/syntax texts for the same codes.
_GO_CODES = (
    ("missing )", "missing closing )"),
    ("missing ]", "missing closing ]"),
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("bad repetition operator", "invalid nested repetition operator"),
    ("no argument for repetition operator", "missing argument to repetition operator"),
    ("invalid repetition size", "invalid repeat count"),
    ("trailing \\", "trailing backslash at end of expression"),
    ("invalid named capture group", "invalid named capture"),
    ("pattern too large - compile failed", "expression too large"),
    ("pattern too large - reverse compile failed", "expression too large"),
    ("bad UTF-8", "invalid UTF-8"),
)


def _encode(text: str) -> bytes:
    # surrogatepass: a str decoded with surrogateescape still matches (as invalid UTF-8).
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _go_error(pattern: str, message: str) -> RegexError:
    code, _, arg = message.partition(": ")
    for cpp, go in _GO_CODES:
        if code == cpp:
            code = go
            break
    return RegexError(pattern, code, arg)


def _reject_go_only(pattern: str) -> None:
    """Raise for syntax C++ RE2 accepts but Go's ``regexp`` rejects (``\\C``: any byte)."""
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e == "Q":
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if e == "C":
                raise RegexError(pattern, "invalid escape sequence", "\\C")
            i += 2
        else:
            i += 1


def _reject_invalid_utf8(pattern: str, source: str) -> None:
    """Raise as Go's ``regexp`` does for bytes that are not UTF-8 (kept as surrogate escapes by
    PromQL's string unquoting): ``invalid UTF-8`` with the rest of the expression, each bad
    byte shown as U+FFFD (as Prometheus's JSON shows it)."""
    for k, c in enumerate(source):
        if "\udc80" <= c <= "\udcff":
            rest = "".join("\ufffd" if "\udc80" <= r <= "\udcff" else r for r in source[k:])
            raise RegexError(pattern, "invalid UTF-8", rest)


def _fast_path(pattern: str) -> Callable[[str], bool] | None:
    """A string operation equal to the anchored regex, for the common simple shapes."""
    if pattern in (".*", "(?s:.*)"):
        return lambda _text: True
    if pattern == ".+":
        return lambda text: text != ""
    core = pattern
    prefix = suffix = False
    if core.startswith(".*"):
        core, suffix = core[2:], True
    if core.endswith(".*") and not core.endswith("\\.*"):
        core, prefix = core[:-2], True
    if any(c in _META for c in core):
        if prefix or suffix or "|" not in core:
            return None
        alternatives = core.split("|")
        if any(c in _META for a in alternatives for c in a):
            return None
        choices = frozenset(alternatives)
        return choices.__contains__
    lit = core
    if prefix and suffix:
        return lambda text: lit in text
    if prefix:
        return lambda text: text.startswith(lit)
    if suffix:
        return lambda text: text.endswith(lit)
    return lit.__eq__


class Match:
    """One match: group texts as Python's ``re.Match`` gives them (``group(i)``, by name)."""

    __slots__ = ("_data", "_spans", "re", "string")

    def __init__(self, regex: Regex, string: str, data: bytes,
                 spans: list[tuple[int, int]]) -> None:
        self.re = regex
        self.string = string
        self._data = data
        self._spans = spans

    def group(self, group: int | str = 0) -> str | None:
        """The text of ``group`` (number or name), or None when it took no part in the match."""
        index = self.re.groupindex[group] if isinstance(group, str) else group
        start, end = self._spans[index]
        if start < 0:
            return None
        return _decode(self._data[start:end])

    def byte_span(self, group: int = 0) -> tuple[int, int]:
        """``(start, end)`` of ``group`` in the UTF-8 encoding of the text; ``(-1, -1)`` if absent."""
        return self._spans[group]


class Regex:
    """A compiled RE2 regular expression (build with :func:`compile_anchored` / :func:`compile_regex`).

    ``pattern`` is the expression as written, ``groups`` the number of capturing groups and
    ``groupindex`` the named ones.
    """

    __slots__ = ("_fast", "_program", "anchored", "groupindex", "groups", "pattern")

    def __init__(self, pattern: str, *, anchored: bool) -> None:
        _reject_go_only(pattern)
        source = f"^(?s:{pattern})$" if anchored else pattern
        _reject_invalid_utf8(pattern, source)
        program = _re2.RE2(_encode(source), _OPTIONS)
        if not program.ok():
            raise _go_error(pattern, _decode(program.error()))
        self.pattern = pattern
        self.anchored = anchored
        self._program = program
        self.groups = int(program.NumberOfCapturingGroups())
        self.groupindex: dict[str, int] = {
            _decode(name): int(i) for name, i in program.NamedCapturingGroups()}
        self._fast = _fast_path(pattern) if anchored else None

    def matches(self, text: str) -> bool:
        """Whether the regex matches ``text`` (all of it when anchored, anywhere otherwise)."""
        if self._fast is not None:
            return self._fast(text)
        data = _encode(text)
        return bool(self._program.Match(_UNANCHORED, data, 0, len(data))[0] != _NO_SPAN)

    def match(self, text: str) -> Match | None:
        """The leftmost match in ``text`` (for an anchored regex: of all of ``text``), or None."""
        data = _encode(text)
        spans = self._program.Match(_UNANCHORED, data, 0, len(data))
        if spans[0] == _NO_SPAN:
            return None
        return Match(self, text, data, [tuple(s) for s in spans])

    def _match_from(self, text: str, data: bytes, pos: int) -> Match | None:
        spans = self._program.Match(_UNANCHORED, data, pos, len(data))
        if spans[0] == _NO_SPAN:
            return None
        return Match(self, text, data, [tuple(s) for s in spans])

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r}, anchored={self.anchored})"


@lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> Regex:
    """Compile ``pattern`` as Prometheus compiles matcher, relabel and ``label_replace`` regexes:
    ``^(?s:pattern)$`` (fully anchored, ``.`` matching newlines).

    Raises
    ------
    RegexError
        When RE2 (Go's ``regexp``) rejects the pattern; the message is Go's.

    Examples
    --------
    >>> compile_anchored("api|web").matches("web")
    True
    >>> compile_anchored("(a+)+b").matches("a" * 10_000)
    False
    """
    return Regex(pattern, anchored=True)


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Regex:
    """Compile ``pattern`` as Go's ``regexp.Compile`` does: unanchored, flags as written.

    Raises
    ------
    RegexError
        When RE2 (Go's ``regexp``) rejects the pattern.
    """
    return Regex(pattern, anchored=False)


def go_regexp_error(pattern: str, err: RegexError) -> str:
    """Go's message for a rejected ``pattern`` (``error parsing regexp: missing closing ): ...``)."""
    del pattern  # the error carries it
    return str(err)


def _extract(template: str, i: int) -> tuple[str, int] | None:
    """Parse a reference after ``$`` at ``template[i:]``: (name, end index) or None if malformed."""
    brace = i < len(template) and template[i] == "{"
    j = i + 1 if brace else i
    k = j
    while k < len(template) and (template[k].isalnum() or template[k] == "_"):
        k += 1
    if k == j:
        return None
    name = template[j:k]
    if brace:
        if k >= len(template) or template[k] != "}":
            return None
        k += 1
    return name, k


def expand(template: str, match: Match) -> str:
    """Expand ``template`` against ``match`` with Go ``regexp.Expand`` semantics.

    Examples
    --------
    >>> m = compile_anchored("(a)(b)").match("ab")
    >>> expand("$2-${1}x-$1x-$$", m)
    'b-ax--$'
    """
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        d = template.find("$", i)
        if d < 0:
            out.append(template[i:])
            break
        out.append(template[i:d])
        i = d + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        ref = _extract(template, i)
        if ref is None:
            out.append("$")
            continue
        name, i = ref
        if name.isdigit() and name.isascii() and not (name[0] == "0" and len(name) > 1) and len(name) <= 8:
            num = int(name)
            if num <= match.re.groups:
                g = match.group(num)
                if g is not None:
                    out.append(g)
        elif name in match.re.groupindex:
            g = match.group(name)
            if g is not None:
                out.append(g)
    return "".join(out)


def _rune_width(data: bytes, pos: int) -> int:
    b = data[pos]
    width = 1 if b < 0xC0 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
    return width if pos + width <= len(data) else 1


def replace_all(regex: Regex, text: str, template: str) -> str:
    """Go's ``Regexp.ReplaceAllString``: every match replaced by ``template`` expanded against it.

    An empty match right after the previous match is not replaced, and the search always moves
    on by at least one character, as in Go.

    Examples
    --------
    >>> replace_all(compile_regex("a*"), "baaac", "<$0>")
    '<>b<aaa>c<>'
    """
    data = _encode(text)
    out: list[bytes] = []
    last_end = 0
    pos = 0
    n = len(data)
    while pos <= n:
        m = regex._match_from(text, data, pos)
        if m is None:
            break
        start, end = m.byte_span()
        out.append(data[last_end:start])
        if end > last_end or start == 0:
            out.append(_encode(expand(template, m)))
        last_end = end
        width = _rune_width(data, pos) if pos < n else 1
        pos = pos + width if pos + width > end else (pos + 1 if pos + 1 > end else end)
    out.append(data[last_end:])
    return _decode(b"".join(out))

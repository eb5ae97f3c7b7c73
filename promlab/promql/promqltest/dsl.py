"""Parsing PromQL test scripts (``*.test``) into commands.

Follows Prometheus's ``promql/promqltest/test.go`` (see ``DSL.md`` in the shared conformance
folder): lines are trimmed, ``#`` lines become blank, a blank line ends a ``load``/``eval`` block,
commands are ``clear``, ``load[_with_nhcb] <interval>`` and ``eval[_fail|_warn|_info|_ordered]
instant at <t> <expr>`` / ``eval[...] range from <a> to <b> step <s> <expr>`` with their body
lines. Expressions are *not* parsed here (the runner parses each once); syntax errors in the
script raise :class:`~promlab.errors.ParseError` positioned at the offending line of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promlab.errors import ParseError
from promlab.model import Labels
from promlab.model.time import parse_go_duration as parse_duration_ms
from promlab.promql.promqltest.series import (
    HistogramLiteral,
    Item,
    go_unquote,
    parse_go_number,
    parse_series_desc,
)

__all__ = [
    "ClearCmd",
    "Command",
    "EvalCmd",
    "Expect",
    "LoadCmd",
    "LoadedSeries",
    "Script",
    "parse_duration_ms",
    "parse_script",
]

_PAT_SPACE = re.compile(r"[\t ]+")
_PAT_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_PAT_EVAL_INSTANT = re.compile(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_PAT_EVAL_RANGE = re.compile(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
_PAT_EXPECT = re.compile(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
_RANGE_VECTOR_PREFIX = "expect range vector"
_PAT_EXPECT_RANGE = re.compile(r"^" + _RANGE_VECTOR_PREFIX + r"\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
_STRING_PREFIX = "expect string"


@dataclass(slots=True)
class LoadedSeries:
    """One series of a ``load`` block, with its samples expanded."""

    labels: Labels
    ts_ms: list[int]
    values: list[float]
    histograms: int = 0          # number of native-histogram samples
    has_start_timestamps: bool = False
    # The native-histogram samples: (timestamp, literal) pairs, in time order.
    hist_samples: list[tuple[int, HistogramLiteral]] = field(default_factory=list)
    # Start timestamps (ms) by sample timestamp, from the series' ``@st`` line.
    start_ts: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class LoadCmd:
    line: int                    # 1-based line of the ``load`` header
    interval_ms: int
    with_nhcb: bool
    series: dict[Labels, LoadedSeries] = field(default_factory=dict)


@dataclass(slots=True)
class ClearCmd:
    line: int


@dataclass(frozen=True, slots=True)
class Expect:
    """One ``expect <type> [msg|regex: text]`` line; no text means "match anything"."""

    message: str | None = None
    regex: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        if self.regex is not None:
            return self.regex.search(text) is not None
        if self.message is None:
            return True
        return self.message == text

    def describe(self) -> str:
        if self.regex is not None:
            return f"pattern {self.regex.pattern!r}"
        if self.message is None:
            return "anything"
        return f"message {self.message!r}"


@dataclass(slots=True)
class EvalCmd:
    """One ``eval`` command and its expectations (times in ms since the epoch)."""

    line: int
    expr: str
    is_range: bool
    start_ms: int
    end_ms: int = 0
    step_ms: int = 0
    eval_ms: int = 0             # instant evaluation time (``at``, or ``expect range vector``'s end)
    fail: bool = False           # legacy eval_fail
    warn: bool = False           # legacy eval_warn
    info: bool = False           # legacy eval_info
    ordered: bool = False        # legacy eval_ordered
    expected_fail_message: str = ""
    expected_fail_regexp: re.Pattern[str] | None = None
    expects: dict[str, list[Expect]] = field(default_factory=dict)
    # expected series: labels -> (position in the body, values); scalar when expect_scalar.
    expected: dict[Labels, tuple[int, list[Item]]] = field(default_factory=dict)
    expect_scalar: bool = False
    expected_scalar: float = 0.0
    expected_string: str | None = None
    range_vector: bool = False   # ``expect range vector`` given
    exclude_from_range_query: bool = False

    @property
    def is_fail(self) -> bool:
        return self.fail or bool(self.expects.get("fail"))

    @property
    def is_ordered(self) -> bool:
        return self.ordered or bool(self.expects.get("ordered"))

    @property
    def expects_histograms(self) -> bool:
        return any(isinstance(v, HistogramLiteral)
                   for _, vals in self.expected.values() for v in vals)


Command = LoadCmd | ClearCmd | EvalCmd


@dataclass(slots=True)
class Script:
    """A parsed script: its commands in file order."""

    name: str
    commands: list[Command]

    @property
    def evals(self) -> list[EvalCmd]:
        return [c for c in self.commands if isinstance(c, EvalCmd)]


class _Lines:
    """The trimmed lines of a file plus the offsets needed to position errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        raw = text.split("\n")
        self.offsets: list[int] = []
        off = 0
        for r in raw:
            self.offsets.append(off)
            off += len(r) + 1
        self.lines = ["" if s.strip().startswith("#") else s.strip() for s in raw]

    def error(self, i: int, message: str) -> ParseError:
        return ParseError(message, query=self.text, pos=self.offsets[i])


def _split_st_line(line: str) -> tuple[str, str] | None:
    """``metric{...}@st <items>`` → (metric, items) when ``line`` is a start-timestamp line."""
    m = re.search(r"[ \t]", line)
    if m is None or not line[: m.start()].endswith("@st"):
        return None
    return line[: m.start()][:-3], line[m.end():].strip()


def _parse_load(src: _Lines, i: int) -> tuple[int, LoadCmd]:
    m = _PAT_LOAD.match(src.lines[i])
    if m is None:
        raise src.error(i, "invalid load command. (load[_with_nhcb] <step:duration>)")
    try:
        gap = parse_duration_ms(m.group(2))
    except ValueError as exc:
        raise src.error(i, f"invalid step definition {m.group(2)!r}: {exc}") from None
    cmd = LoadCmd(line=i + 1, interval_ms=gap, with_nhcb=m.group(1) == "with_nhcb")
    pending_st: tuple[Labels, list[int | None], int] | None = None   # labels, offsets, line
    default_st = False                                  # a standalone "@st ..." line was seen
    lines = src.lines
    while i + 1 < len(lines):
        i += 1
        line = lines[i]
        if line == "":
            i -= 1
            break
        st = _split_st_line(line)
        if st is not None:
            if pending_st is not None:
                raise src.error(pending_st[2], "@st line has no following sample line")
            try:
                offsets = _st_offsets(st[1])
            except ValueError as exc:
                raise src.error(i, f"invalid @st sequence: {exc}") from None
            if st[0] == "":
                default_st = True  # a standalone default @st line: applies to later series
                continue
            st_labels = _parse_series_line(src, i, st[0] + " _")[0]
            pending_st = (st_labels, offsets, i)
            continue
        labels, vals = _parse_series_line(src, i, line)
        has_st = default_st
        if pending_st is not None:
            if pending_st[0] != labels:
                raise src.error(pending_st[2], "@st metric does not match the following sample line metric")
            if len(pending_st[1]) != len(vals):
                raise src.error(pending_st[2], f"@st line has {len(pending_st[1])} values but sample line has {len(vals)}")
            has_st = True
            st_offsets = pending_st[1]
            pending_st = None
        else:
            st_offsets = []
        cmd.series[labels] = _expand_load(labels, vals, gap, has_st)
        cmd.series[labels].start_ts = {k * gap: k * gap + o for k, o in enumerate(st_offsets)
                                       if o is not None and vals[k] is not None}
    if pending_st is not None:
        raise src.error(pending_st[2], "@st line has no following sample line")
    return i, cmd


_ST_DURATION = re.compile(r"^([+-]?)((?:[0-9]+(?:ms|[smhdwy]))+|0)")
_ST_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
             "w": 604_800_000, "y": 31_536_000_000}


def _st_duration(text: str) -> tuple[int, str]:
    """A signed duration at the start of ``text`` in ms, and the rest of ``text``."""
    m = _ST_DURATION.match(text)
    if m is None:
        raise ValueError(f"invalid duration in {text!r}")
    ms = sum(int(n) * _ST_UNITS[u] for n, u in re.findall(r"([0-9]+)(ms|[smhdwy])", m.group(2)))
    return (-ms if m.group(1) == "-" else ms), text[m.end():]


def _repeat(text: str) -> int:
    if not text.startswith("x") or not text[1:].isdigit():
        raise ValueError("expected 'x<count>'")
    return int(text[1:])


def _st_offsets(text: str) -> list[int | None]:
    """A start-timestamp sequence (offsets in ms from each sample's time; None = omitted):
    ``_``, ``_xN``, ``<dur>``, ``<dur>xN`` (N+1 equal), ``<dur>[+-]<dur>xN`` (N+1 stepping)."""
    out: list[int | None] = []
    for item in text.split():
        if item == "_":
            out.append(None)
            continue
        if item.startswith("_x"):
            n = _repeat(item[1:])
            if n == 0:
                raise ValueError(f"invalid ST item {item!r}: invalid repeat count")
            out.extend([None] * n)
            continue
        try:
            base, rest = _st_duration(item)
            if rest == "":
                out.append(base)
            elif rest[0] == "x":
                out.extend([base] * (_repeat(rest) + 1))
            elif rest[0] in "+-":
                delta, rest2 = _st_duration(rest[1:])
                delta = -delta if rest[0] == "-" else delta
                out.extend(base + k * delta for k in range(_repeat(rest2) + 1))
            else:
                raise ValueError(f"unexpected character {rest[0]!r} after duration")
        except ValueError as exc:
            raise ValueError(f"invalid ST item {item!r}: {exc}") from None
    return out


def _expand_load(labels: Labels, vals: list[Item], gap: int, has_st: bool) -> LoadedSeries:
    ts: list[int] = []
    fv: list[float] = []
    hs: list[tuple[int, HistogramLiteral]] = []
    for k, v in enumerate(vals):
        if v is None:
            continue
        if isinstance(v, HistogramLiteral):
            hs.append((k * gap, v))
            continue
        ts.append(k * gap)
        fv.append(v)
    return LoadedSeries(labels, ts, fv, len(hs), has_st, hs)


def _parse_series_line(src: _Lines, i: int, line: str) -> tuple[Labels, list[Item]]:
    try:
        return parse_series_desc(line)
    except ParseError as exc:
        raise src.error(i, f"{exc.reason} (in {line!r})") from None


def _parse_expect(src: _Lines, i: int, cmd: EvalCmd, line: str) -> None:
    m = _PAT_EXPECT.match(line.strip())
    if m is None:
        raise _eval_error(src, i, cmd, "invalid expect statement, must match `expect <type> <match_type>: <string>` format")
    kind, how, text = m.group(1), m.group(2), m.group(3)
    if how == "msg":
        exp = Expect(message=text.strip())
    elif how == "regex":
        pattern = text.strip()
        try:
            exp = Expect(regex=re.compile(pattern))
        except re.error:
            raise _eval_error(src, i, cmd, f"invalid regex {pattern} for {kind}") from None
    else:
        exp = Expect()
    cmd.expects.setdefault(kind, []).append(exp)
    ex = cmd.expects
    if ex.get("info") and ex.get("no_info"):
        raise _eval_error(src, i, cmd, "invalid expect lines, info and no_info cannot be used together")
    if ex.get("warn") and ex.get("no_warn"):
        raise _eval_error(src, i, cmd, "invalid expect lines, warn and no_warn cannot be used together")
    if len(ex.get("fail", ())) > 1:
        raise _eval_error(src, i, cmd, "invalid expect lines, multiple expect fail lines are not allowed")


def _eval_error(src: _Lines, i: int, cmd: EvalCmd, message: str) -> ParseError:
    return src.error(i, f"error in eval {cmd.expr} (line {cmd.line}): {message}")


def _durations(src: _Lines, i: int, a: str, b: str, step: str) -> tuple[int, int, int]:
    try:
        start = parse_duration_ms(a)
    except ValueError as exc:
        raise src.error(i, f"invalid start timestamp definition {a!r}: {exc}") from None
    try:
        end = parse_duration_ms(b)
    except ValueError as exc:
        raise src.error(i, f"invalid end timestamp definition {b!r}: {exc}") from None
    if end < start:
        raise src.error(i, f"invalid test definition, end timestamp ({b}) is before start timestamp ({a})")
    try:
        st = parse_duration_ms(step)
    except ValueError as exc:
        raise src.error(i, f"invalid step definition {step!r}: {exc}") from None
    return start, end, st


def _parse_eval(src: _Lines, i: int) -> tuple[int, EvalCmd]:
    header = src.lines[i]
    mi = _PAT_EVAL_INSTANT.match(header)
    mr = _PAT_EVAL_RANGE.match(header)
    if mi is None and mr is None:
        raise src.error(i, "invalid evaluation command. Must be either 'eval[_fail|_warn|_ordered] "
                           "instant [at <offset:duration>] <query>' or 'eval[_fail|_warn] range from "
                           "<from> to <to> step <step> <query>'")
    if mi is not None:
        mod, at, expr = mi.group(1), mi.group(2) or "", mi.group(3)
        try:
            t = parse_duration_ms(at)
        except ValueError as exc:
            raise src.error(i, f"error in eval {expr} (line {i + 1}): invalid timestamp definition {at!r}: {exc}") from None
        cmd = EvalCmd(line=i + 1, expr=expr, is_range=False, start_ms=t, eval_ms=t)
    else:
        assert mr is not None
        mod, expr = mr.group(1), mr.group(5)
        start, end, step = _durations(src, i, mr.group(2), mr.group(3), mr.group(4))
        cmd = EvalCmd(line=i + 1, expr=expr, is_range=True, start_ms=start, end_ms=end, step_ms=step)
    if mod:
        setattr(cmd, mod, True)

    lines = src.lines
    j = 1
    while i + 1 < len(lines):
        i += 1
        line = lines[i]
        if line == "":
            i -= 1
            break
        if cmd.fail and line.startswith("expected_fail_message"):
            cmd.expected_fail_message = line[len("expected_fail_message"):].strip()
            break
        if cmd.fail and line.startswith("expected_fail_regexp"):
            pattern = line[len("expected_fail_regexp"):].strip()
            try:
                cmd.expected_fail_regexp = re.compile(pattern)
            except re.error as exc:
                raise _eval_error(src, i, cmd, f"invalid regexp '{pattern}' for expected_fail_regexp: {exc}") from None
            break
        if line.startswith(_RANGE_VECTOR_PREFIX):
            m = _PAT_EXPECT_RANGE.match(line)
            if m is None:
                raise _eval_error(src, i, cmd, f"invalid range vector definition {line!r}")
            a, b, s = _durations(src, i, m.group(1), m.group(2), m.group(3))
            cmd.range_vector = True
            cmd.start_ms, cmd.end_ms, cmd.step_ms, cmd.eval_ms = a, b, s, b
            cmd.exclude_from_range_query = True
            j += 1
            continue
        if line.startswith(_STRING_PREFIX):
            rest = line[len(_STRING_PREFIX) + 1:] if line.startswith(_STRING_PREFIX + " ") else ""
            if not rest:
                raise _eval_error(src, i, cmd, "expected string literal not valid - a quoted string literal is required")
            try:
                if rest[0] == "'":
                    raise ValueError("single quotes")
                cmd.expected_string = go_unquote(rest)
            except ValueError:
                raise _eval_error(src, i, cmd, "expected string literal not valid - check that the string is correctly quoted") from None
            cmd.exclude_from_range_query = True
            j += 1
            continue
        if line.split(" ")[0] == "expect":
            _parse_expect(src, i, cmd, line)
            continue
        try:
            value = parse_go_number(line)
        except ValueError:
            pass
        else:
            cmd.expect_scalar = True
            cmd.expected_scalar = value
            break
        labels, vals = _parse_series_line(src, i, line)
        if len(vals) > 1 and not cmd.is_range and not cmd.range_vector:
            raise _eval_error(src, i, cmd, "expecting multiple values in instant evaluation not allowed. "
                                           "consider using 'expect range vector' directive to enable a "
                                           "range vector result for an instant query")
        cmd.expect_scalar = False
        cmd.expected[labels] = (j, vals)
        j += 1
    return i, cmd


def parse_script(text: str, name: str = "<script>") -> Script:
    """Parse the text of a ``.test`` file.

    Raises :class:`~promlab.errors.ParseError`; ``str(err)`` starts with ``<line>:<col>:``.

    Examples
    --------
    >>> s = parse_script("load 1m\\n  up 1 2\\n\\neval instant at 1m up\\n  up 2\\n")
    >>> [type(c).__name__ for c in s.commands]
    ['LoadCmd', 'EvalCmd']
    """
    src = _Lines(text)
    cmds: list[Command] = []
    lines = src.lines
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == "":
            i += 1
            continue
        word = _PAT_SPACE.split(line, maxsplit=1)[0].lower()
        cmd: Command
        if word == "clear":
            cmd = ClearCmd(line=i + 1)
        elif word.startswith("load"):
            i, cmd = _parse_load(src, i)
        elif word.startswith("eval"):
            i, cmd = _parse_eval(src, i)
        else:
            raise src.error(i, f"invalid command {line!r}")
        cmds.append(cmd)
        i += 1
    return Script(name, cmds)

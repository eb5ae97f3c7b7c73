"""The options of ``%promql``/``%%promql`` and the ``{name}`` interpolation of Python values.

PromQL is full of quotes and braces, so the line is not split like a shell command: only the
leading ``--option value`` words are options, everything after them (or after ``--``) is the
expression, verbatim. ``--help``/``-h`` asks for :data:`USAGE`; any other leading ``--word``
that is not an option is an error (``--`` first for an expression that starts with ``--``).

Examples
--------
>>> opts, expr = split_options('--range 1h --step 30s --wide rate(x{job="a"}[5m])')
>>> opts.range, opts.step, opts.wide, expr
('1h', '30s', True, 'rate(x{job="a"}[5m])')
>>> split_options("--time=now-1h up")[0].time
'now-1h'
>>> interpolate('rate(x{job="a"}[{win}])', {"win": "5m"})
'rate(x{job="a"}[5m])'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["USAGE", "PromqlOptions", "interpolate", "split_options"]

USAGE = """\
%promql [options] EXPR     evaluate EXPR (instant query now, or at --time)
%%promql [options]         the same, with EXPR in the cell body
  --time T                 instant query at T (RFC 3339, unix seconds, "now", "now-1h")
  --range D [--end E]      range query over the last D (until E, default now)
  --start S --end E        range query from S to E
  --step D                 resolution of a range query (default: a 250th of it, >= 1s)
  --wide                   one column per series
  --plot [--kind line|stacked|heatmap] [--tz UTC|local]
                           show a plot instead of the frame
  -o NAME, --output NAME   also store the frame in the variable NAME
  --                       end of options (for an expression starting with --)
{name} in EXPR is replaced by the Python variable name."""

_VALUED = {"--time": "time", "--range": "range", "--step": "step", "--start": "start",
           "--end": "end", "-o": "output", "--output": "output", "--kind": "kind",
           "--tz": "tz"}
_FLAGS = {"--wide": "wide", "--plot": "plot"}
#: A word that looks like an option, not like PromQL (``--1`` and ``-x`` are expressions).
_UNKNOWN = re.compile(r"--[A-Za-z][A-Za-z0-9_-]*(=.*)?")
_WORD = re.compile(r"""\s*("[^"]*"|'[^']*'|\S+)""")
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


@dataclass
class PromqlOptions:
    """Parsed ``%promql`` options (None: not given)."""

    time: str | None = None
    range: str | None = None
    step: str | None = None
    start: str | None = None
    end: str | None = None
    output: str | None = None
    kind: str = "line"
    tz: str = "UTC"
    wide: bool = False
    plot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``--help``/``-h`` was given: show :data:`USAGE`, evaluate nothing.
    help: bool = False

    def query_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`Session.evaluate` for these options.

        ``--range D`` means "the last D until ``--end`` (default now)"; ``--step`` defaults to
        a 250th of the range (at least 1 s), like a Prometheus graph.

        Raises
        ------
        ValueError
            When options contradict each other.
        """
        from promlab.model import parse_duration, parse_time

        if self.time is not None and (self.range or self.start or self.end):
            raise ValueError("--time excludes --range, --start and --end")
        if self.range is not None and self.start is not None:
            raise ValueError("--range excludes --start (use --end to move the window)")
        if self.range is None and self.start is None:
            if self.step is not None:
                raise ValueError("--step needs --range or --start/--end")
            return {"time": self.time}
        end_ms = parse_time(self.end if self.end is not None else "now")
        if self.range is not None:
            start_ms = end_ms - parse_duration(self.range)
        else:
            start_ms = parse_time(self.start)
        step: Any = self.step if self.step is not None else \
            f"{max(1000, (end_ms - start_ms) // 250) // 1000}s"
        return {"start": start_ms / 1000, "end": end_ms / 1000, "step": step}


def split_options(line: str) -> tuple[PromqlOptions, str]:
    """Leading options of ``line`` and the rest (the expression, stripped).

    Raises
    ------
    ValueError
        When an option lacks its value, or a leading ``--word`` is not an option.
    """
    opts = PromqlOptions()
    pos = 0
    while True:
        m = _WORD.match(line, pos)
        if m is None:
            break
        word = m.group(1)
        if word == "--":
            pos = m.end()
            break
        if word in _FLAGS:
            setattr(opts, _FLAGS[word], True)
            pos = m.end()
            continue
        if word in ("--help", "-h"):
            opts.help = True
            return opts, ""
        name, eq, given = word.partition("=")
        if eq and name in _VALUED and given:  # --step=30s
            setattr(opts, _VALUED[name], _unquote(given))
            pos = m.end()
            continue
        if word not in _VALUED:
            if _UNKNOWN.fullmatch(word):
                known = ", ".join(sorted({*_VALUED, *_FLAGS}))
                raise ValueError(f"unknown option {word} (options: {known}, --help; "
                                 "put -- before an expression that starts with --)")
            break
        v = _WORD.match(line, m.end())
        if v is None:
            raise ValueError(f"option {word} needs a value")
        setattr(opts, _VALUED[word], _unquote(v.group(1)))
        pos = v.end()
    return opts, line[pos:].strip()


def _unquote(value: str) -> str:
    if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1:
        return value[1:-1]
    return value


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` (and ``{name.attr}``) by the value of that Python variable.

    Braces holding anything but a dotted identifier (PromQL label matchers) are left alone, and
    so is a name the namespace does not have.
    """
    def repl(m: re.Match[str]) -> str:
        first, *rest = m.group(1).split(".")
        if first not in namespace:
            return m.group(0)
        value = namespace[first]
        for attr in rest:
            value = getattr(value, attr)
        return str(value)

    return _NAME.sub(repl, text)

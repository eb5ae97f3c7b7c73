"""Prometheus's Go-template dialect for the labels and annotations of rules.

:func:`expand_template` runs a template the way Prometheus expands an alert's labels and
annotations: the text is prefixed with
``{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}``
and executed with Go text/template's semantics and ``missingkey=zero`` (a missing label prints
as an empty string; a missing key of an ``args`` map prints ``<no value>``). Parse results are
cached by text, so expanding one template for many alerts parses it once.

Supported: text/template's whole action syntax (trim markers ``{{-``/``-}}``, comments,
``$x :=``/``$x =``, fields and map keys, parenthesized pipelines, ``|``, ``if``/``else if``,
``range`` over lists and maps (sorted keys) with ``$k, $v :=``, ``else``, ``break``,
``continue``, ``with``/``else with``, ``define``/``template``/``block``), Go's builtins
``and or not len index slice print printf println eq ne lt le gt ge html js urlquery call``,
and Prometheus's functions ``query first label value strvalue sortByLabel args safeHtml match
reReplaceAll title toUpper toLower graphLink tableLink stripPort stripDomain humanize
humanize1024 humanizeDuration humanizePercentage humanizeTimestamp toTime toDuration now
externalURL pathPrefix parseDuration urlQueryEscape`` (the last four beyond Prometheus 2.42's
set are from later releases). Error messages follow Go's text.

Not supported (differences from Go/Prometheus):

- Function values: ``call`` always fails (templates have no function-valued data anyway).
- ``printf``'s ``%p``; pointers nested in lists (a query result's samples) print as
  ``&{...}`` instead of a hex address (Go's addresses differ from run to run anyway).
- Methods of ``toTime``/``toDuration`` values are ``Format`` (Go's layouts,
  :mod:`.gotime`) and niladic ones (``Unix``, ``UnixMilli``, ``UnixNano``, ``Year``, ``Month``,
  ``Day``, ``Weekday``, ``Hour``, ``Minute``, ``Second``, ``Nanosecond``, ``YearDay``, ``UTC``,
  ``Location``, ``IsZero``, ``String``; ``Seconds``, ``Minutes``, ``Hours``, ``Milliseconds``,
  ...); ``Add``, ``Sub``, ``Truncate`` and other methods are not available, nor Go's view of a
  ``*time.Time``'s internals under ``%d``.
- Complex number constants; ``range`` over an integer (Go 1.22); native histogram values.
- ``title`` follows ``strings.Title`` (Prometheus 2.x), not the ``cases.Title`` of 3.x.
- Nested ``{{template}}`` calls stop at depth 1000 (Go: 100000).
- Regular expressions run on RE2 (Go's ``regexp`` semantics, linear time; :mod:`promlab.model.re2`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Protocol

from promlab.errors import TemplateError
from promlab.rules.template.exec import ExecFailure, State
from promlab.rules.template.funcs import FUNCS
from promlab.rules.template.parser import ParseFailure, Tree, parse
from promlab.rules.template.values import AlertData

__all__ = ["PREAMBLE", "QueryFunc", "QuerySample", "TemplateError", "check_template", "expand_template"]

PREAMBLE = ("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
            "{{$externalURL := .ExternalURL}}{{$value := .Value}}")
_FUNC_NAMES = frozenset(FUNCS)


class QuerySample(Protocol):
    """One element of what a :data:`QueryFunc` returns."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


QueryFunc = Callable[[str, int], Sequence[QuerySample]]
"""``query_func(expr, time_ms)``: the instant vector ``expr`` evaluates to at ``time_ms``."""


@lru_cache(maxsize=4096)
def _parse(full: str) -> Tree | ParseFailure:
    try:
        return parse(full, _FUNC_NAMES)
    except ParseFailure as e:
        return e


def _locate(full: str, pos: int) -> tuple[int, int, int]:
    """(line, Go's 0-based byte column, 1-based character column in the user's text) of ``pos``."""
    start = full.rfind("\n", 0, pos) + 1
    line = full.count("\n", 0, pos) + 1
    go_col = len(full[start:pos].encode())
    user_start = max(start, len(PREAMBLE))
    return line, go_col, max(pos - user_start, 0) + 1


def _tree(text: str, name: str) -> tuple[str, Tree]:
    full = PREAMBLE + text
    got = _parse(full)
    if isinstance(got, ParseFailure):
        line, _, col = _locate(full, got.pos)
        raise TemplateError(f"template: {name}:{line}: {got.message}", name=name, line=line, col=col,
                            reason=got.message, phase="parse")
    return full, got


def check_template(text: str, *, name: str) -> None:
    """Parse ``text`` as Prometheus parses a rule template, without running it.

    Raises
    ------
    TemplateError
        With Go's message (``template: NAME:LINE: ...``) and the line and column.

    Examples
    --------
    >>> check_template("{{ $labels.instance }} is down", name="__alert_X")
    >>> check_template("{{ humanise $value }}", name="__alert_X")
    Traceback (most recent call last):
    ...
    promlab.errors.TemplateError: template: __alert_X:1: function "humanise" not defined
    """
    _tree(text, name)


def expand_template(
    text: str,
    *,
    name: str,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    timestamp_ms: int = 0,
    query_func: QueryFunc | None = None,
) -> str:
    """Expand one label or annotation template of an alert as Prometheus does.

    Parameters
    ----------
    text
        The template.
    name
        The template's name in messages; Prometheus uses ``__alert_<alertname>``.
    labels, value
        The alert's labels (``$labels``, ``.Labels``) and sample value (``$value``).
    external_labels, external_url
        ``$externalLabels`` and ``$externalURL`` (also the ``externalURL``/``pathPrefix``
        functions).
    timestamp_ms
        The evaluation time: what ``query`` runs at and ``now`` returns.
    query_func
        Runs the ``query`` function's PromQL; without it, ``query`` fails.

    Raises
    ------
    TemplateError
        When the template does not parse or fails while running (Go's message).

    Examples
    --------
    >>> expand_template("{{ $labels.instance }} at {{ $value | humanize }}B/s",
    ...                 name="__alert_X", labels={"instance": "db1"}, value=1234567.0)
    'db1 at 1.235MB/s'
    """
    if "{{" not in text:
        return text
    full, tree = _tree(text, name)
    data = AlertData(dict(labels), dict(external_labels or {}), external_url, float(value))
    state = State(tree, name, query_func=query_func, timestamp_ms=timestamp_ms, external_url=external_url)
    try:
        return state.run(data)
    except ExecFailure as e:
        failure: ExecFailure | None = e
    except RecursionError:
        failure = state.depth_failure()
        if failure is None:
            raise TemplateError(f"template: {name}: exceeded maximum template depth", name=name) from None
    assert failure is not None
    if failure.node is None:
        raise TemplateError(f"template: {name}: {failure.message}", name=name, reason=failure.message)
    line, go_col, col = _locate(full, failure.node.pos)
    msg = f'template: {name}:{line}:{go_col}: executing "{failure.template}" at <{failure.node}>: {failure.message}'
    raise TemplateError(msg, name=name, line=line, col=col, reason=failure.message)

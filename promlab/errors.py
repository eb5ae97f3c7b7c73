"""Every exception promlab raises, and the one table from exception to API ``errorType``.

The tree, with the Prometheus HTTP API ``errorType`` of each branch::

    PromlabError                                                                    execution
    ├── BadData(ValueError)                an invalid parameter: time, step, range, bad_data
    │   │                                  duration, size, option, expression type
    │   ├── ConfigError                    bad prometheus.yml / rule file, with file and key path
    │   ├── ExpositionError                malformed scrape body or import file, with line number
    │   ├── ImportRejected                 a strict import would drop or duplicate samples
    │   ├── RegexError                     a regular expression RE2 (Go's regexp) rejects
    │   └── ParseError                     malformed PromQL, prints ``1:7: parse error: ...``
    ├── NotFound(LookupError)              no such metric, rule group, target       not_found
    ├── NotAcceptable                      cannot answer in the requested format    not_acceptable
    ├── Unavailable                        not ready (store opening, or closed)     unavailable
    ├── StorageError(OSError)              the store cannot be read or written      internal
    │   └── OutOfBoundsError               sample outside the accepted time window  bad_data
    ├── QueryError                         a query failed while evaluating          execution
    │   ├── FunctionNotImplemented(NotImplementedError)                             execution
    │   ├── TooManySamples                                                          execution
    │   ├── QueryTimeout(TimeoutError)                                              timeout
    │   └── QueryCanceled                                                           canceled
    ├── ScrapeError                        a single scrape failed (kept as the      unavailable
    │                                      target's last error)
    └── RuleError                          one rule evaluation failed (duplicate    execution
                                           labels, limit)

:func:`error_type` reads :data:`ERROR_TYPES` (the first class of the exception's MRO found
there), as Prometheus's ``returnAPIError`` does: canceled and timed-out queries and storage
failures have their own types, invalid parameters are ``bad_data`` (``invalidParamError``),
anything else a query raises is ``execution``. An exception that is not a :class:`PromlabError`
is a bug and reports ``internal`` (a builtin ``TimeoutError`` reports ``timeout``).
:data:`HTTP_STATUS` gives the status code Prometheus answers with for each type.

Problems that are not fatal (PromQL warnings and infos) are not exceptions: they are collected in
the result's annotations.
"""

from __future__ import annotations

__all__ = [
    "ERROR_TYPES",
    "HTTP_STATUS",
    "BadData",
    "ConfigError",
    "ExpositionError",
    "FunctionNotImplemented",
    "ImportRejected",
    "NotAcceptable",
    "NotFound",
    "OutOfBoundsError",
    "ParseError",
    "PromlabError",
    "QueryCanceled",
    "QueryError",
    "QueryTimeout",
    "RegexError",
    "RuleError",
    "ScrapeError",
    "StorageError",
    "TemplateError",
    "TooManySamples",
    "Unavailable",
    "error_type",
]


class PromlabError(Exception):
    """Root of all promlab errors."""


class BadData(PromlabError, ValueError):
    """A parameter is invalid: a step, a start after its end, a time, duration or size that does
    not parse, an expression of the wrong type for a range query, a bad option."""


class RegexError(BadData):
    """A regular expression that RE2 (Go's ``regexp``, as Prometheus uses) rejects.

    ``str(err)`` is Go's text: ``error parsing regexp: invalid or unsupported Perl syntax: `(?=```;
    ``pattern`` is the expression as written, ``code`` Go's error code text and ``arg`` the part
    of the expression it quotes.
    """

    def __init__(self, pattern: str, code: str, arg: str) -> None:
        self.pattern = pattern
        self.code = code
        self.arg = arg
        super().__init__(f"error parsing regexp: {code}: `{arg}`")


class NotFound(PromlabError, LookupError):
    """What was asked for does not exist (a metric's metadata, a rule group, a target)."""


class NotAcceptable(PromlabError):
    """The request asks for a response format promlab cannot produce."""


class Unavailable(PromlabError):
    """The service cannot answer yet or any more (a store still opening, or closed)."""


class ConfigError(BadData):
    """A configuration or rule file is invalid.

    ``file`` and ``path`` (the key path, e.g. ``scrape_configs[0].relabel_configs[1].action``)
    say where; the message says why.
    """

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.path = path
        self.line = line  # 1-based line in ``file`` when known
        self.reason = message
        where = ":".join(p for p in (file, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ExpositionError(BadData):
    """A scrape body or import file is malformed. ``lineno`` is 1-based (0 if unknown).

    ``read_as_sample``: the failing line is a sample Prometheus's parser reads and its scrape
    refuses afterwards (a repeated label name, say), so a scrape counts it as scraped.
    """

    def __init__(self, message: str, *, lineno: int = 0, line: str | None = None,
                 read_as_sample: bool = False) -> None:
        self.lineno = lineno
        self.line = line
        self.reason = message
        self.read_as_sample = read_as_sample
        text = f"line {lineno}: {message}" if lineno else message
        if line is not None:
            shown = line if len(line) <= 120 else line[:117] + "..."
            text += f": {shown!r}"
        super().__init__(text)


class ImportRejected(BadData):
    """An import refused as a whole (``strict``: samples would be dropped or duplicated, or
    bad options); nothing of it was stored."""


class StorageError(PromlabError, OSError):
    """The store could not be read or written."""


class OutOfBoundsError(StorageError):
    """A sample is older than the out-of-order window allows."""


def go_line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of character offset ``pos`` in ``text`` the way Prometheus
    prints positions: the column counts UTF-8 bytes (``a{x="ü"} +`` ends at column 12)."""
    before = text[:pos]
    line_start = before.rfind("\n") + 1
    try:
        width = len(before[line_start:].encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        width = len(before[line_start:].encode("utf-8", "replace"))
    return before.count("\n") + 1, width + 1


class ParseError(BadData):
    """Malformed PromQL.

    ``query`` is the text, ``pos`` the 0-based character offset of the problem (``end`` its end),
    and ``str(err)`` prints the way Prometheus does: ``1:7: parse error: unexpected <op:*>``.
    """

    def __init__(self, message: str, *, query: str = "", pos: int = 0, end: int | None = None) -> None:
        self.query = query
        self.pos = pos
        self.end = pos if end is None else end
        self.reason = message
        line, col = go_line_col(query, pos)
        super().__init__(f"{line}:{col}: parse error: {message}")

    def line_col(self) -> tuple[int, int]:
        """1-based line and column (in characters, for display) of ``pos`` in ``query``; the
        message counts the column in UTF-8 bytes, as Prometheus does (:func:`go_line_col`)."""
        before = self.query[: self.pos]
        line = before.count("\n") + 1
        col = self.pos - (before.rfind("\n") + 1) + 1
        return line, col


class QueryError(PromlabError):
    """A query failed during evaluation (the Prometheus API's ``execution`` error type)."""


class FunctionNotImplemented(QueryError, NotImplementedError):
    """A backend has no implementation for a function or operation."""


class TooManySamples(QueryError):
    """The query would load more samples than the engine's ``max_samples``."""

    def __init__(self, message: str = "query processing would load too many samples into memory in query execution") -> None:
        super().__init__(message)


class QueryTimeout(QueryError, TimeoutError):
    """The query ran longer than its timeout."""

    def __init__(self, message: str = "query timed out in query execution") -> None:
        super().__init__(message)


class QueryCanceled(QueryError):
    """The query was canceled."""

    def __init__(self, message: str = "query was canceled in query execution") -> None:
        super().__init__(message)


class ScrapeError(PromlabError):
    """One scrape failed; the message is what the target's ``lastError`` shows."""


class RuleError(PromlabError):
    """One evaluation of one rule failed; the rule's group and the other rules go on.

    ``rule`` names the rule. Raised for results Prometheus rejects: several alerts or series
    with one label set, or more than the group's ``limit``.
    """

    def __init__(self, message: str, *, rule: str = "") -> None:
        self.rule = rule
        self.reason = message
        super().__init__(message)


class TemplateError(PromlabError, ValueError):
    """A rule's label or annotation template failed to parse or to execute.

    ``str(err)`` is Go's text/template message, as Prometheus reports it:
    ``template: __alert_X:1:115: executing "__alert_X" at <humanize "a">: error calling humanize: ...``
    (parse errors: ``template: __alert_X:1: function "foo" not defined``). As in Prometheus, the
    column printed there is a 0-based byte offset that counts the variable preamble Prometheus
    puts in front of line 1. ``line`` and ``col`` (1-based, in characters) locate the problem in
    the template text itself; ``reason`` is the message without the location; ``phase`` is
    ``"parse"`` or ``"execute"``; :attr:`prometheus_message` is the text Prometheus puts inside
    ``<error expanding template: ...>``.
    """

    def __init__(self, message: str, *, name: str, line: int = 0, col: int = 0, reason: str = "",
                 phase: str = "execute") -> None:
        self.name = name
        self.line = line
        self.col = col
        self.reason = reason or message
        self.phase = phase
        super().__init__(message)

    @property
    def prometheus_message(self) -> str:
        """``error executing template NAME: <message>`` (or ``error parsing template ...``)."""
        verb = "parsing" if self.phase == "parse" else "executing"
        return f"error {verb} template {self.name}: {self}"


ERROR_TYPES: dict[type[BaseException], str] = {
    PromlabError: "execution",
    BadData: "bad_data",
    NotFound: "not_found",
    NotAcceptable: "not_acceptable",
    Unavailable: "unavailable",
    StorageError: "internal",
    OutOfBoundsError: "bad_data",
    QueryError: "execution",
    QueryTimeout: "timeout",
    QueryCanceled: "canceled",
    ScrapeError: "unavailable",
    RuleError: "execution",
    TimeoutError: "timeout",
}
"""Exception class to Prometheus API ``errorType``; :func:`error_type` looks classes up by MRO."""

HTTP_STATUS: dict[str, int] = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 499,  # nginx's "client closed request", as Prometheus answers
    "timeout": 503,
    "internal": 500,
    "unavailable": 503,
    "not_found": 404,
    "not_acceptable": 406,
}
"""The HTTP status Prometheus's API answers with for each ``errorType``."""


def error_type(exc: BaseException) -> str:
    """The Prometheus API ``errorType`` of ``exc``.

    Examples
    --------
    >>> error_type(ParseError("unexpected end of input", query="rate("))
    'bad_data'
    >>> error_type(QueryTimeout()), error_type(TooManySamples()), error_type(StorageError("disk"))
    ('timeout', 'execution', 'internal')
    >>> error_type(ZeroDivisionError())
    'internal'
    """
    for cls in type(exc).__mro__:
        found = ERROR_TYPES.get(cls)
        if found is not None:
            return found
    return "internal"

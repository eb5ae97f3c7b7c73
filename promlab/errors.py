"""Every exception promlab raises.

The tree::

    PromlabError
    ├── ConfigError(ValueError)            bad prometheus.yml / rule file / option, with file and key path
    ├── ExpositionError(ValueError)        malformed scrape body or import file, with line number
    ├── StorageError(OSError)              the store cannot be read or written
    │   └── OutOfBoundsError               sample outside the accepted time window
    ├── ParseError(ValueError)             malformed PromQL, prints ``1:7: parse error: ...``
    ├── BadData(ValueError)                an invalid parameter: time, step, range
    ├── QueryError                         a query failed while evaluating
    │   ├── FunctionNotImplemented(NotImplementedError)
    │   ├── TooManySamples
    │   ├── QueryTimeout(TimeoutError)
    │   └── QueryCanceled
    ├── ScrapeError                        a single scrape failed (kept as the target's last error)
    └── RuleError                          one rule evaluation failed (duplicate labels, limit)

Problems that are not fatal (PromQL warnings and infos) are not exceptions: they are collected in
the result's annotations.
"""

from __future__ import annotations

__all__ = [
    "BadData",
    "ConfigError",
    "ExpositionError",
    "FunctionNotImplemented",
    "OutOfBoundsError",
    "ParseError",
    "PromlabError",
    "QueryCanceled",
    "QueryError",
    "QueryTimeout",
    "RuleError",
    "ScrapeError",
    "StorageError",
    "TooManySamples",
]


class PromlabError(Exception):
    """Root of all promlab errors."""


class ConfigError(PromlabError, ValueError):
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


class ExpositionError(PromlabError, ValueError):
    """A scrape body or import file is malformed. ``lineno`` is 1-based (0 if unknown)."""

    def __init__(self, message: str, *, lineno: int = 0, line: str | None = None) -> None:
        self.lineno = lineno
        self.line = line
        self.reason = message
        text = f"line {lineno}: {message}" if lineno else message
        if line is not None:
            shown = line if len(line) <= 120 else line[:117] + "..."
            text += f": {shown!r}"
        super().__init__(text)


class StorageError(PromlabError, OSError):
    """The store could not be read or written."""


class OutOfBoundsError(StorageError):
    """A sample is older than the out-of-order window allows."""


class ParseError(PromlabError, ValueError):
    """Malformed PromQL.

    ``query`` is the text, ``pos`` the 0-based character offset of the problem (``end`` its end),
    and ``str(err)`` prints the way Prometheus does: ``1:7: parse error: unexpected <op:*>``.
    """

    def __init__(self, message: str, *, query: str = "", pos: int = 0, end: int | None = None) -> None:
        self.query = query
        self.pos = pos
        self.end = pos if end is None else end
        self.reason = message
        line, col = self.line_col()
        super().__init__(f"{line}:{col}: parse error: {message}")

    def line_col(self) -> tuple[int, int]:
        """1-based line and column of ``pos`` in ``query``."""
        before = self.query[: self.pos]
        line = before.count("\n") + 1
        col = self.pos - (before.rfind("\n") + 1) + 1
        return line, col


class BadData(PromlabError, ValueError):
    """A request parameter is invalid: a bad time, step or range (the API's ``bad_data``)."""


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

"""promlab.errors: every exception class has a Prometheus API errorType, from one table."""

from __future__ import annotations

import inspect

import pytest

import promlab.errors as errors
from promlab.errors import HTTP_STATUS, error_type

PROMETHEUS_TYPES = {"bad_data", "execution", "timeout", "canceled", "internal", "unavailable",
                    "not_found", "not_acceptable"}

# What Prometheus's API answers for the equivalent error (web/api/v1/api.go returnAPIError and
# invalidParamError): parse errors and bad parameters are bad_data, ErrQueryTimeout timeout,
# ErrQueryCanceled canceled, ErrStorage internal, everything else a query raises execution.
EXPECTED = [
    pytest.param("PromlabError", "execution", id="root"),
    pytest.param("BadData", "bad_data", id="bad-data"),
    pytest.param("ParseError", "bad_data", id="parse-error"),
    pytest.param("ConfigError", "bad_data", id="config-error"),
    pytest.param("ExpositionError", "bad_data", id="exposition-error"),
    pytest.param("NotFound", "not_found", id="not-found"),
    pytest.param("NotAcceptable", "not_acceptable", id="not-acceptable"),
    pytest.param("Unavailable", "unavailable", id="unavailable"),
    pytest.param("StorageError", "internal", id="storage-error"),
    pytest.param("OutOfBoundsError", "bad_data", id="out-of-bounds"),
    pytest.param("QueryError", "execution", id="query-error"),
    pytest.param("FunctionNotImplemented", "execution", id="not-implemented"),
    pytest.param("TooManySamples", "execution", id="too-many-samples"),
    pytest.param("QueryTimeout", "timeout", id="timeout"),
    pytest.param("QueryCanceled", "canceled", id="canceled"),
    pytest.param("ScrapeError", "unavailable", id="scrape-error"),
    pytest.param("RuleError", "execution", id="rule-error"),
]


def _classes() -> list[type[BaseException]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, BaseException) and c.__module__ == errors.__name__]


def _instance(cls: type[BaseException]) -> BaseException:
    return cls.__new__(cls)  # error_type only looks at the class


@pytest.mark.parametrize(("name", "etype"), EXPECTED)
def test_error_type_follows_prometheus(name: str, etype: str) -> None:
    assert error_type(_instance(getattr(errors, name))) == etype


@pytest.mark.parametrize("cls", [pytest.param(c, id=c.__name__) for c in _classes()])
def test_every_exception_class_has_an_api_error_type(cls: type[BaseException]) -> None:
    assert issubclass(cls, errors.PromlabError)
    assert error_type(_instance(cls)) in PROMETHEUS_TYPES
    assert cls.__name__ in errors.__all__


@pytest.mark.parametrize(("exc", "etype"), [
    pytest.param(ZeroDivisionError(), "internal", id="bug"),
    pytest.param(ValueError("x"), "internal", id="bare-valueerror-is-a-bug"),
    pytest.param(TimeoutError(), "timeout", id="builtin-timeout"),
])
def test_builtin_exceptions(exc: BaseException, etype: str) -> None:
    assert error_type(exc) == etype


def test_http_status_covers_every_type() -> None:
    assert set(HTTP_STATUS) == PROMETHEUS_TYPES
    assert (HTTP_STATUS["bad_data"], HTTP_STATUS["execution"], HTTP_STATUS["timeout"]) == (400, 422, 503)


def test_user_errors_stay_valueerrors() -> None:
    """Typed errors keep their builtin bases, so existing ``except ValueError`` still works."""
    for cls in (errors.BadData, errors.ParseError, errors.ConfigError, errors.ExpositionError):
        assert issubclass(cls, ValueError) and issubclass(cls, errors.BadData)
    assert issubclass(errors.QueryTimeout, TimeoutError)

"""API error responses: the one table of :mod:`promlab.errors` turned into JSON and a status.

``{"status": "error", "errorType": ..., "error": ...}`` with the status code of
:data:`promlab.errors.HTTP_STATUS`, as Prometheus's ``returnAPIError`` answers.
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from promlab.api.encode import json_response
from promlab.errors import HTTP_STATUS, error_type

__all__ = ["api_error", "error_response"]

log = logging.getLogger("promlab.api")


def error_response(kind: str, message: str, *, status: int | None = None,
                   data: object = None) -> Response:
    """An error body of ``errorType`` ``kind`` (status from the table unless given)."""
    body: dict[str, object] = {"status": "error", "errorType": kind, "error": message}
    if data is not None:
        body["data"] = data
    return json_response(body, status=status if status is not None else HTTP_STATUS[kind])


def api_error(exc: BaseException) -> Response:
    """The response for an exception raised while answering (see :func:`promlab.errors.error_type`)."""
    kind = error_type(exc)
    if kind == "internal":
        log.error("internal error answering an API request", exc_info=exc)
    return error_response(kind, str(exc))

"""One error shape for every endpoint: {"error": {"status": 404, "code": "NOT_FOUND",
"message": "..."}}, from FlowForge's domain errors, request validation and routing."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from flowforge.errors import FailedPrecondition, FlowForgeError, InvalidArgument, Unavailable

log = logging.getLogger(__name__)


class Unprocessable(InvalidArgument):
    """Well-formed but invalid content: a workflow definition that does not validate."""

    http_status = 422


class PayloadTooLarge(InvalidArgument):
    http_status = 413


class RequestTimeout(InvalidArgument):
    """The client stopped sending its request body."""

    http_status = 408


RETRY_AFTER_SECONDS = 5


class TooManyRequests(FlowForgeError):
    """One client holds as much of something as one client may."""

    status, http_status = "RESOURCE_EXHAUSTED", 429
    retry_after = RETRY_AFTER_SECONDS


class Busy(Unavailable):
    """The API holds as much of something as it takes at once."""

    retry_after = RETRY_AFTER_SECONDS


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
    429: "TOO_MANY_REQUESTS",
}
# Documented on every endpoint in the OpenAPI document (408, 429 and 503 on the endpoints
# that answer them).
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in _CODES.items()
    if status not in (405, 408, 429)
}


def responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """The OpenAPI entries of error statuses only some endpoints answer."""
    described = {**_CODES, 503: "UNAVAILABLE (with Retry-After when the API is busy)"}
    return {s: {"model": ErrorBody, "description": described[s]} for s in statuses}


# Where the services behind the API run (the object store's endpoint, Prefect's URL, an
# IP address): a client is told what failed, the server log keeps where. s3:// URLs name a
# bucket and key, which clients know already.
_ADDRESS = re.compile(
    r"\b(?!s3://)[a-z][a-z0-9+.-]*://[^\s'\"()<>]+|\b(?:ipv[46]:)?\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?",
    re.IGNORECASE,
)
WITHHELD = "<address withheld>"


def without_addresses(message: str) -> str:
    return _ADDRESS.sub(WITHHELD, message)


def error_response(
    status: int, message: str, code: str | None = None, retry_after: int | None = None
) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(status=status, code=code or _CODES.get(status, "ERROR"), message=message)
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers or None)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlowForgeError)
    message = exc.message
    # Failures of what runs behind the API: a store down (5xx) or refusing its credentials
    # (FailedPrecondition). Client errors keep their text: it names what the client sent.
    if exc.http_status >= 500 or isinstance(exc, FailedPrecondition):
        log.warning("request failed", extra={"error": exc.message, "status": exc.status})
        message = without_addresses(message)
    code = _CODES.get(exc.http_status, exc.status)
    return error_response(exc.http_status, message, code, getattr(exc, "retry_after", None))


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return error_response(422, "; ".join(problems) or "invalid request")


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


async def _store_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("executions store unreachable", extra={"error": type(exc).__name__})
    return error_response(503, "the executions store is unreachable; retry", "UNAVAILABLE")


async def _client_left(_: Request, exc: Exception) -> JSONResponse:
    # Nobody reads this answer; what the request had written is already undone.
    log.info("the client left before its request was read")
    return error_response(400, "the client closed the connection before the request ended")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal error (logged on the server)", "INTERNAL")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FlowForgeError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(OperationalError, _store_down)  # e.g. PostgreSQL restarting
    app.add_exception_handler(ClientDisconnect, _client_left)
    app.add_exception_handler(Exception, _unexpected)

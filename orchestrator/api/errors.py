"""One error shape for every endpoint: {"error": {"status": 404, "code": "NOT_FOUND",
"message": "..."}}, from FlowForge's domain errors, request validation and routing."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from flowforge.errors import FlowForgeError, InvalidArgument

log = logging.getLogger(__name__)


class Unprocessable(InvalidArgument):
    """Well-formed but invalid content: a workflow definition that does not validate."""

    http_status = 422


class PayloadTooLarge(InvalidArgument):
    http_status = 413


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
}
# Documented on every endpoint in the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in _CODES.items()
    if status not in (405,)
}


def error_response(status: int, message: str, code: str | None = None) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(status=status, code=code or _CODES.get(status, "ERROR"), message=message)
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlowForgeError)
    if exc.http_status >= 500:
        log.warning("request failed", extra={"error": exc.message, "status": exc.status})
    code = _CODES.get(exc.http_status, exc.status)
    return error_response(exc.http_status, exc.message, code)


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


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal error (logged on the server)", "INTERNAL")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FlowForgeError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(OperationalError, _store_down)  # e.g. PostgreSQL restarting
    app.add_exception_handler(Exception, _unexpected)

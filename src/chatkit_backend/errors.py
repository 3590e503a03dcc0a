"""Named errors of the API and their mapping to HTTP, in one place (RFC 9457 problem+json)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .db_errors import DatabaseBusy, DatabaseUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Seconds a client should wait before retrying while the database is unavailable.
DATABASE_RETRY_AFTER = "5"


class ApiError(Exception):
    """An error the client caused or must know about; becomes problem+json."""

    status = 400
    title = "Bad Request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.headers = headers


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class PayloadTooLarge(ApiError):
    status, title = 413, "Payload Too Large"


class UnsupportedMediaType(ApiError):
    status, title = 415, "Unsupported Media Type"


class UnprocessableContent(ApiError):
    status, title = 422, "Unprocessable Content"


class TooManyRequests(ApiError):
    status, title = 429, "Too Many Requests"


class ServiceUnavailable(ApiError):
    status, title = 503, "Service Unavailable"


def problem(
    status: int,
    title: str,
    detail: object,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if code:
        body["code"] = code
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def database_unavailable(exc: DatabaseUnavailable) -> JSONResponse:
    if isinstance(exc, DatabaseBusy):
        return problem(
            503,
            "Service Unavailable",
            "The server is busy: every database connection is in use. "
            "Please try again in a few seconds.",
            code="database_busy",
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    return problem(
        503,
        "Service Unavailable",
        f"The database is unavailable ({exc.reason}). Please try again in a few seconds.",
        code="database_unavailable",
        headers={"Retry-After": DATABASE_RETRY_AFTER},
    )


def _root_cause(exc: BaseException) -> str:
    """The driver's own message, first line only (no SQL, no parameters)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    orig = getattr(exc, "orig", None)  # a SQLAlchemy wrapper: its DBAPI error
    if isinstance(orig, BaseException):
        exc = orig
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a clear status; nothing reaches the client as a bare 500."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, code=exc.code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem(422, "Unprocessable Content", errors, code="validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, str(exc.detail), exc.detail, headers=headers)

    @app.exception_handler(DatabaseUnavailable)
    async def _database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        # An outage, not a bug: one line in the log, no traceback per request.
        log.warning(
            "database unavailable (%s): %s (request_id=%s)",
            exc.reason,
            _root_cause(exc),
            getattr(request.state, "request_id", "-"),
        )
        return database_unavailable(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("unhandled error (request_id=%s)", request_id)
        return problem(
            500,
            "Internal Server Error",
            f"Something went wrong on our side. Request id: {request_id}",
        )

"""Error bodies of the REST edge: one shape for every failure, naming the field at fault."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from voicebus.edge.tenancy.errors import (
    ConflictError,
    CredentialsError,
    NotFoundError,
    TenancyError,
)

log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field.", examples=["to_number"])
    message: str = Field(description="What is wrong with it.", examples=["String should match"])


class ErrorDetail(BaseModel):
    """Why a request failed."""

    status: int = Field(description="The HTTP status.", examples=[422])
    code: str = Field(description="Machine-readable code.", examples=["invalid_request"])
    message: str = Field(description="What went wrong.", examples=["to_number: invalid"])
    fields: list[FieldProblem] = Field(default_factory=list, description="Invalid fields.")


class ErrorBody(BaseModel):
    """Body of every error response."""

    error: ErrorDetail
    request_id: str | None = Field(default=None, description="The request's X-Request-Id.")


class ApiError(Exception):
    """An error the API answers with ``status`` and a body naming ``code``.

    Args:
        status: HTTP status.
        code: machine-readable code.
        message: human-readable text (no secrets, no personal data).
        fields: invalid fields, for 422.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, malformed, unknown or revoked API key."},
    403: {"model": ErrorBody, "description": "The key lacks the scope this route needs."},
    422: {"model": ErrorBody, "description": "Invalid request; `fields` names the fields."},
    429: {"model": ErrorBody, "description": "Rate limit of the key reached; see Retry-After."},
    503: {"model": ErrorBody, "description": "The service owning the data is unavailable."},
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "data", 0, "x")`` → ``data.0.x``: where the problem is, minus the source."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _body(request: Request, error: ApiError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    detail = ErrorDetail(
        status=error.status, code=error.code, message=error.message, fields=error.fields
    )
    return JSONResponse(
        ErrorBody(error=detail, request_id=request_id).model_dump(mode="json"),
        status_code=error.status,
        headers=error.headers,
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _body(request, exc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldProblem(
            # A body that is not JSON at all: its loc ends in a character offset, no field.
            field="body" if e.get("type") == "json_invalid" else field_path(e.get("loc", ())),
            message=str(e.get("msg", "invalid")),
        )
        for e in exc.errors()
    ]
    message = "; ".join(f"{p.field}: {p.message}" for p in problems)[:1024]
    return _body(request, ApiError(422, "invalid_request", message, fields=problems))


async def _contract(request: Request, exc: Exception) -> JSONResponse:
    """A bus contract refused what a request body carried into it (a control character
    in a nested value, a bound the body's own schema does not state): 422, naming it."""
    assert isinstance(exc, ValidationError)
    problems = [
        FieldProblem(field=field_path(e.get("loc", ())), message=str(e.get("msg", "invalid")))
        for e in exc.errors(include_url=False)
    ]
    message = "; ".join(f"{p.field}: {p.message}" for p in problems)[:1024]
    return _body(request, ApiError(422, "invalid_request", message, fields=problems))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _body(
        request, ApiError(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))
    )


async def _tenancy(request: Request, exc: Exception) -> JSONResponse:
    match exc:
        case NotFoundError():
            error = ApiError(404, "not_found", str(exc))
        case ConflictError():
            error = ApiError(409, "conflict", str(exc))
        case CredentialsError():
            log.error("stored credentials cannot be decrypted")
            error = ApiError(500, "credentials_unreadable", str(exc))
        case _:
            error = ApiError(503, "database_unavailable", str(exc))
    return _body(request, error)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", extra={"error": type(exc).__name__})
    return _body(
        request,
        ApiError(
            503,
            "database_unavailable",
            "the database is unavailable; retry later",
            headers={"Retry-After": "1"},
        ),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure with :class:`ErrorBody`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ValidationError, _contract)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(TenancyError, _tenancy)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(OSError, _database)

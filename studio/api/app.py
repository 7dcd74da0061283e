"""The REST door: a FastAPI app mounted at /api/v1. Routes are thin: validate, call a service,
map errors. Every error leaves as {"error": {"code", "message"}}."""

from __future__ import annotations

import errno
import logging
import sqlite3

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio import __version__
from studio.api import (
    adapters,
    admin,
    changes,
    datasets,
    experiments,
    feedback,
    gan,
    generation,
    image,
    image_export,
    image_grid,
    jobs,
    me,
    models,
    speech,
)
from studio.api.deps import get_studio, require_user
from studio.services import Studio
from studio.services.errors import StudioError

log = logging.getLogger("studio.api")

# The REST routes, one module per area; each needs a user (or a visitor, where guests may act).
ROUTERS = [models.router, datasets.router, jobs.router, generation.router, image.router, image_grid.router,
           speech.router, gan.router, feedback.router, admin.router, adapters.router, experiments.router, me.router,
           image_export.router, changes.router]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
DOCS_PATHS = ("/docs", "/openapi.json", "/docs/oauth2-redirect")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_field",
    429: "too_many_requests",
}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "bad_json", "The request body is not valid JSON. Send a JSON object with Content-Type: application/json."
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "form"))
        parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
    return "invalid_field", "; ".join(parts) + "."


def _is_disk_full(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT from a file write, or SQLITE_FULL from the database."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def create_api(studio: Studio) -> FastAPI:
    api = FastAPI(
        title="AIGC Studio API",
        version=__version__,
        description="Generate, fine-tune and rate text, image and speech models. Errors are "
        '`{"error": {"code", "message"}}`.',
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.studio = studio

    @api.exception_handler(StudioError)
    async def _studio_error(request: Request, exc: StudioError):
        headers = {"WWW-Authenticate": 'Basic realm="AIGC Studio"'} if exc.status == 401 else None
        headers = getattr(exc, "headers", None) or headers  # e.g. Retry-After on a throttled sign-in
        return error_response(exc.status, exc.code, exc.message, headers)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        code, message = _validation_message(exc)
        return error_response(400 if code == "bad_json" else 422, code, message)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"No API route {request.method} {request.url.path}. See /api/v1/docs for the routes."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}. See /api/v1/docs."
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "error"), message)

    @api.exception_handler(OSError)
    @api.exception_handler(sqlite3.OperationalError)
    async def _disk_full(request: Request, exc: Exception):
        """A full disk (or quota) is not a bug: say so, wherever in a request it struck. The
        write paths clean up after themselves (temp + rename, rollback), so nothing was saved."""
        if not _is_disk_full(exc):
            raise exc  # on to the 500 handler below
        log.error("Disk full on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            507, "disk_full",
            "The disk holding the studio's data is full: free some space (or ask the admin to), then "
            "try again. Nothing was saved.",
        )  # fmt: skip

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("Unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Something went wrong inside the studio; see the server log.")

    @api.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            if key == "Content-Security-Policy" and request.url.path.endswith(DOCS_PATHS):
                continue  # the docs page loads its own scripts
            response.headers.setdefault(key, value)
        return response

    @api.get("/health", tags=["models"])
    def health() -> dict:
        """Liveness and basics; the only route that never needs credentials."""
        return studio.models.health()

    for router in ROUTERS:
        api.include_router(router, dependencies=[Depends(require_user)])
    return api


__all__ = ["create_api", "get_studio", "error_response"]

"""One place maps every error to a JSON problem response: ``{"error": {code, message}}``.

Domain errors keep their message (they are written for users); anything unexpected is a
500 with a generic message and is logged (and sent to Sentry), never a stack trace.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nomosx import errors as e

log = logging.getLogger(__name__)

# most specific first: the first class an error is an instance of decides
_STATUS: list[tuple[type[e.NomosXError], int, str]] = [
    (e.Unauthenticated, 401, "unauthorized"),
    (e.Forbidden, 403, "forbidden"),
    (e.QuotaExceeded, 429, "rate_limited"),
    (e.BudgetExceeded, 402, "budget_exceeded"),
    (e.InputError, 400, "invalid_input"),
    (e.IngestError, 400, "invalid_input"),
    (e.NotFoundError, 404, "not_found"),
    (e.NoSourcesError, 422, "no_sources"),
    (e.GuardError, 422, "guard_failed"),
    (e.BadRequest, 400, "bad_request"),
    (e.RateLimited, 429, "rate_limited"),
    (e.Timeout, 504, "timeout"),
    (e.AllProvidersFailed, 503, "llm_unavailable"),
    (e.ProviderUnavailable, 503, "llm_unavailable"),
    (e.LLMError, 502, "llm_error"),
    (e.SourceError, 502, "source_error"),
    (e.StoreError, 503, "database_unavailable"),
    (e.CacheError, 503, "cache_unavailable"),
    (e.PipelineError, 500, "pipeline_error"),
    (e.ConfigError, 500, "config_error"),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "budget_exceeded",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """The ``RateLimit-*`` headers (IETF httpapi draft) of a per-minute limit."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "RateLimit-Policy": f"{limit};w=60",
    }


def problem(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status)


def classify(exc: e.NomosXError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "error"


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.NomosXError)
    status, code = classify(exc)
    response = problem(status, code, str(exc))
    if isinstance(exc, e.RateLimited) and exc.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, e.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="nomosx"'
    if isinstance(exc, e.QuotaExceeded):
        response.headers.update(rate_headers(exc.limit, exc.remaining, math.ceil(exc.reset)))
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, e.BudgetExceeded):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if status >= 500:
        log.warning("%s %s failed: %s: %s", request.method, request.url.path, code, exc)
    return response


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {
            "path": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{f['path'] or 'body'}: {f['message']}" for f in fields[:5])
    return problem(422, "validation_error", summary or "invalid request", fields=fields)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(
        exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail)
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", "an internal error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.NomosXError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets a 413, declared or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, "payload_too_large", f"the request body is over {self.max_bytes:,} bytes"
        )
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised while an undeclared (chunked) body arrives. An ``HTTPException``, so that
    FastAPI's body parsing lets it through to ``_http`` (it turns any other error into
    a 400 "error parsing the body")."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over {max_bytes:,} bytes")

"""Convert the SDKs' exceptions into the NomosX ``LLMError`` tree, at the boundary.

    HTTP 400 404 413 422, other 4xx       -> BadRequest
    HTTP 401 403 (402)                    -> AuthenticationFailed
    HTTP 429                              -> RateLimited(retry_after from Retry-After,
                                             retry-after-ms or Gemini's RetryInfo)
    HTTP 408 409 425 499, 5xx, 529        -> ProviderUnavailable
    SDK / transport timeouts              -> Timeout
    refused, reset, cut connections       -> ProviderUnavailable
    unparseable or mis-shaped replies     -> ProviderUnavailable ("malformed reply")
    an error event inside a 200 stream    -> by its error type, as the status it names

Every error carries ``provider``, ``model`` and the HTTP ``status`` (``None`` when there
was no HTTP answer). Messages are built here from the vendor's short error text, with the
API key scrubbed out, so a key can never travel in an error.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import anthropic
import anyio
import httpx2
import openai
from google.genai import errors as genai_errors

from nomosx.errors import (
    AuthenticationFailed,
    BadRequest,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)

_DETAIL_LIMIT = 300
_REDACTED = "[redacted]"

# Error types named inside an error body (OpenAI, Anthropic) -> the status they stand for.
_ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
    "timeout_error": 504,
}

# google.rpc status names (Gemini) -> HTTP status.
_RPC_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


@dataclass(frozen=True)
class ErrorContext:
    """Where a call went: stamped on every error; ``secret`` is scrubbed from messages."""

    provider: str
    model: str
    secret: str | None = field(default=None, repr=False)

    def scrub(self, text: str) -> str:
        if self.secret:
            text = text.replace(self.secret, _REDACTED)
        return text

    def detail(self, text: str) -> str:
        text = " ".join(self.scrub(text).split())
        if len(text) > _DETAIL_LIMIT:
            text = text[: _DETAIL_LIMIT - 1] + "…"
        return text


# --- shared pieces ---------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str] | None, body: object = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP
    date) or a google.rpc ``RetryInfo`` in the error body; ``None`` when nobody said."""
    if headers is not None:
        lowered = {k.lower(): v for k, v in headers.items()}
        millis = lowered.get("retry-after-ms")
        if millis is not None:
            try:
                return max(0.0, float(millis) / 1000.0)
            except ValueError:
                pass
        value = lowered.get("retry-after")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    return _rpc_retry_delay(body)


def _rpc_retry_delay(body: object) -> float | None:
    """``{"error": {"details": [{"@type": ".../google.rpc.RetryInfo", "retryDelay": "30s"}]}}``"""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(details, list):
        return None
    for item in details:
        if not isinstance(item, Mapping):
            continue
        if not str(item.get("@type", "")).endswith("RetryInfo"):
            continue
        delay = item.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def body_message(body: object, fallback: str) -> str:
    """The vendor's own short error text: ``error.message`` or ``message`` of the body."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return fallback


def error_for_status(
    status: int,
    message: str,
    ctx: ErrorContext,
    *,
    headers: Mapping[str, str] | None = None,
    body: object = None,
) -> LLMError:
    """The error class an HTTP status stands for."""
    text = f"{ctx.provider} answered HTTP {status}: {ctx.detail(message)}"
    where: dict[str, Any] = {"provider": ctx.provider, "model": ctx.model, "status": status}
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(headers, body), **where)
    if status in (401, 402, 403):
        return AuthenticationFailed(text, **where)
    if status in (408, 409, 425, 499) or status >= 500:
        return ProviderUnavailable(text, **where)
    if 400 <= status < 500:
        return BadRequest(text, **where)
    return ProviderUnavailable(text, **where)


def error_for_type(error_type: str | None, message: str, ctx: ErrorContext) -> LLMError:
    """An error event inside an accepted (HTTP 200) stream, classified by its type."""
    status = _ERROR_TYPE_STATUS.get(error_type or "", 500)
    if "rate_limit" in (error_type or ""):
        status = 429
    return error_for_status(status, message, ctx)


def timeout_error(ctx: ErrorContext, timeout: float | None) -> Timeout:
    limit = f" within {timeout:g} s" if timeout is not None else " in time"
    return Timeout(
        f"{ctx.provider} did not answer{limit}",
        provider=ctx.provider,
        model=ctx.model,
        status=None,
    )


def connection_error(ctx: ErrorContext, cause: BaseException | None) -> ProviderUnavailable:
    what = _describe(cause, ctx) if cause is not None else "connection failed"
    return ProviderUnavailable(
        f"could not talk to {ctx.provider}: {what}",
        provider=ctx.provider,
        model=ctx.model,
        status=None,
    )


def malformed_reply(
    ctx: ErrorContext, why: str | BaseException, *, status: int | None = None
) -> ProviderUnavailable:
    what = _describe(why, ctx) if isinstance(why, BaseException) else ctx.detail(why)
    return ProviderUnavailable(
        f"{ctx.provider} sent a malformed reply: {what}",
        provider=ctx.provider,
        model=ctx.model,
        status=status,
    )


def _describe(exc: BaseException, ctx: ErrorContext) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {ctx.detail(text)}" if text else name


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.HTTPError,
    httpx2.StreamError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)


def transport_error(exc: BaseException, ctx: ErrorContext, timeout: float | None) -> LLMError:
    """Errors below the SDKs (httpx2, sockets, JSON parsing) and anything unforeseen."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return timeout_error(ctx, timeout)
    if isinstance(exc, _CONNECTION_ERRORS):
        return connection_error(ctx, exc)
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError | IndexError):
        # json.JSONDecodeError, pydantic.ValidationError, a reply of the wrong shape
        return malformed_reply(ctx, exc)
    return ProviderUnavailable(
        f"{ctx.provider}: unexpected failure: {_describe(exc, ctx)}",
        provider=ctx.provider,
        model=ctx.model,
        status=None,
    )


# --- one converter per SDK ---------------------------------------------------------------


def from_openai(exc: BaseException, ctx: ErrorContext, timeout: float | None) -> LLMError:
    """``openai`` exceptions (also used by every OpenAI-compatible server)."""
    if isinstance(exc, openai.APITimeoutError):
        return timeout_error(ctx, timeout)
    if isinstance(exc, openai.APIConnectionError):
        return connection_error(ctx, exc.__cause__)
    if isinstance(exc, openai.APIResponseValidationError):
        return malformed_reply(ctx, exc.message, status=exc.status_code)
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(
            exc.status_code,
            body_message(exc.body, exc.message),
            ctx,
            headers=exc.response.headers,
            body=exc.body,
        )
    if isinstance(exc, openai.APIError):  # an error event inside a 200 stream
        error_type = exc.type or exc.code
        return error_for_type(error_type, body_message(exc.body, exc.message), ctx)
    if isinstance(exc, openai.OpenAIError):
        return ProviderUnavailable(
            f"{ctx.provider}: {_describe(exc, ctx)}",
            provider=ctx.provider,
            model=ctx.model,
            status=None,
        )
    return transport_error(exc, ctx, timeout)


def from_anthropic(exc: BaseException, ctx: ErrorContext, timeout: float | None) -> LLMError:
    """``anthropic`` exceptions; 529 "overloaded" is a ``ProviderUnavailable``."""
    if isinstance(exc, anthropic.APITimeoutError):
        return timeout_error(ctx, timeout)
    if isinstance(exc, anthropic.APIConnectionError):
        return connection_error(ctx, exc.__cause__)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return malformed_reply(ctx, exc.message, status=exc.status_code)
    if isinstance(exc, anthropic.APIStatusError):
        message = exc.api_message or body_message(exc.body, exc.message)
        if exc.status_code < 400:  # an ``event: error`` inside a 200 stream
            return error_for_type(exc.type, message, ctx)
        return error_for_status(
            exc.status_code, message, ctx, headers=exc.response.headers, body=exc.body
        )
    if isinstance(exc, anthropic.AnthropicError):
        return ProviderUnavailable(
            f"{ctx.provider}: {_describe(exc, ctx)}",
            provider=ctx.provider,
            model=ctx.model,
            status=None,
        )
    return transport_error(exc, ctx, timeout)


def from_gemini(exc: BaseException, ctx: ErrorContext, timeout: float | None) -> LLMError:
    """``google.genai`` exceptions. The SDK lets httpx2's own errors through; they land
    in ``transport_error``."""
    if isinstance(exc, genai_errors.APIError):
        message = exc.message or str(exc)
        code = exc.code if isinstance(exc.code, int) else None
        if code is None or code < 400:  # an error object inside a 200 stream
            code = _RPC_STATUS.get(str(exc.status or ""), 500)
        if code == 400 and _is_bad_key(exc):
            # Google answers a wrong API key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
            return AuthenticationFailed(
                f"{ctx.provider} answered HTTP 400: {ctx.detail(message)}",
                provider=ctx.provider,
                model=ctx.model,
                status=400,
            )
        headers = getattr(exc.response, "headers", None)
        return error_for_status(
            code,
            message,
            ctx,
            headers=headers if isinstance(headers, Mapping) else None,
            body=exc.details,
        )
    return transport_error(exc, ctx, timeout)


def _is_bad_key(exc: genai_errors.APIError) -> bool:
    text = f"{exc.message} {exc.details}"
    return "API_KEY_INVALID" in text or "API key not valid" in text


__all__ = [
    "ErrorContext",
    "body_message",
    "connection_error",
    "error_for_status",
    "error_for_type",
    "from_anthropic",
    "from_gemini",
    "from_openai",
    "malformed_reply",
    "parse_retry_after",
    "timeout_error",
    "transport_error",
]

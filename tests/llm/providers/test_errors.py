"""The SDK-exception converters, on exceptions built the way the SDKs build them."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from google.genai import errors as genai_errors

from nomosx.errors import (
    AuthenticationFailed,
    BadRequest,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from nomosx.llm.providers._errors import (
    ErrorContext,
    body_message,
    error_for_status,
    from_anthropic,
    from_gemini,
    from_openai,
    parse_retry_after,
    transport_error,
)

CTX = ErrorContext(provider="acme", model="m-1", secret="sk-very-secret-123")
REQUEST = httpx2.Request("POST", "https://api.example.test/v1/messages")


def response(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx2.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx2.Response(status, headers=headers, content=content, request=REQUEST)


# --- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "not a date"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    later = formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after({"Retry-After": later})
    assert seconds is not None and 25 <= seconds <= 31
    past = formatdate(time.time() - 300, usegmt=True)
    assert parse_retry_after({"Retry-After": past}) == 0.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "error": {
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.ErrorInfo"},
                        "noise",
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
                    ]
                }
            },
            7.0,
        ),
        ({"error": {"details": [{"@type": "x.RetryInfo", "retryDelay": "xs"}]}}, None),
        ({"error": {"details": [{"@type": "x.RetryInfo", "retryDelay": 3}]}}, None),
        ({"error": {"details": "none"}}, None),
        ("text", None),
    ],
)
def test_retry_delay_from_a_google_rpc_body(body: object, expected: float | None) -> None:
    assert parse_retry_after(None, body) == expected


# --- shared pieces --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"message": "nested"}}, "nested"),
        ({"message": "flat"}, "flat"),
        ("plain text", "plain text"),
        ("   ", "fallback"),
        ({"error": "string"}, "fallback"),
        (None, "fallback"),
    ],
)
def test_body_message(body: object, expected: str) -> None:
    assert body_message(body, "fallback") == expected


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (404, BadRequest),
        (413, BadRequest),
        (422, BadRequest),
        (431, BadRequest),
        (401, AuthenticationFailed),
        (402, AuthenticationFailed),
        (403, AuthenticationFailed),
        (408, ProviderUnavailable),
        (409, ProviderUnavailable),
        (429, RateLimited),
        (499, ProviderUnavailable),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (529, ProviderUnavailable),
        (302, ProviderUnavailable),
    ],
)
def test_error_for_status(status: int, error: type[LLMError]) -> None:
    converted = error_for_status(status, "why", CTX)
    assert type(converted) is error
    assert (converted.provider, converted.model, converted.status) == ("acme", "m-1", status)


def test_messages_are_scrubbed_and_shortened() -> None:
    converted = error_for_status(400, f"key {CTX.secret} " + "x" * 1000, CTX)
    text = str(converted)
    assert CTX.secret is not None and CTX.secret not in text
    assert "[redacted]" in text
    assert len(text) < 400
    assert CTX.secret not in repr(CTX)


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx2.ReadTimeout("slow", request=REQUEST), Timeout),
        (TimeoutError(), Timeout),
        (httpx2.ConnectError("refused", request=REQUEST), ProviderUnavailable),
        (
            httpx2.RemoteProtocolError("incomplete chunked read", request=REQUEST),
            ProviderUnavailable,
        ),
        (ConnectionResetError("reset"), ProviderUnavailable),
        (json.JSONDecodeError("Expecting value", "{", 0), ProviderUnavailable),
        (KeyError("choices"), ProviderUnavailable),
        (RuntimeError("???"), ProviderUnavailable),
    ],
)
def test_transport_errors(exc: BaseException, error: type[LLMError]) -> None:
    converted = transport_error(exc, CTX, 1.5)
    assert type(converted) is error
    assert (converted.provider, converted.model, converted.status) == ("acme", "m-1", None)


def test_transport_error_passes_llm_errors_through() -> None:
    original = BadRequest("already converted", provider="acme", model="m-1")
    assert transport_error(original, CTX, None) is original


def test_timeout_message_names_the_limit() -> None:
    assert "1.5 s" in str(transport_error(TimeoutError(), CTX, 1.5))
    assert "in time" in str(transport_error(TimeoutError(), CTX, None))


# --- OpenAI ---------------------------------------------------------------------------


def test_openai_errors() -> None:
    assert type(from_openai(openai.APITimeoutError(request=REQUEST), CTX, 2)) is Timeout

    refused = openai.APIConnectionError(request=REQUEST)
    refused.__cause__ = httpx2.ConnectError("All connection attempts failed")
    converted = from_openai(refused, CTX, 2)
    assert type(converted) is ProviderUnavailable
    assert "ConnectError" in str(converted)

    invalid = openai.APIResponseValidationError(response(200, {"x": 1}), body={"x": 1})
    converted = from_openai(invalid, CTX, 2)
    assert type(converted) is ProviderUnavailable and "malformed" in str(converted)

    limited = openai.RateLimitError(
        "Error code: 429",
        response=response(429, headers={"retry-after-ms": "250"}),
        body={"message": "slow down", "type": "requests"},
    )
    converted = from_openai(limited, CTX, 2)
    assert isinstance(converted, RateLimited) and converted.retry_after == 0.25
    assert "slow down" in str(converted)

    in_stream = openai.APIError("boom", REQUEST, body={"message": "boom", "type": "server_error"})
    assert type(from_openai(in_stream, CTX, 2)) is ProviderUnavailable
    invalid_in_stream = openai.APIError(
        "bad", REQUEST, body={"message": "bad", "type": "invalid_request_error"}
    )
    assert type(from_openai(invalid_in_stream, CTX, 2)) is BadRequest

    other = from_openai(openai.OpenAIError("odd"), CTX, 2)
    assert type(other) is ProviderUnavailable
    assert type(from_openai(ValueError("bad json"), CTX, 2)) is ProviderUnavailable


# --- Anthropic ------------------------------------------------------------------------


def anthropic_status_error(status: int, error_type: str, message: str = "oops") -> Any:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return anthropic.APIStatusError(
        f"Error code: {status}", response=response(status, body), body=body
    )


@pytest.mark.parametrize(
    ("status", "error_type", "error", "expected_status"),
    [
        (529, "overloaded_error", ProviderUnavailable, 529),
        (413, "request_too_large", BadRequest, 413),
        # an ``event: error`` inside a stream: the response itself was a 200
        (200, "overloaded_error", ProviderUnavailable, 529),
        (200, "rate_limit_error", RateLimited, 429),
        (200, "invalid_request_error", BadRequest, 400),
        (200, "authentication_error", AuthenticationFailed, 401),
        (200, "api_error", ProviderUnavailable, 500),
        (200, "something_new", ProviderUnavailable, 500),
    ],
)
def test_anthropic_status_errors(
    status: int, error_type: str, error: type[LLMError], expected_status: int
) -> None:
    converted = from_anthropic(anthropic_status_error(status, error_type), CTX, 2)
    assert type(converted) is error
    assert converted.status == expected_status
    assert "oops" in str(converted)


def test_anthropic_other_errors() -> None:
    assert type(from_anthropic(anthropic.APITimeoutError(request=REQUEST), CTX, 2)) is Timeout
    refused = anthropic.APIConnectionError(request=REQUEST)
    assert type(from_anthropic(refused, CTX, 2)) is ProviderUnavailable
    invalid = anthropic.APIResponseValidationError(response(200, {}), body={})
    assert "malformed" in str(from_anthropic(invalid, CTX, 2))
    assert type(from_anthropic(anthropic.AnthropicError("odd"), CTX, 2)) is ProviderUnavailable
    # the SDK lets httpx2's errors out of a stream's iteration unwrapped
    cut = httpx2.RemoteProtocolError("peer closed connection", request=REQUEST)
    assert type(from_anthropic(cut, CTX, 2)) is ProviderUnavailable
    assert type(from_anthropic(httpx2.ReadTimeout("slow", request=REQUEST), CTX, 2)) is Timeout


# --- Gemini ---------------------------------------------------------------------------


def gemini_error(code: int | None, status: str, message: str = "oops", **extra: Any) -> Any:
    body = {"error": {"code": code, "message": message, "status": status, **extra}}
    cls = genai_errors.ClientError if code and code < 500 else genai_errors.ServerError
    return cls(code or 0, body, response(code or 200, body, {"Retry-After": "4"}))


@pytest.mark.parametrize(
    ("code", "status", "error", "expected_status"),
    [
        (400, "INVALID_ARGUMENT", BadRequest, 400),
        (401, "UNAUTHENTICATED", AuthenticationFailed, 401),
        (429, "RESOURCE_EXHAUSTED", RateLimited, 429),
        (503, "UNAVAILABLE", ProviderUnavailable, 503),
        (None, "RESOURCE_EXHAUSTED", RateLimited, 429),  # an error object inside a stream
        (None, "DEADLINE_EXCEEDED", ProviderUnavailable, 504),
        (None, "SOMETHING_NEW", ProviderUnavailable, 500),
    ],
)
def test_gemini_errors(
    code: int | None, status: str, error: type[LLMError], expected_status: int
) -> None:
    converted = from_gemini(gemini_error(code, status), CTX, 2)
    assert type(converted) is error
    assert converted.status == expected_status
    if isinstance(converted, RateLimited):
        assert converted.retry_after == 4.0


def test_gemini_bad_api_key_is_an_authentication_failure() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    exc = gemini_error(400, "INVALID_ARGUMENT", "API key not valid.", details=details)
    converted = from_gemini(exc, CTX, 2)
    assert type(converted) is AuthenticationFailed
    assert converted.status == 400


def test_gemini_transport_errors() -> None:
    assert type(from_gemini(httpx2.ReadTimeout("slow", request=REQUEST), CTX, 2)) is Timeout
    refused = httpx2.ConnectError("refused", request=REQUEST)
    assert type(from_gemini(refused, CTX, 2)) is ProviderUnavailable
    unparsable = genai_errors.UnknownApiResponseError("Failed to parse response as JSON.")
    assert "malformed" in str(from_gemini(unparsable, CTX, 2))

"""A loopback fake of the OpenAI, Anthropic and Gemini HTTP APIs, scripted request by request.

A real HTTP/1.1 server over TCP on 127.0.0.1, written on :func:`asyncio.start_server`, so
the official SDKs talk to it exactly as they talk to the vendors and faults can be
injected at the socket level::

    async with FakeLLMServer() as server:
        server.script(Fail(429, retry_after=2), Reply("Hi there."), CutStream(after_chunks=2))
        client = openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key="test", max_retries=0
        )
        ...

The other SDKs, with their retries off::

    anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test", max_retries=0)
    genai.Client(api_key="test", http_options=types.HttpOptions(
        base_url=server.base_url, timeout=30_000))  # milliseconds; no retries by default

Routes (the ``/v1`` prefix is optional for OpenAI; Gemini is served under ``v1``, which
google-genai uses by default, and ``v1beta``):

===========================================================  =======================
``POST /v1/chat/completions``                                 OpenAI chat completions
``POST /v1/messages``                                         Anthropic messages
``POST /v1/models/{model}:generateContent``                   Gemini
``POST /v1/models/{model}:streamGenerateContent?alt=sse``     Gemini, streamed
``POST /v1/embeddings``                                       OpenAI embeddings (float
                                                              or base64), deterministic
``GET /v1/models``, ``GET /v1/models/{id}``                   models of the vendor whose
                                                              SDK asks (by its headers)
===========================================================  =======================

Embeddings are hashed bags of words (:func:`fake_embedding`): texts that share words get
similar vectors, so retrieval over them behaves like retrieval. An embeddings request
takes the next step too: ``Fail`` answers the error, any other step the vectors.

Every completion request takes the next :data:`Step` of the script (when the script is
empty: what ``responder`` answers for the request, if one is given, else ``default``), so
a benchmark can answer each request by what it asks even when requests arrive in any
order; model listings always succeed. Each request is recorded in
:attr:`FakeLLMServer.requests`.

Token counts follow each vendor's own accounting: ``input_tokens`` is the whole prompt,
cached part included, as OpenAI (``prompt_tokens``) and Gemini (``promptTokenCount``)
report it; Anthropic reports the uncached part as ``input_tokens`` and the cached part
as ``cache_read_input_tokens``, as its API does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias
from urllib.parse import unquote

__all__ = [
    "CutStream",
    "Fail",
    "FakeLLMServer",
    "Hang",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Step",
    "fake_embedding",
    "unused_port",
]

DEFAULT_TEXT = "Hello from the fake provider."

Vendor = Literal["openai", "anthropic", "gemini"]
Wire = Literal["openai", "anthropic", "gemini", "models", "embeddings"]
FAKE_EMBEDDING_DIM = 64


def fake_embedding(text: str, dim: int = FAKE_EMBEDDING_DIM) -> list[float]:
    """A unit vector: each lower-cased word adds +-1 at two hashed positions."""
    vector = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        for part in (digest[:4], digest[4:]):
            value = int.from_bytes(part, "little")
            vector[value % dim] += 1.0 if value & (1 << 31) else -1.0
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm else vector


# -- the script --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful answer, streamed if the request asked for a stream.

    ``input_tokens`` None counts the whitespace-separated words of every message (system
    prompt included); ``output_tokens`` None counts the words of ``text``. ``chunks`` None
    streams one piece per word (with the spaces after it); ``finish_reason`` None is the
    vendor's normal stop (``stop``, ``end_turn``, ``STOP``).
    """

    text: str = DEFAULT_TEXT
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    chunks: int | None = None
    delay: float = 0.0  # before the response starts
    chunk_delay: float = 0.0  # before each content chunk and before the closing events
    finish_reason: str | None = None


@dataclass(frozen=True)
class Fail:
    """An error status with the vendor's error body (``error_type`` overrides its type)."""

    status: int
    message: str = "scripted failure"
    retry_after: float | None = None  # sent as Retry-After (and retry-after-ms)
    delay: float = 0.0
    error_type: str | None = None


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST after ``after_bytes`` bytes of the response.

    The response cut is the one the default :class:`Reply` would have sent (headers
    included); 0 resets before anything is sent.
    """

    after_bytes: int = 0


@dataclass(frozen=True)
class CutStream:
    """Stream the opening events and ``after_chunks`` content chunks of ``text``, then reset.

    On a non-streaming request: the headers and half of the body, then reset.
    """

    after_chunks: int
    text: str = DEFAULT_TEXT


@dataclass(frozen=True)
class Malformed:
    """Send ``body`` as is; on a stream (status 200) as the data of the first SSE event."""

    body: bytes = b'{"choices": [ {"mess'
    status: int = 200
    content_type: str = "application/json"


@dataclass(frozen=True)
class Hang:
    """Accept the request and send nothing for ``seconds``, then close the connection."""

    seconds: float = 3600.0


Step: TypeAlias = Reply | Fail | Reset | CutStream | Malformed | Hang


@dataclass
class RecordedRequest:
    """One request as the server saw it, and what became of its response."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any] | None
    wire: Wire
    stream: bool
    model: str | None
    completed: bool = False  # the response was sent in full
    disconnected: bool = False  # the client went away before the response was complete
    step: Step | None = None  # the scripted step that answered it (None for model listings)


def unused_port() -> int:
    """A loopback port with nothing listening on it, for "connection refused"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the three wire formats --------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    """Everything a wire format needs to render one answer."""

    id: str
    created: int
    model: str
    text: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    finish_reason: str | None
    include_usage: bool  # OpenAI streams: stream_options.include_usage


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(data: Any, event: str | None = None) -> bytes:
    prefix = b"event: " + event.encode() + b"\n" if event else b""
    return prefix + b"data: " + _dumps(data) + b"\n\n"


Events = tuple[list[bytes], list[bytes], list[bytes]]  # opening, content, closing


class _Format:
    vendor: Vendor
    id_prefix: str
    request_id_header: str
    sse_content_type = "text/event-stream; charset=utf-8"

    def completion(self, turn: _Turn) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, turn: _Turn, pieces: list[str]) -> Events:
        raise NotImplementedError

    def error(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def models(self, models: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError

    def model(self, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def malformed_event(self, body: bytes) -> bytes:
        return b"data: " + body + b"\n\n"

    def prompt_words(self, body: dict[str, Any]) -> int:
        return _count_words(body.get("messages"))


class _OpenAI(_Format):
    vendor = "openai"
    id_prefix = "chatcmpl-fake"
    request_id_header = "x-request-id"
    _error_types: ClassVar[dict[int, tuple[str, str]]] = {
        401: ("invalid_request_error", "invalid_api_key"),
        403: ("invalid_request_error", "unsupported_country_region_territory"),
        404: ("invalid_request_error", "model_not_found"),
        429: ("requests", "rate_limit_exceeded"),
    }

    @staticmethod
    def _usage(turn: _Turn) -> dict[str, Any]:
        return {
            "prompt_tokens": turn.input_tokens,
            "completion_tokens": turn.output_tokens,
            "total_tokens": turn.input_tokens + turn.output_tokens,
            "prompt_tokens_details": {"cached_tokens": turn.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def completion(self, turn: _Turn) -> dict[str, Any]:
        return {
            "id": turn.id,
            "object": "chat.completion",
            "created": turn.created,
            "model": turn.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": turn.text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": turn.finish_reason or "stop",
                }
            ],
            "usage": self._usage(turn),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def stream(self, turn: _Turn, pieces: list[str]) -> Events:
        def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
            data: dict[str, Any] = {
                "id": turn.id,
                "object": "chat.completion.chunk",
                "created": turn.created,
                "model": turn.model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if turn.include_usage:
                data["usage"] = usage
            return _sse(data)

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        opening = [chunk(choice({"role": "assistant", "content": "", "refusal": None}), None)]
        content = [chunk(choice({"content": piece}), None) for piece in pieces]
        closing = [chunk(choice({}, turn.finish_reason or "stop"), None)]
        if turn.include_usage:
            closing.append(chunk([], self._usage(turn)))
        closing.append(b"data: [DONE]\n\n")
        return opening, content, closing

    def error(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
        kind, code = self._error_types.get(status, default)
        return {
            "error": {"message": message, "type": error_type or kind, "param": None, "code": code}
        }

    def models(self, models: Sequence[str]) -> dict[str, Any]:
        return {"object": "list", "data": [self.model(m) for m in models]}

    def model(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 0, "owned_by": "fake"}


class _Anthropic(_Format):
    vendor = "anthropic"
    id_prefix = "msg_fake"
    request_id_header = "request-id"
    _error_types: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        503: "overloaded_error",
        529: "overloaded_error",
    }

    @staticmethod
    def _usage(turn: _Turn) -> dict[str, Any]:
        return {
            "input_tokens": max(0, turn.input_tokens - turn.cached_tokens),
            "output_tokens": turn.output_tokens,
            "cache_read_input_tokens": turn.cached_tokens,
            "cache_creation_input_tokens": 0,
        }

    def _message(self, turn: _Turn, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": turn.id,
            "type": "message",
            "role": "assistant",
            "model": turn.model,
            "content": content,
            "stop_reason": turn.finish_reason or "end_turn",
            "stop_sequence": None,
            "usage": self._usage(turn),
        }

    def completion(self, turn: _Turn) -> dict[str, Any]:
        return self._message(turn, [{"type": "text", "text": turn.text}])

    def stream(self, turn: _Turn, pieces: list[str]) -> Events:
        start = self._message(turn, [])
        start["stop_reason"] = None
        start["usage"]["output_tokens"] = min(1, turn.output_tokens)  # as the real API does
        opening = [
            _sse({"type": "message_start", "message": start}, "message_start"),
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            _sse({"type": "ping"}, "ping"),
        ]
        content = [
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
                "content_block_delta",
            )
            for p in pieces
        ]
        delta = {"stop_reason": turn.finish_reason or "end_turn", "stop_sequence": None}
        closing = [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": delta,
                    "usage": {"output_tokens": turn.output_tokens},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return opening, content, closing

    def error(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        kind = self._error_types.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {
            "type": "error",
            "error": {"type": error_type or kind, "message": message},
            "request_id": "req_fake",
        }

    def models(self, models: Sequence[str]) -> dict[str, Any]:
        return {
            "data": [self.model(m) for m in models],
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }

    def model(self, model: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model,
            "display_name": model,
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "active",
        }

    def malformed_event(self, body: bytes) -> bytes:
        # The SDK skips events without a name, so the broken data needs one.
        return b"event: message_start\ndata: " + body + b"\n\n"

    def prompt_words(self, body: dict[str, Any]) -> int:
        return _count_words(body.get("system")) + _count_words(body.get("messages"))


class _Gemini(_Format):
    vendor = "gemini"
    id_prefix = "fake-response-"
    request_id_header = "x-request-id"
    sse_content_type = "text/event-stream"
    _statuses: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "UNIMPLEMENTED",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }

    @staticmethod
    def _usage(turn: _Turn) -> dict[str, Any]:
        return {
            "promptTokenCount": turn.input_tokens,
            "candidatesTokenCount": turn.output_tokens,
            "totalTokenCount": turn.input_tokens + turn.output_tokens,
            "cachedContentTokenCount": turn.cached_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": turn.input_tokens}],
        }

    @staticmethod
    def _response(
        turn: _Turn, text: str, finish: str | None, usage: dict[str, Any]
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": turn.model,
            "responseId": turn.id,
        }

    def completion(self, turn: _Turn) -> dict[str, Any]:
        return self._response(turn, turn.text, turn.finish_reason or "STOP", self._usage(turn))

    def stream(self, turn: _Turn, pieces: list[str]) -> Events:
        # The real API reports the prompt on every chunk and the whole usage on the last.
        partial = {"promptTokenCount": turn.input_tokens, "totalTokenCount": turn.input_tokens}
        content = [_sse(self._response(turn, p, None, partial)) for p in pieces]
        last = self._response(turn, "", turn.finish_reason or "STOP", self._usage(turn))
        return [], content, [_sse(last)]

    def error(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        kind = error_type or self._statuses.get(status, "UNKNOWN")
        return {"error": {"code": status, "message": message, "status": kind}}

    def models(self, models: Sequence[str]) -> dict[str, Any]:
        return {"models": [self.model(m) for m in models]}

    def model(self, model: str) -> dict[str, Any]:
        return {
            "name": model if model.startswith("models/") else f"models/{model}",
            "version": "001",
            "displayName": model,
            "description": "A fake model.",
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 8_192,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }

    def prompt_words(self, body: dict[str, Any]) -> int:
        system = body.get("systemInstruction", body.get("system_instruction"))
        return _count_words(body.get("contents")) + _count_words(system)


_FORMATS: dict[Vendor, _Format] = {f.vendor: f for f in (_OpenAI(), _Anthropic(), _Gemini())}


def _count_words(value: object) -> int:
    """Words of the text in a message list, whatever the vendor's nesting of parts."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_words(value.get(key)) for key in ("text", "content", "parts"))
    return 0


_WORD = re.compile(r"\s*\S+\s*")


def _split(text: str, chunks: int | None) -> list[str]:
    """``text`` in stream pieces: one per word, or ``chunks`` near-equal pieces."""
    if chunks is None:
        return _WORD.findall(text) or ([text] if text else [])
    count = max(1, chunks)
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


# -- HTTP/1.1 ----------------------------------------------------------------------------

_READ_SIZE = 65_536
_MAX_HEAD = 65_536
_MAX_BODY = 64 * 1024 * 1024
_REASONS = {s.value: s.phrase for s in http.HTTPStatus} | {529: "Site Overloaded"}


class _BadRequest(Exception):
    """The bytes received are not an HTTP/1.x request this server understands."""


class _ClientGone(Exception):
    """The client closed the connection in the middle of its request."""


@dataclass
class _Request:
    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


def _parse_head(head: bytes) -> _Request:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(f"bad request line {request_line!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(f"bad header line {line!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path, _, query = target.partition("?")
    return _Request(method, path, query, version, headers)


def _response_head(status: int, headers: Sequence[tuple[str, str]], *, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _chunk(data: bytes) -> bytes:
    """One piece of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


_LAST_CHUNK = b"0\r\n\r\n"


class _Connection:
    """One client connection: buffered reads, and a watch for the client going away."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.buffer = bytearray()
        self.gone = False
        self._watcher: asyncio.Task[bytes] | None = None

    # reading the request

    async def _fill(self) -> None:
        data = await self.reader.read(_READ_SIZE)
        if not data:
            raise _ClientGone
        self.buffer += data

    async def read_head(self) -> bytes | None:
        """The next request head; None when the client closed between requests."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise _BadRequest("request head too large")
            data = await self.reader.read(_READ_SIZE)
            if not data:
                if self.buffer:
                    raise _ClientGone
                return None
            self.buffer += data
        head = bytes(self.buffer[:end])
        del self.buffer[: end + 4]
        return head

    async def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise _BadRequest("line too long")
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def read_body(self, request: _Request) -> bytes:
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            return await self._read_chunked()
        length = request.headers.get("content-length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest(f"bad Content-Length {length!r}") from None
        if not 0 <= size <= _MAX_BODY:
            raise _BadRequest(f"bad Content-Length {length!r}")
        return await self.read_exact(size)

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = await self.read_line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(f"bad chunk size {line!r}") from None
            if size == 0:
                while await self.read_line():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise _BadRequest("request body too large")
            parts.append(await self.read_exact(size))
            if await self.read_line():
                raise _BadRequest("chunk longer than its size")

    # watching for the client going away while the response is made

    def _collect(self) -> None:
        watcher = self._watcher
        if watcher is None or not watcher.done():
            return
        self._watcher = None
        if watcher.cancelled():
            return
        if watcher.exception() is not None:
            self.gone = True
            return
        data = watcher.result()
        if data:
            self.buffer += data  # the client is early with its next request
        else:
            self.gone = True

    def client_gone(self) -> bool:
        self._collect()
        return self.gone or self.transport.is_closing()

    async def wait_gone(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True as soon as the client goes away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.client_gone():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._watcher is None:
                self._watcher = asyncio.ensure_future(self.reader.read(_READ_SIZE))
            await asyncio.wait((self._watcher,), timeout=remaining)
        return True

    async def stop_watching(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            watcher.cancel()
            await asyncio.wait((watcher,))
            self._collect()

    # writing

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False if the client has gone away."""
        if self.client_gone():
            return False
        self.writer.write(data)
        try:
            await self.writer.drain()
        except OSError:
            self.gone = True
            return False
        return True

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), dropping unsent bytes."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def close(self, *, abort: bool) -> None:
        if abort:
            self.transport.abort()
        elif not self.transport.is_closing():
            self.writer.close()


# -- the server --------------------------------------------------------------------------

_GEMINI_CALL = re.compile(
    r"/(v1(?:alpha|beta)?)/((?:models|tunedModels)/[^:/]+):(generateContent|streamGenerateContent)"
)
_MODELS = re.compile(r"(?:/(v1(?:alpha|beta)?))?/models(?:/(.+))?")
_OPENAI_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_EMBEDDINGS_PATHS = frozenset({"/v1/embeddings", "/embeddings"})
_ANTHROPIC_PATHS = frozenset({"/v1/messages", "/messages"})


class FakeLLMServer:
    """A loopback HTTP/1.1 server speaking the OpenAI, Anthropic and Gemini wire formats."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Step = Reply(),
        models: Sequence[str] = ("fake-model",),
        responder: Callable[[RecordedRequest], Step] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fake provider listens on loopback only, not {host!r}")
        # "localhost" may resolve to two addresses, each of which would get its own port.
        self.host = "127.0.0.1" if host == "localhost" else host
        self.default = default
        self.responder = responder  # the step for a request, when the script is empty
        self.models = tuple(models) or ("fake-model",)
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._queue: deque[Step] = deque()
        self._disconnected: list[RecordedRequest] = []
        self._disconnect_cursor = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._open_connections = 0
        self._total_connections = 0
        self._active_streams = 0
        self._ids = itertools.count(1)

    # life cycle

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the fake provider is already running")
        self._stopping = False
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection, hanging or streaming ones included."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        while self._handlers:
            handlers = list(self._handlers)
            for task in handlers:
                task.cancel()
            await asyncio.wait(handlers)
        await server.wait_closed()
        for _ in range(3):  # let the transports' connection_lost callbacks close the sockets
            await asyncio.sleep(0)

    async def __aenter__(self) -> FakeLLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[FakeLLMServer]:
        """Run the server on its own event loop in a daemon thread, for sync callers."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="fake-llm-server", daemon=True
        )
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            try:
                yield self
            finally:
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    # addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake provider is not running: call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    # the script

    def script(self, *steps: Step) -> None:
        """Queue ``steps``: each completion request takes the next one, then ``default``."""
        self._queue.extend(steps)

    def clear(self) -> None:
        """Forget the queued steps and the recorded requests."""
        self._queue.clear()
        self.requests.clear()
        self._disconnected.clear()
        self._disconnect_cursor = 0

    def _next_step(self, record: RecordedRequest) -> Step:
        """The script's next step, else the responder's answer to ``record``, else default."""
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            return self.responder(record)
        return self.default

    @property
    def pending_steps(self) -> int:
        return len(self._queue)

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.wire not in ("models", "embeddings")]

    @property
    def open_connections(self) -> int:
        return self._open_connections

    @property
    def total_connections(self) -> int:
        """Connections accepted since start (keep-alive reuse keeps this low)."""
        return self._total_connections

    @property
    def active_streams(self) -> int:
        return self._active_streams

    async def wait_for_disconnect(self, timeout: float = 5.0) -> RecordedRequest:  # noqa: ASYNC109
        """The next request whose client went away before its response was complete.

        Disconnections are returned in order, each once, those that happened before the
        call included. Works from any event loop (the server may run :meth:`in_thread`).
        """
        deadline = time.monotonic() + timeout
        while self._disconnect_cursor >= len(self._disconnected):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no client went away mid-response within {timeout} s")
            await asyncio.sleep(0.002)
        request = self._disconnected[self._disconnect_cursor]
        self._disconnect_cursor += 1
        return request

    # serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(reader, writer)
        if self._stopping:
            conn.close(abort=True)
            return
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._open_connections += 1
        self._total_connections += 1
        abort = False
        try:
            try:
                await self._serve_requests(conn)
            except _BadRequest as exc:
                await self._refuse(conn, str(exc))
            except (_ClientGone, OSError):
                pass
        except asyncio.CancelledError:
            # stop() cancels the handlers; ending cancelled would make the stream protocol
            # of Python 3.11 log an error, so the handler ends normally.
            abort = True
        finally:
            await conn.stop_watching()
            conn.close(abort=abort or self._stopping)
            self._open_connections -= 1
            self._handlers.discard(task)
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve_requests(self, conn: _Connection) -> None:
        while True:
            head = await conn.read_head()
            if head is None:
                return
            request = _parse_head(head)
            request.body = await conn.read_body(request)
            keep_alive = await self._respond(conn, request)
            await conn.stop_watching()
            if not keep_alive or conn.client_gone():
                return

    @staticmethod
    async def _refuse(conn: _Connection, reason: str) -> None:
        """Answer 400 to bytes that are no HTTP request, and close."""
        payload = _dumps(_FORMATS["openai"].error(400, reason, None))
        fields = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        if await conn.send(_response_head(400, fields, keep_alive=False) + payload):
            # A lingering close: closing with unread input would reset the connection and
            # could destroy the 400 before the client reads it.
            conn.writer.write_eof()
            await conn.wait_gone(1.0)

    async def _respond(self, conn: _Connection, request: _Request) -> bool:
        """Answer one request; False when the connection must not be reused."""
        path = unquote(request.path)
        if request.method == "POST":
            if path in _OPENAI_PATHS:
                return await self._complete(conn, request, "openai", None, None)
            if path in _ANTHROPIC_PATHS:
                return await self._complete(conn, request, "anthropic", None, None)
            if path in _EMBEDDINGS_PATHS:
                return await self._embeddings(conn, request)
            if match := _GEMINI_CALL.fullmatch(path):
                model = match[2].removeprefix("models/")
                stream = match[3] == "streamGenerateContent"
                return await self._complete(conn, request, "gemini", model, stream)
        elif request.method == "GET" and (match := _MODELS.fullmatch(path)):
            return await self._list_models(conn, request, match[1], match[2])
        message = f"no route for {request.method} {request.path}"
        await self._send_json(conn, request, 404, _FORMATS["openai"].error(404, message, None))
        return request.keep_alive

    async def _send_json(
        self,
        conn: _Connection,
        request: _Request,
        status: int,
        payload: dict[str, Any],
        extra: Sequence[tuple[str, str]] = (),
    ) -> bool:
        body = _dumps(payload)
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            *extra,
        ]
        return await conn.send(
            _response_head(status, headers, keep_alive=request.keep_alive) + body
        )

    async def _embeddings(self, conn: _Connection, request: _Request) -> bool:
        wire = _FORMATS["openai"]
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        record = RecordedRequest(
            request.method,
            request.path,
            request.query,
            request.headers,
            body if isinstance(body, dict) else None,
            "embeddings",
            False,
            model if isinstance(model, str) else None,
        )
        self.requests.append(record)
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) and i for i in inputs):
            error = wire.error(400, "'input' must be a non-empty string or list of them", None)
            record.completed = await self._send_json(conn, request, 400, error)
            return request.keep_alive
        assert isinstance(body, dict)
        step = self._next_step(record)
        record.step = step
        if isinstance(step, Fail):
            return await self._fail(conn, request, record, wire, step)
        dim = body.get("dimensions")
        dim = dim if isinstance(dim, int) and dim > 0 else FAKE_EMBEDDING_DIM
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = fake_embedding(text, dim)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(text.split()) for text in inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": record.model or "fake-embedding",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        record.completed = await self._send_json(conn, request, 200, payload)
        return request.keep_alive

    async def _list_models(
        self, conn: _Connection, request: _Request, version: str | None, model: str | None
    ) -> bool:
        headers = request.headers
        vendor: Vendor
        if (
            (version or "v1") != "v1"
            or "x-goog-api-key" in headers
            or "x-goog-api-client" in headers
        ):
            vendor = "gemini"
        elif "anthropic-version" in headers:
            vendor = "anthropic"
        else:
            vendor = "openai"
        wire = _FORMATS[vendor]
        record = RecordedRequest(
            request.method, request.path, request.query, headers, None, "models", False, model
        )
        self.requests.append(record)
        if model is None:
            payload = wire.models(self.models)
        else:
            payload = wire.model(model.removeprefix("models/"))
        record.completed = await self._send_json(conn, request, 200, payload)
        return request.keep_alive

    def _gone(self, record: RecordedRequest) -> bool:
        record.disconnected = True
        self._disconnected.append(record)
        return False

    def _turn(
        self,
        wire: _Format,
        body: dict[str, Any],
        model: str,
        text: str,
        reply: Reply | None,
    ) -> _Turn:
        input_tokens = reply.input_tokens if reply is not None else None
        output_tokens = reply.output_tokens if reply is not None else None
        stream_options = body.get("stream_options")
        return _Turn(
            id=f"{wire.id_prefix}{next(self._ids)}",
            created=int(time.time()),
            model=model,
            text=text,
            input_tokens=wire.prompt_words(body) if input_tokens is None else input_tokens,
            output_tokens=len(text.split()) if output_tokens is None else output_tokens,
            cached_tokens=reply.cached_tokens if reply is not None else 0,
            finish_reason=reply.finish_reason if reply is not None else None,
            include_usage=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True,
        )

    async def _complete(
        self,
        conn: _Connection,
        request: _Request,
        vendor: Vendor,
        model: str | None,
        stream: bool | None,
    ) -> bool:
        wire = _FORMATS[vendor]
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = None
        if stream is None:
            stream = body is not None and body.get("stream") is True
        if model is None and body is not None and isinstance(body.get("model"), str):
            model = body["model"]
        record = RecordedRequest(
            request.method,
            request.path,
            request.query,
            request.headers,
            body,
            vendor,
            stream,
            model,
        )
        self.requests.append(record)
        if body is None:
            error = wire.error(400, "the request body is not a JSON object", None)
            record.completed = await self._send_json(conn, request, 400, error)
            return request.keep_alive

        step = self._next_step(record)
        record.step = step
        model = model or self.models[0]
        if isinstance(step, Reply):
            turn = self._turn(wire, body, model, step.text, step)
            return await self._reply(conn, request, record, wire, turn, step)
        if isinstance(step, Fail):
            return await self._fail(conn, request, record, wire, step)
        if isinstance(step, Hang):
            if await conn.wait_gone(step.seconds):
                return self._gone(record)
            return False
        if isinstance(step, Malformed):
            return await self._malformed(conn, request, record, wire, step)
        if isinstance(step, Reset):
            turn = self._turn(wire, body, model, DEFAULT_TEXT, None)
            return await self._reset(conn, request, record, wire, turn, step)
        turn = self._turn(wire, body, model, step.text, None)
        return await self._cut(conn, request, record, wire, turn, step)

    async def _fail(
        self,
        conn: _Connection,
        request: _Request,
        record: RecordedRequest,
        wire: _Format,
        step: Fail,
    ) -> bool:
        if step.delay > 0 and await conn.wait_gone(step.delay):
            return self._gone(record)
        extra = [(wire.request_id_header, "req_fake")]
        if step.retry_after is not None:
            seconds = step.retry_after
            text = str(int(seconds)) if seconds == int(seconds) else repr(seconds)
            extra += [("retry-after", text), ("retry-after-ms", str(round(seconds * 1000)))]
        error = wire.error(step.status, step.message, step.error_type)
        record.completed = await self._send_json(conn, request, step.status, error, extra)
        return request.keep_alive

    async def _reset(
        self,
        conn: _Connection,
        request: _Request,
        record: RecordedRequest,
        wire: _Format,
        turn: _Turn,
        step: Reset,
    ) -> bool:
        if record.stream:
            opening, content, closing = wire.stream(turn, _split(turn.text, None))
            events = b"".join(_chunk(event) for event in (*opening, *content, *closing))
            data = self._stream_head(request, wire) + events + _LAST_CHUNK
        else:
            data = self._json_response(request, wire, turn)
        if step.after_bytes > 0:
            await conn.send(data[: step.after_bytes])
        conn.reset()
        return False

    async def _cut(
        self,
        conn: _Connection,
        request: _Request,
        record: RecordedRequest,
        wire: _Format,
        turn: _Turn,
        step: CutStream,
    ) -> bool:
        if not record.stream:
            data = self._json_response(request, wire, turn)
            body_start = data.index(b"\r\n\r\n") + 4
            await conn.send(data[: body_start + (len(data) - body_start) // 2])
            conn.reset()
            return False
        opening, content, _closing = wire.stream(turn, _split(turn.text, None))
        self._active_streams += 1
        try:
            head = self._stream_head(request, wire) + b"".join(_chunk(e) for e in opening)
            if not await conn.send(head):
                return self._gone(record)
            for event in content[: step.after_chunks]:
                if not await conn.send(_chunk(event)):
                    return self._gone(record)
            conn.reset()
            return False
        finally:
            self._active_streams -= 1

    def _json_response(self, request: _Request, wire: _Format, turn: _Turn) -> bytes:
        body = _dumps(wire.completion(turn))
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            (wire.request_id_header, f"req_{turn.id}"),
        ]
        return _response_head(200, headers, keep_alive=request.keep_alive) + body

    @staticmethod
    def _stream_head(request: _Request, wire: _Format) -> bytes:
        headers = [
            ("content-type", wire.sse_content_type),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
            (wire.request_id_header, "req_fake_stream"),
        ]
        return _response_head(200, headers, keep_alive=request.keep_alive)

    async def _reply(
        self,
        conn: _Connection,
        request: _Request,
        record: RecordedRequest,
        wire: _Format,
        turn: _Turn,
        reply: Reply,
    ) -> bool:
        if not record.stream:
            if reply.delay > 0 and await conn.wait_gone(reply.delay):
                return self._gone(record)
            if not await conn.send(self._json_response(request, wire, turn)):
                return self._gone(record)
            record.completed = True
            return request.keep_alive

        opening, content, closing = wire.stream(turn, _split(reply.text, reply.chunks))
        self._active_streams += 1
        try:
            if reply.delay > 0 and await conn.wait_gone(reply.delay):
                return self._gone(record)
            head = self._stream_head(request, wire) + b"".join(_chunk(e) for e in opening)
            if not await conn.send(head):
                return self._gone(record)
            for event in content:
                if reply.chunk_delay > 0 and await conn.wait_gone(reply.chunk_delay):
                    return self._gone(record)
                if not await conn.send(_chunk(event)):
                    return self._gone(record)
            if reply.chunk_delay > 0 and await conn.wait_gone(reply.chunk_delay):
                return self._gone(record)
            if not await conn.send(b"".join(_chunk(e) for e in closing) + _LAST_CHUNK):
                return self._gone(record)
            record.completed = True
            return request.keep_alive
        finally:
            self._active_streams -= 1

    async def _malformed(
        self,
        conn: _Connection,
        request: _Request,
        record: RecordedRequest,
        wire: _Format,
        step: Malformed,
    ) -> bool:
        if record.stream and step.status == 200:
            data = (
                self._stream_head(request, wire)
                + _chunk(wire.malformed_event(step.body))
                + _LAST_CHUNK
            )
        else:
            headers = [
                ("content-type", step.content_type),
                ("content-length", str(len(step.body))),
            ]
            data = _response_head(step.status, headers, keep_alive=request.keep_alive)
            data += step.body
        record.completed = await conn.send(data)
        return request.keep_alive

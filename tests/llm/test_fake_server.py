"""The fake provider server, driven by the official SDKs and by raw HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from nomosx.testing.fake_llm import (
    CutStream,
    Fail,
    FakeLLMServer,
    Hang,
    Malformed,
    RecordedRequest,
    Reply,
    Reset,
    unused_port,
)

PROMPT = "Please say hello to me"  # 5 words
SYSTEM = "Be brief"  # 2 words


@dataclass
class Result:
    text: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    finish_reason: str | None
    pieces: list[str]


class OpenAISdk:
    name = "openai"
    connection_errors: tuple[type[BaseException], ...] = (openai.APIConnectionError,)
    timeout_errors: tuple[type[BaseException], ...] = (openai.APITimeoutError,)
    status_errors: ClassVar[dict[int, type[BaseException]]] = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
        503: openai.InternalServerError,
    }

    def __init__(self, server: FakeLLMServer, timeout: float = 30.0) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key="test", max_retries=0, timeout=timeout
        )

    def _messages(self) -> list[Any]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]

    async def complete(self) -> Result:
        r = await self.client.chat.completions.create(
            model="fake-model",
            messages=self._messages(),
            response_format={"type": "json_object"},
        )
        assert r.usage is not None and r.usage.prompt_tokens_details is not None
        return Result(
            r.choices[0].message.content or "",
            r.usage.prompt_tokens,
            r.usage.completion_tokens,
            r.usage.prompt_tokens_details.cached_tokens or 0,
            r.choices[0].finish_reason,
            [],
        )

    async def stream(self) -> Result:
        stream = await self.client.chat.completions.create(
            model="fake-model",
            messages=self._messages(),
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        usage = None
        finish = None
        async for chunk in stream:
            if chunk.choices:
                if chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        cached = usage.prompt_tokens_details.cached_tokens or 0
        text = "".join(pieces)
        return Result(text, usage.prompt_tokens, usage.completion_tokens, cached, finish, pieces)

    async def read_then_close(self, count: int) -> list[str]:
        stream = await self.client.chat.completions.create(
            model="fake-model", messages=self._messages(), stream=True
        )
        pieces: list[str] = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == count:
                    break
        await stream.close()
        return pieces

    async def models(self) -> list[str]:
        return [m.id async for m in self.client.models.list()]

    def status(self, exc: BaseException) -> tuple[int, str | None]:
        assert isinstance(exc, openai.APIStatusError)
        return exc.status_code, exc.response.headers.get("retry-after")

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicSdk:
    name = "anthropic"
    # The SDK wraps connection errors of the request, not those of a stream being read.
    connection_errors = (anthropic.APIConnectionError, httpx2.TransportError)
    timeout_errors = (anthropic.APITimeoutError,)
    status_errors: ClassVar[dict[int, type[BaseException]]] = {
        400: anthropic.BadRequestError,
        401: anthropic.AuthenticationError,
        429: anthropic.RateLimitError,
        500: anthropic.InternalServerError,
        503: anthropic.ServiceUnavailableError,
    }

    def __init__(self, server: FakeLLMServer, timeout: float = 30.0) -> None:
        self.client = anthropic.AsyncAnthropic(
            base_url=server.base_url, api_key="test", max_retries=0, timeout=timeout
        )

    async def complete(self) -> Result:
        m = await self.client.messages.create(
            model="fake-model",
            max_tokens=100,
            system=SYSTEM,
            messages=[{"role": "user", "content": PROMPT}],
        )
        block = m.content[0]
        assert block.type == "text"
        u = m.usage
        cached = u.cache_read_input_tokens or 0
        return Result(
            block.text, u.input_tokens + cached, u.output_tokens, cached, m.stop_reason, []
        )

    async def stream(self) -> Result:
        pieces: list[str] = []
        async with self.client.messages.stream(
            model="fake-model",
            max_tokens=100,
            system=[{"type": "text", "text": SYSTEM}],
            messages=[{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        ) as stream:
            async for text in stream.text_stream:
                pieces.append(text)
            m = await stream.get_final_message()
        u = m.usage
        cached = u.cache_read_input_tokens or 0
        text = "".join(pieces)
        return Result(text, u.input_tokens + cached, u.output_tokens, cached, m.stop_reason, pieces)

    async def read_then_close(self, count: int) -> list[str]:
        stream = await self.client.messages.create(
            model="fake-model",
            max_tokens=100,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
        )
        pieces: list[str] = []
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                pieces.append(event.delta.text)
                if len(pieces) == count:
                    break
        await stream.close()
        return pieces

    async def models(self) -> list[str]:
        return [m.id async for m in self.client.models.list()]

    def status(self, exc: BaseException) -> tuple[int, str | None]:
        assert isinstance(exc, anthropic.APIStatusError)
        return exc.status_code, exc.response.headers.get("retry-after")

    async def aclose(self) -> None:
        await self.client.close()


class GeminiSdk:
    name = "gemini"
    # google-genai lets the errors of httpx2 through as they are.
    connection_errors = (httpx2.TransportError,)
    timeout_errors = (httpx2.TimeoutException,)
    status_errors: ClassVar[dict[int, type[BaseException]]] = {
        400: genai_errors.ClientError,
        401: genai_errors.ClientError,
        429: genai_errors.ClientError,
        500: genai_errors.ServerError,
        503: genai_errors.ServerError,
    }

    def __init__(self, server: FakeLLMServer, timeout: float = 30.0) -> None:
        options = genai_types.HttpOptions(base_url=server.base_url, timeout=int(timeout * 1000))
        self.client = genai.Client(api_key="test", http_options=options)
        self.config = genai_types.GenerateContentConfig(
            system_instruction=SYSTEM, response_mime_type="application/json"
        )

    async def complete(self) -> Result:
        r = await self.client.aio.models.generate_content(
            model="fake-model", contents=PROMPT, config=self.config
        )
        u = r.usage_metadata
        assert u is not None and r.candidates
        return Result(
            r.text or "",
            u.prompt_token_count or 0,
            u.candidates_token_count or 0,
            u.cached_content_token_count or 0,
            r.candidates[0].finish_reason,
            [],
        )

    async def stream(self) -> Result:
        pieces: list[str] = []
        last = None
        async for chunk in await self.client.aio.models.generate_content_stream(
            model="fake-model", contents=PROMPT, config=self.config
        ):
            if chunk.text:
                pieces.append(chunk.text)
            last = chunk
        assert last is not None and last.usage_metadata is not None and last.candidates
        u = last.usage_metadata
        return Result(
            "".join(pieces),
            u.prompt_token_count or 0,
            u.candidates_token_count or 0,
            u.cached_content_token_count or 0,
            last.candidates[0].finish_reason,
            pieces,
        )

    async def read_then_close(self, count: int) -> list[str]:
        chunks = await self.client.aio.models.generate_content_stream(
            model="fake-model", contents=PROMPT
        )
        iterator = aiter(chunks)
        pieces = [(await anext(iterator)).text or "" for _ in range(count)]
        # google-genai nests async generators without closing the inner ones, and its
        # HttpResponse sits in a reference cycle with its own segment iterator, so
        # aclose() leaves the HTTP response open until the cycle collector runs (whose
        # finalizers then race each other). Cancelling a read in flight unwinds every
        # generator down to the socket and closes the response at once.
        while True:
            read = asyncio.ensure_future(anext(iterator))
            for _ in range(5):  # let the read reach the socket
                await asyncio.sleep(0)
            if not read.done():
                break
            await read  # a chunk came in meanwhile: drop it
        read.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await read
        await chunks.aclose()  # type: ignore[attr-defined]
        return pieces

    async def models(self) -> list[str]:
        return [m.name or "" async for m in await self.client.aio.models.list()]

    def status(self, exc: BaseException) -> tuple[int, str | None]:
        assert isinstance(exc, genai_errors.APIError)
        assert exc.response is not None
        return exc.code, exc.response.headers.get("retry-after")

    async def aclose(self) -> None:
        await self.client.aio.aclose()
        self.client.close()


Sdk = OpenAISdk | AnthropicSdk | GeminiSdk
SDKS = {"openai": OpenAISdk, "anthropic": AnthropicSdk, "gemini": GeminiSdk}
FINISH = {"openai": "stop", "anthropic": "end_turn", "gemini": "STOP"}
LENGTH = {"openai": "length", "anthropic": "max_tokens", "gemini": "MAX_TOKENS"}


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(models=("fake-model", "fake-model-2")) as s:
        yield s


@pytest.fixture(params=sorted(SDKS))
async def sdk(request: pytest.FixtureRequest, server: FakeLLMServer) -> AsyncIterator[Sdk]:
    client: Sdk = SDKS[request.param](server)
    yield client
    await client.aclose()


async def _wait_until(predicate: Any, within: float = 5.0) -> None:
    """Poll the server's counters (plain ints, no event to wait on)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# -- through the official SDKs -----------------------------------------------------------


async def test_complete_counts_words_by_default(sdk: Sdk, server: FakeLLMServer) -> None:
    result = await sdk.complete()
    assert result.text == "Hello from the fake provider."
    assert (result.input_tokens, result.output_tokens, result.cached_tokens) == (7, 5, 0)
    assert str(result.finish_reason).removeprefix("FinishReason.") == FINISH[sdk.name]
    (request,) = server.completion_requests
    assert request.wire == sdk.name and request.model == "fake-model"
    assert request.completed and not request.disconnected and not request.stream
    assert request.method == "POST" and request.body is not None
    assert request.step == Reply()


async def test_complete_with_scripted_reply(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(
        Reply('{"answer": 42}', input_tokens=100, output_tokens=7, cached_tokens=40),
        Reply("second", finish_reason=LENGTH[sdk.name]),
    )
    first = await sdk.complete()
    assert first.text == '{"answer": 42}'
    assert (first.input_tokens, first.output_tokens, first.cached_tokens) == (100, 7, 40)
    second = await sdk.complete()
    assert second.text == "second"
    assert str(second.finish_reason).removeprefix("FinishReason.") == LENGTH[sdk.name]
    assert server.pending_steps == 0


async def test_stream_assembles_the_reply(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(
        Reply("The quick brown fox jumps.", input_tokens=11, output_tokens=6, cached_tokens=3),
        Reply("abcdefgh", chunks=3, chunk_delay=0.001),
    )
    result = await sdk.stream()
    assert result.text == "The quick brown fox jumps."
    assert result.pieces == ["The ", "quick ", "brown ", "fox ", "jumps."]
    assert (result.input_tokens, result.output_tokens, result.cached_tokens) == (11, 6, 3)
    assert str(result.finish_reason).removeprefix("FinishReason.") == FINISH[sdk.name]
    result = await sdk.stream()
    assert result.pieces == ["abc", "def", "gh"]
    assert result.input_tokens == 7
    assert all(r.stream and r.completed for r in server.completion_requests)
    assert server.active_streams == 0


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_fail_raises_the_sdk_error_of_the_status(
    sdk: Sdk, server: FakeLLMServer, status: int
) -> None:
    retry_after = 2.5 if status == 429 else None
    server.script(Fail(status, "scripted", retry_after=retry_after))
    with pytest.raises(sdk.status_errors[status]) as caught:
        await sdk.complete()
    got_status, got_retry_after = sdk.status(caught.value)
    assert got_status == status
    assert got_retry_after == ("2.5" if status == 429 else None)
    assert len(server.completion_requests) == 1  # no retry
    assert server.completion_requests[0].completed


async def test_fail_on_a_stream_request(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(Fail(429, retry_after=3))
    with pytest.raises(sdk.status_errors[429]) as caught:
        await sdk.stream()
    assert sdk.status(caught.value) == (429, "3")


@pytest.mark.parametrize("after_bytes", [0, 40, 200])
@pytest.mark.parametrize("stream", [False, True])
async def test_reset_raises_a_connection_error(
    sdk: Sdk, server: FakeLLMServer, after_bytes: int, stream: bool
) -> None:
    server.script(Reset(after_bytes))
    with pytest.raises(sdk.connection_errors):
        await (sdk.stream() if stream else sdk.complete())
    (request,) = server.completion_requests
    assert not request.completed and not request.disconnected
    # the client recovers on a new connection
    assert (await sdk.complete()).text == "Hello from the fake provider."


async def test_cut_stream_raises_after_the_chunks(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(CutStream(after_chunks=2, text="one two three four"))
    pieces: list[str] = []
    with pytest.raises(sdk.connection_errors):
        await _collect_until_error(sdk, pieces)
    assert pieces == ["one ", "two "]
    assert server.active_streams == 0
    assert not server.completion_requests[0].completed


async def _collect_until_error(sdk: Sdk, pieces: list[str]) -> None:
    if isinstance(sdk, OpenAISdk):
        stream = await sdk.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    elif isinstance(sdk, AnthropicSdk):
        events = await sdk.client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}], stream=True
        )
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                pieces.append(event.delta.text)
    else:
        async for chunk in await sdk.client.aio.models.generate_content_stream(
            model="m", contents="x"
        ):
            pieces.append(chunk.text or "")


async def test_cut_stream_on_a_plain_request(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(CutStream(after_chunks=1))
    with pytest.raises(sdk.connection_errors):
        await sdk.complete()


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_raises_a_decode_error(
    sdk: Sdk, server: FakeLLMServer, stream: bool
) -> None:
    server.script(Malformed())
    # json.JSONDecodeError, or google-genai's UnknownApiResponseError on a stream
    with pytest.raises(ValueError, match=r"Unterminated|parse"):
        await (sdk.stream() if stream else sdk.complete())
    assert server.completion_requests[0].completed


async def test_hang_times_out_and_the_server_sees_the_client_leave(
    server: FakeLLMServer,
) -> None:
    for name, make in SDKS.items():
        client = make(server, timeout=0.2)
        server.script(Hang())
        with pytest.raises(client.timeout_errors):
            await client.complete()
        await client.aclose()
        left = await server.wait_for_disconnect(timeout=5)
        assert left.wire == name and left.disconnected and not left.completed
    await _wait_until(lambda: server.open_connections == 0)


async def test_models_listing(sdk: Sdk) -> None:
    models = await sdk.models()
    if sdk.name == "gemini":
        assert models == ["models/fake-model", "models/fake-model-2"]
    else:
        assert models == ["fake-model", "fake-model-2"]


async def test_models_requests_take_no_step(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(Fail(500))
    await sdk.models()
    assert server.pending_steps == 1
    assert [r.wire for r in server.requests] == ["models"]
    assert server.completion_requests == []


async def test_keep_alive_reuses_one_connection(sdk: Sdk, server: FakeLLMServer) -> None:
    await sdk.complete()
    await sdk.stream()
    await sdk.complete()
    assert server.total_connections == 1
    assert server.open_connections == 1
    assert server.requests[0].headers.get("connection", "keep-alive") == "keep-alive"


async def test_disconnect_mid_stream_is_detected(sdk: Sdk, server: FakeLLMServer) -> None:
    server.script(Reply("a b c d e f g h i j k l m n o p", chunk_delay=0.1))
    pieces = await sdk.read_then_close(2)
    assert pieces == ["a ", "b "]
    left = await server.wait_for_disconnect()
    assert left.disconnected and not left.completed and left.stream
    assert server.active_streams == 0
    await _wait_until(lambda: server.open_connections == 0)


def test_in_thread_serves_a_sync_client() -> None:
    server = FakeLLMServer(default=Reply("threaded"))
    with server.in_thread() as running:
        assert running is server
        running.script(Fail(429, retry_after=1))
        with openai.OpenAI(base_url=server.openai_base_url, api_key="t", max_retries=0) as c:
            with pytest.raises(openai.RateLimitError):
                c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            for _ in range(3):
                r = c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}]
                )
                assert r.choices[0].message.content == "threaded"
            stream = c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert "".join(ch.choices[0].delta.content or "" for ch in stream) == "threaded"
        assert len(server.completion_requests) == 5
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


def test_in_thread_wait_for_disconnect_from_another_loop() -> None:
    server = FakeLLMServer(default=Reply("x y z w v u", chunk_delay=0.05))
    with server.in_thread():
        with (
            httpx2.Client() as c,
            c.stream(
                "POST",
                server.openai_base_url + "/chat/completions",
                json={"model": "m", "messages": [], "stream": True},
            ) as r,
        ):
            next(r.iter_bytes())
        left = asyncio.run(server.wait_for_disconnect())
        assert left.disconnected


# -- over raw HTTP -----------------------------------------------------------------------


@pytest.fixture
async def http(server: FakeLLMServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=server.base_url) as client:
        yield client


async def test_default_step_and_fifo_order(server: FakeLLMServer, http: httpx2.AsyncClient) -> None:
    server.default = Reply("fallback")
    server.script(Reply("first"), Reply("second"))
    texts = []
    for _ in range(3):
        r = await http.post("/chat/completions", json={"messages": [{"content": "a b"}]})
        texts.append(r.json()["choices"][0]["message"]["content"])
    assert texts == ["first", "second", "fallback"]
    server.script(Reply("dropped"))
    server.clear()
    assert server.requests == [] and server.pending_steps == 0
    r = await http.post("/v1/chat/completions", json={})
    assert r.json()["choices"][0]["message"]["content"] == "fallback"
    assert r.headers["x-request-id"].startswith("req_chatcmpl-fake")


async def test_responder_answers_what_the_script_does_not(
    server: FakeLLMServer, http: httpx2.AsyncClient
) -> None:
    def echo(request: RecordedRequest) -> Reply:
        assert request.body is not None
        return Reply(f"echo {request.body['messages'][0]['content']}")

    server.responder = echo
    server.script(Reply("scripted"))
    texts = []
    for word in ("one", "two"):
        r = await http.post("/chat/completions", json={"messages": [{"content": word}]})
        texts.append(r.json()["choices"][0]["message"]["content"])
    assert texts == ["scripted", "echo two"]  # the script first, then the responder
    assert server.requests[-1].step == Reply("echo two")


async def test_openai_stream_without_usage(http: httpx2.AsyncClient) -> None:
    r = await http.post("/v1/chat/completions", json={"stream": True, "messages": []})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line for line in r.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_anthropic_stream_event_sequence(http: httpx2.AsyncClient) -> None:
    body = {"model": "claude", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = await http.post("/v1/messages", json=body)
    names = [e.split("\n")[0] for e in r.text.split("\n\n") if e]
    assert names == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        *["event: content_block_delta"] * 5,
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]


async def test_gemini_v1beta_and_errors(server: FakeLLMServer, http: httpx2.AsyncClient) -> None:
    server.script(Fail(429, error_type="QUOTA"), Fail(418))
    path = "/v1beta/models/gemini-x:generateContent"
    r = await http.post(path, json={"contents": [{"parts": [{"text": "a b c"}]}]})
    assert r.status_code == 429
    assert r.json() == {"error": {"code": 429, "message": "scripted failure", "status": "QUOTA"}}
    r = await http.post(path, json={"contents": []})
    assert r.status_code == 418 and r.json()["error"]["status"] == "UNKNOWN"
    r = await http.post(path, json={"contents": [{"parts": [{"text": "a b c"}]}]})
    assert r.json()["usageMetadata"]["promptTokenCount"] == 3
    assert server.completion_requests[-1].model == "gemini-x"


async def test_error_types_of_each_vendor(server: FakeLLMServer, http: httpx2.AsyncClient) -> None:
    server.script(Fail(529), Fail(502), Fail(404), Fail(403, error_type="custom"))
    r = await http.post("/v1/messages", json={})
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    r = await http.post("/v1/messages", json={})
    assert r.json()["error"]["type"] == "api_error"
    r = await http.post("/v1/chat/completions", json={})
    assert r.json()["error"]["code"] == "model_not_found"
    r = await http.post("/v1/chat/completions", json={})
    assert r.json()["error"]["type"] == "custom"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}),
        ({"anthropic-version": "2023-06-01"}, "display_name"),
        ({"x-goog-api-key": "k"}, "supportedGenerationMethods"),
    ],
)
async def test_model_retrieval(
    http: httpx2.AsyncClient, headers: dict[str, str], expected: object
) -> None:
    r = await http.get("/v1/models/fake-model", headers=headers)
    assert r.status_code == 200
    if isinstance(expected, dict):
        assert r.json() == expected
    else:
        assert expected in r.json()


async def test_gemini_model_retrieval_by_version(http: httpx2.AsyncClient) -> None:
    r = await http.get("/v1beta/models/models/fake-model")
    assert r.json()["name"] == "models/fake-model"
    r = await http.get("/v1beta/models")
    assert [m["name"] for m in r.json()["models"]] == ["models/fake-model", "models/fake-model-2"]


async def test_unknown_route_and_bad_json(server: FakeLLMServer, http: httpx2.AsyncClient) -> None:
    r = await http.get("/nowhere")
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]
    r = await http.post("/v1/responses", json={})
    assert r.status_code == 404
    r = await http.post("/v1/messages", content=b"not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = await http.post("/v1/messages", content=b"[1, 2]")
    assert r.status_code == 400
    assert [req.body for req in server.completion_requests] == [None, None]
    assert server.total_connections == 1


async def test_chunked_request_body(server: FakeLLMServer, http: httpx2.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"messages": [{"role": "user", '
        yield b'"content": "one two three"}]}'

    r = await http.post("/v1/chat/completions", content=body())
    assert r.json()["usage"]["prompt_tokens"] == 3
    assert server.completion_requests[0].headers["transfer-encoding"] == "chunked"


async def test_malformed_with_an_error_status(
    server: FakeLLMServer, http: httpx2.AsyncClient
) -> None:
    server.script(
        Malformed(b"<html>bad gateway</html>", status=502, content_type="text/html"),
        Malformed(b"nope", status=500),
    )
    r = await http.post("/v1/chat/completions", json={})
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        502,
        "<html>bad gateway</html>",
        "text/html",
    )
    r = await http.post("/v1/messages", json={"stream": True})
    assert (r.status_code, r.text) == (500, "nope")


async def test_delays_and_leaving_during_them(
    server: FakeLLMServer, http: httpx2.AsyncClient
) -> None:
    server.script(Reply("late", delay=0.05), Fail(500, delay=0.05))
    loop = asyncio.get_running_loop()
    started = loop.time()
    r = await http.post("/v1/chat/completions", json={})
    assert r.json()["choices"][0]["message"]["content"] == "late"
    r = await http.post("/v1/chat/completions", json={})
    assert r.status_code == 500
    assert loop.time() - started >= 0.1

    cases = [
        (Reply(delay=5), False),
        (Fail(500, delay=5), False),
        (Reply(delay=5), True),
        (Reply(chunk_delay=5), True),
    ]
    for step, stream in cases:
        server.script(step)
        with pytest.raises(httpx2.ReadTimeout):
            await http.post(
                "/v1/chat/completions",
                json={"stream": stream},
                timeout=httpx2.Timeout(5, read=0.1),
            )
        left = await server.wait_for_disconnect()
        assert left.step == step and not left.completed
    assert server.active_streams == 0


async def test_hang_ends_by_closing_the_connection(
    server: FakeLLMServer, http: httpx2.AsyncClient
) -> None:
    server.script(Hang(0.05))
    with pytest.raises(httpx2.RemoteProtocolError):
        await http.post("/v1/messages", json={})
    (request,) = server.requests
    assert not request.completed and not request.disconnected


async def test_client_resetting_mid_response(server: FakeLLMServer) -> None:
    server.script(Hang())
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /v1/messages HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    await _wait_until(lambda: len(server.requests) == 1)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST
    left = await server.wait_for_disconnect()
    assert left.wire == "anthropic" and left.disconnected
    await _wait_until(lambda: server.open_connections == 0)


async def test_wait_for_disconnect_times_out(server: FakeLLMServer) -> None:
    with pytest.raises(TimeoutError):
        await server.wait_for_disconnect(timeout=0.01)


async def test_connection_close_and_http_1_0(server: FakeLLMServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await reader.read()  # the server closes after its answer
        assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data
    finally:
        writer.close()
        await writer.wait_closed()

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /models HTTP/1.0\r\n\r\n")
        data = await reader.read()
        assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data
    finally:
        writer.close()
        await writer.wait_closed()


async def test_pipelined_requests_on_one_connection(server: FakeLLMServer) -> None:
    server.script(Reply("one", delay=0.2), Reply("two"))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )
        writer.write(request)
        await _wait_until(lambda: len(server.requests) == 1)
        writer.write(request)  # while the first is still being answered
        data = b""
        async with asyncio.timeout(5):
            while b'"content":"two"' not in data:
                data += await reader.read(65536)
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert b"connection: keep-alive" in data
        assert data.index(b'"one"') < data.index(b'"two"')
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    "raw",
    [
        b"NONSENSE\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: many\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        b"GET / HTTP/1.1\r\n" + b"x" * 70_000,
    ],
)
async def test_bad_requests_get_400_and_close(server: FakeLLMServer, raw: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(raw)
        data = await reader.read()
        assert data.startswith(b"HTTP/1.1 400 Bad Request")
    finally:
        writer.close()
        await writer.wait_closed()
    assert server.completion_requests == []


async def test_client_leaving_mid_request(server: FakeLLMServer) -> None:
    for raw in (
        b"GET /v1/mod",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{",
    ):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    await _wait_until(lambda: server.open_connections == 0)
    assert server.requests == []


async def test_chunked_body_with_trailers(server: FakeLLMServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        data = await reader.read()
        assert data.startswith(b"HTTP/1.1 200 OK")
    finally:
        writer.close()
        await writer.wait_closed()
    assert server.completion_requests[0].body == {}


async def test_reset_uses_rst(server: FakeLLMServer) -> None:
    server.script(Reset())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"POST /v1/messages HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        with pytest.raises(ConnectionResetError):
            await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


async def test_unused_port_refuses_connections() -> None:
    port = unused_port()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="t", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        await client.models.list()
    await client.close()


async def test_stop_drops_hanging_and_streaming_connections() -> None:
    server = FakeLLMServer()
    await server.start()
    server.script(Hang(), Reply("a b c", chunk_delay=10))
    client = httpx2.AsyncClient(base_url=server.base_url)
    hang = asyncio.ensure_future(client.post("/v1/messages", json={}))
    stream = asyncio.ensure_future(client.post("/v1/messages", json={"stream": True}))
    await _wait_until(lambda: server.active_streams == 1 and server.open_connections == 2)
    await server.stop()
    await server.stop()  # idempotent
    for task in (hang, stream):
        with pytest.raises(httpx2.TransportError):
            await task
    await client.aclose()
    assert server.open_connections == 0 and server.active_streams == 0


async def test_start_twice_and_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeLLMServer(host="0.0.0.0")
    async with FakeLLMServer(host="localhost") as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        with pytest.raises(RuntimeError, match="already running"):
            await server.start()
        port = server.port
        await server.stop()
        await server.start()  # back on the same port, as a provider that recovers
        assert server.port == port
    if socket.has_ipv6:
        try:
            server6 = FakeLLMServer(host="::1")
            await server6.start()
        except OSError:
            return  # no IPv6 loopback here
        try:
            assert server6.openai_base_url == f"http://[::1]:{server6.port}/v1"
        finally:
            await server6.stop()


@pytest.fixture
def sync_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer().in_thread() as server:
        yield server


def test_raw_sync_requests(sync_server: FakeLLMServer) -> None:
    with httpx2.Client(base_url=sync_server.base_url) as c:
        r = c.post("/v1/messages", json={"messages": [{"content": [{"text": "a b"}]}]})
        assert r.json()["usage"]["input_tokens"] == 2
        assert r.headers["request-id"].startswith("req_msg_fake")

"""The three adapters against the loopback fake vendor server, through the real SDKs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomosx.errors import (
    AuthenticationFailed,
    BadRequest,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from nomosx.llm.providers import ProviderConfig, Wire, make_model
from nomosx.llm.types import (
    DoneEvent,
    HealthStatus,
    LLMRequest,
    Message,
    ResponseFormat,
    StreamEvent,
    TokenEvent,
    TokenUsage,
)
from nomosx.testing.fake_llm import (
    CutStream,
    Fail,
    FakeLLMServer,
    Hang,
    Malformed,
    Reply,
    Reset,
    unused_port,
)

from .conftest import API_KEY, MODEL, MakeModel

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
}


def ask(text: str = "What is new?", **kw: Any) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=text)], **kw)


def with_system(**kw: Any) -> LLMRequest:
    return LLMRequest(
        messages=[
            Message(role="system", content="You are terse."),
            Message(role="user", content="Hello"),
            Message(role="assistant", content="Hi."),
            Message(role="user", content="Summarise the evidence."),
        ],
        **kw,
    )


async def collect(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


async def collect_into(sink: list[StreamEvent], events: Any) -> None:
    """Keep what arrived before a stream failed."""
    async for event in events:
        sink.append(event)


# --- answers --------------------------------------------------------------------------


async def test_complete_maps_text_usage_and_metadata(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Reply("Evidence is mixed.", input_tokens=120, output_tokens=7, cached_tokens=100))

    response = await model.complete(ask())

    assert response.content == "Evidence is mixed."
    assert response.provider == wire
    assert response.model == MODEL
    assert response.usage == TokenUsage(input_tokens=120, output_tokens=7, cached_tokens=100)
    assert response.finish_reason == "stop"
    assert response.latency_ms > 0
    assert (response.cost_usd, response.cached, response.attempts) == (None, False, 1)
    assert len(server.completion_requests) == 1
    assert server.requests[-1].model is not None and MODEL in server.requests[-1].model


@pytest.mark.parametrize(
    ("wire", "vendor_reason", "expected"),
    [
        ("openai", "length", "length"),
        ("anthropic", "max_tokens", "length"),
        ("anthropic", "refusal", "content_filter"),
        ("gemini", "MAX_TOKENS", "length"),
        ("gemini", "SAFETY", "content_filter"),
        ("gemini", "OTHER", "other"),
    ],
)
async def test_finish_reasons_are_normalised(
    make: MakeModel, server: FakeLLMServer, wire: Wire, vendor_reason: str, expected: str
) -> None:
    model = make(wire)
    server.script(Reply("cut", finish_reason=vendor_reason))
    assert (await model.complete(ask())).finish_reason == expected


async def test_system_prompt_openai_stays_a_system_message(
    make: MakeModel, server: FakeLLMServer
) -> None:
    await make("openai").complete(with_system())
    body = server.requests[-1].body
    assert body is not None
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]


async def test_system_prompt_anthropic_goes_in_the_system_field(
    make: MakeModel, server: FakeLLMServer
) -> None:
    request = LLMRequest(
        messages=[
            Message(role="system", content="You are terse."),
            Message(role="user", content="First part."),
            Message(role="user", content="Second part."),
            Message(role="system", content="Cite sources."),
        ]
    )
    await make("anthropic").complete(request)
    body = server.requests[-1].body
    assert body is not None
    assert body["system"] == "You are terse.\n\nCite sources."
    assert body["messages"] == [{"role": "user", "content": "First part.\n\nSecond part."}]
    assert "temperature" not in body


async def test_system_prompt_gemini_goes_in_system_instruction(
    make: MakeModel, server: FakeLLMServer
) -> None:
    await make("gemini").complete(with_system(temperature=0.7))
    body = server.requests[-1].body
    assert body is not None
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "Hi."}]
    assert body["generationConfig"]["temperature"] == 0.7


@pytest.mark.parametrize("wire", ["anthropic", "gemini"])
async def test_a_system_only_request_is_sent_as_a_user_turn(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    request = LLMRequest(messages=[Message(role="system", content="Say hello.")])
    assert (await make(wire).complete(request)).content
    body = server.requests[-1].body
    assert body is not None
    assert "system" not in body and "systemInstruction" not in body


# --- request options ------------------------------------------------------------------


async def test_openai_proper_sends_max_completion_tokens(
    make: MakeModel, server: FakeLLMServer
) -> None:
    await make("openai").complete(ask(max_tokens=50, temperature=0.3))
    body = server.requests[-1].body
    assert body is not None
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert body["temperature"] == 0.3


async def test_compatible_server_sends_max_tokens(make: MakeModel, server: FakeLLMServer) -> None:
    model = make("openai", name="ollama", api_key=None)

    response = await model.complete(ask(max_tokens=50))

    assert response.provider == "ollama"
    assert model.provider == "ollama"
    body = server.requests[-1].body
    assert body is not None
    assert body["max_tokens"] == 50
    assert "max_completion_tokens" not in body
    assert server.requests[-1].headers["authorization"] == "Bearer not-needed"


@pytest.mark.parametrize(("max_tokens", "sent"), [(None, 1024), (77, 77)])
async def test_anthropic_max_tokens_is_always_sent(
    make: MakeModel, server: FakeLLMServer, max_tokens: int | None, sent: int
) -> None:
    await make("anthropic").complete(ask(max_tokens=max_tokens))
    body = server.requests[-1].body
    assert body is not None
    assert body["max_tokens"] == sent


async def test_gemini_max_output_tokens(make: MakeModel, server: FakeLLMServer) -> None:
    await make("gemini").complete(ask(max_tokens=64))
    body = server.requests[-1].body
    assert body is not None
    assert body["generationConfig"]["maxOutputTokens"] == 64


async def test_openai_json_modes(make: MakeModel, server: FakeLLMServer) -> None:
    model = make("openai")
    await model.complete(ask(response_format=ResponseFormat(type="json_object")))
    body = server.requests[-1].body
    assert body is not None
    assert body["response_format"] == {"type": "json_object"}

    fmt = ResponseFormat(type="json_schema", json_schema=SCHEMA, name="verdict")
    await model.complete(ask(response_format=fmt))
    body = server.requests[-1].body
    assert body is not None
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True},
    }


async def test_anthropic_json_schema_uses_structured_output(
    make: MakeModel, server: FakeLLMServer
) -> None:
    fmt = ResponseFormat(type="json_schema", json_schema=SCHEMA)
    await make("anthropic").complete(ask(response_format=fmt))
    body = server.requests[-1].body
    assert body is not None
    output = body["output_config"]["format"]
    assert output["type"] == "json_schema"
    assert output["schema"]["properties"] == SCHEMA["properties"]
    assert output["schema"]["required"] == ["answer", "confidence"]
    assert output["schema"]["additionalProperties"] is False


async def test_anthropic_refuses_json_object_before_sending(
    make: MakeModel, server: FakeLLMServer
) -> None:
    model = make("anthropic")
    with pytest.raises(BadRequest, match="json_schema") as caught:
        await model.complete(ask(response_format=ResponseFormat(type="json_object")))
    assert (caught.value.provider, caught.value.model) == ("anthropic", MODEL)
    with pytest.raises(BadRequest):
        await collect(model.stream(ask(response_format=ResponseFormat(type="json_object"))))
    assert server.completion_requests == []


async def test_anthropic_refuses_a_schema_it_cannot_use(
    make: MakeModel, server: FakeLLMServer
) -> None:
    fmt = ResponseFormat(type="json_schema", json_schema={"description": "no type at all"})
    with pytest.raises(BadRequest, match="structured output"):
        await make("anthropic").complete(ask(response_format=fmt))
    assert server.completion_requests == []


async def test_gemini_json_modes(make: MakeModel, server: FakeLLMServer) -> None:
    model = make("gemini")
    await model.complete(ask(response_format=ResponseFormat(type="json_object")))
    config = (server.requests[-1].body or {})["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in config

    await model.complete(
        ask(response_format=ResponseFormat(type="json_schema", json_schema=SCHEMA))
    )
    config = (server.requests[-1].body or {})["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini"])
async def test_json_schema_without_a_schema_is_a_bad_request(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    with pytest.raises(BadRequest):
        await make(wire).complete(ask(response_format=ResponseFormat(type="json_schema")))
    assert server.completion_requests == []


async def test_text_format_sends_nothing_special(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    await make(wire).complete(ask(response_format=ResponseFormat(type="text")))
    body = server.requests[-1].body or {}
    assert "response_format" not in body
    assert "output_config" not in body
    assert "responseMimeType" not in body.get("generationConfig", {})


# --- streaming ------------------------------------------------------------------------


async def test_stream_assembles_the_text_and_ends_with_usage(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    text = "Three studies agree; two do not."
    server.script(Reply(text, input_tokens=40, output_tokens=9, cached_tokens=8))

    events = await collect(model.stream(ask()))

    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 1
    assert "".join(t.content for t in tokens) == text
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert [e for e in events if isinstance(e, DoneEvent)] == [done]
    assert done.response.content == text
    assert done.response.usage == TokenUsage(input_tokens=40, output_tokens=9, cached_tokens=8)
    assert done.response.finish_reason == "stop"
    assert (done.response.provider, done.response.model) == (wire, MODEL)
    assert done.response.latency_ms > 0
    assert server.requests[-1].stream
    assert server.requests[-1].completed


async def test_openai_stream_asks_for_usage(make: MakeModel, server: FakeLLMServer) -> None:
    await collect(make("openai").stream(ask()))
    body = server.requests[-1].body
    assert body is not None
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_stream_and_complete_agree(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Reply("Same answer twice."), Reply("Same answer twice."))
    complete = await model.complete(ask())
    events = await collect(model.stream(ask()))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.response.content == complete.content
    assert done.response.usage == complete.usage


async def test_closing_a_stream_early_closes_the_connection(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Reply("one two three four five six seven eight nine ten", chunk_delay=0.05))

    stream = model.stream(ask())
    first = await anext(stream)
    second = await anext(stream)
    assert isinstance(first, TokenEvent) and isinstance(second, TokenEvent)
    await stream.aclose()  # type: ignore[attr-defined]

    gone = await server.wait_for_disconnect(timeout=2.0)
    assert gone.stream and not gone.completed
    assert server.active_streams == 0
    # the adapter still works afterwards
    assert (await model.complete(ask())).content


async def test_cancelling_the_consumer_closes_the_connection(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Reply("one two three four five six", chunk_delay=0.2))
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(ask()):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    gone = await server.wait_for_disconnect(timeout=2.0)
    assert not gone.completed
    assert server.active_streams == 0


# --- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (404, BadRequest),
        (422, BadRequest),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (408, ProviderUnavailable),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (529, ProviderUnavailable),
    ],
)
async def test_http_errors_map_to_the_error_tree(
    make: MakeModel, server: FakeLLMServer, wire: Wire, status: int, error: type[LLMError]
) -> None:
    model = make(wire)
    server.script(Fail(status, message="scripted trouble"))

    with pytest.raises(error) as caught:
        await model.complete(ask())

    assert type(caught.value) is error
    assert (caught.value.provider, caught.value.model, caught.value.status) == (wire, MODEL, status)
    assert "scripted trouble" in str(caught.value)
    assert len(server.completion_requests) == 1  # no SDK retry


async def test_rate_limit_carries_retry_after(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Fail(429, retry_after=2))

    with pytest.raises(RateLimited) as caught:
        await model.complete(ask())

    assert caught.value.retry_after == 2.0
    assert (caught.value.provider, caught.value.model, caught.value.status) == (wire, MODEL, 429)
    assert len(server.completion_requests) == 1


async def test_one_request_per_call_after_a_503(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Fail(503), Fail(503))
    with pytest.raises(ProviderUnavailable):
        await model.complete(ask())
    assert len(server.completion_requests) == 1
    with pytest.raises(ProviderUnavailable):
        await collect(model.stream(ask()))
    assert len(server.completion_requests) == 2


@pytest.mark.parametrize("after_bytes", [0, 60])
async def test_reset_connection_is_unavailable(
    make: MakeModel, server: FakeLLMServer, wire: Wire, after_bytes: int
) -> None:
    model = make(wire)
    server.script(Reset(after_bytes=after_bytes))
    with pytest.raises(ProviderUnavailable) as caught:
        await model.complete(ask())
    assert type(caught.value) is ProviderUnavailable
    assert (caught.value.provider, caught.value.model, caught.value.status) == (wire, MODEL, None)
    assert len(server.completion_requests) == 1


async def test_malformed_reply_is_unavailable(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Malformed())
    with pytest.raises(ProviderUnavailable, match="malformed") as caught:
        await model.complete(ask())
    assert (caught.value.provider, caught.value.model) == (wire, MODEL)


@pytest.mark.parametrize("body", [b"{}", b"[1, 2]", b'{"candidates": [], "choices": []}'])
async def test_a_reply_of_the_wrong_shape_is_malformed(
    make: MakeModel, server: FakeLLMServer, wire: Wire, body: bytes
) -> None:
    server.script(Malformed(body=body))
    with pytest.raises(ProviderUnavailable, match="malformed"):
        await make(wire).complete(ask())


async def test_non_json_reply_is_malformed(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    server.script(Malformed(body=b"<html>gateway</html>", content_type="text/html"))
    with pytest.raises(ProviderUnavailable, match="malformed"):
        await make(wire).complete(ask())


async def test_hang_times_out(make: MakeModel, server: FakeLLMServer, wire: Wire) -> None:
    model = make(wire)
    server.script(Hang())
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(Timeout) as caught:
        await model.complete(ask(timeout=0.3))

    assert loop.time() - started < 3.0
    assert (caught.value.provider, caught.value.model, caught.value.status) == (wire, MODEL, None)
    assert "0.3 s" in str(caught.value)
    assert len(server.completion_requests) == 1


async def test_config_timeout_applies_when_the_request_has_none(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire, timeout=0.3)
    server.script(Hang())
    with pytest.raises(Timeout):
        await model.complete(ask(timeout=30))


async def test_refused_connection_is_unavailable(make: MakeModel, wire: Wire) -> None:
    port = unused_port()
    url = f"http://127.0.0.1:{port}" + ("/v1" if wire == "openai" else "")
    model = make(wire, base_url=url)
    with pytest.raises(ProviderUnavailable) as caught:
        await model.complete(ask())
    assert type(caught.value) is ProviderUnavailable
    assert (caught.value.provider, caught.value.model, caught.value.status) == (wire, MODEL, None)
    with pytest.raises(ProviderUnavailable):
        await collect(model.stream(ask()))


# --- faults while streaming -----------------------------------------------------------


async def test_stream_error_status_maps_before_any_token(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(Fail(429, retry_after=1.5))
    events: list[StreamEvent] = []
    with pytest.raises(RateLimited) as caught:
        await collect_into(events, model.stream(ask()))
    assert events == []
    assert caught.value.retry_after == 1.5
    assert len(server.completion_requests) == 1


async def test_cut_stream_is_unavailable_after_the_tokens_sent(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(CutStream(after_chunks=2, text="alpha beta gamma delta"))
    events: list[StreamEvent] = []
    with pytest.raises(ProviderUnavailable) as caught:
        await collect_into(events, model.stream(ask()))
    assert "".join(e.content for e in events if isinstance(e, TokenEvent)) == "alpha beta "
    assert not any(isinstance(e, DoneEvent) for e in events)
    assert (caught.value.provider, caught.value.model) == (wire, MODEL)
    assert len(server.completion_requests) == 1  # no hidden resumption


async def test_stream_reset_is_unavailable(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    server.script(Reset(after_bytes=0))
    with pytest.raises(ProviderUnavailable):
        await collect(make(wire).stream(ask()))


async def test_malformed_stream_is_unavailable(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    server.script(Malformed(body=b'{"not": json'))
    with pytest.raises(ProviderUnavailable, match="malformed"):
        await collect(make(wire).stream(ask()))


async def test_stream_hang_times_out(make: MakeModel, server: FakeLLMServer, wire: Wire) -> None:
    server.script(Hang())
    with pytest.raises(Timeout):
        await collect(make(wire).stream(ask(timeout=0.3)))


async def test_stream_that_stops_between_chunks_times_out(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    server.script(Reply("slow slow slow", chunk_delay=1.0))
    with pytest.raises(Timeout):
        await collect(make(wire).stream(ask(timeout=0.3)))


@pytest.mark.parametrize(
    ("wire", "body", "error"),
    [
        ("openai", b'{"error": {"message": "boom", "type": "server_error"}}', ProviderUnavailable),
        (
            "openai",
            b'{"error": {"message": "slow down", "type": "rate_limit_error"}}',
            RateLimited,
        ),
        (
            "gemini",
            b'{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}',
            ProviderUnavailable,
        ),
    ],
)
async def test_error_event_inside_a_stream(
    make: MakeModel, server: FakeLLMServer, wire: Wire, body: bytes, error: type[LLMError]
) -> None:
    server.script(Malformed(body=body))
    with pytest.raises(error) as caught:
        await collect(make(wire).stream(ask()))
    assert type(caught.value) is error
    assert (caught.value.provider, caught.value.model) == (wire, MODEL)


# --- health ---------------------------------------------------------------------------


async def test_health_is_a_real_cheap_call(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    health = await make(wire).health()
    assert health.status is HealthStatus.HEALTHY
    assert health.provider == wire
    assert health.latency_ms is not None and health.latency_ms > 0
    assert server.requests[-1].wire == "models"
    assert server.completion_requests == []


async def test_health_is_down_on_a_refused_port(make: MakeModel, wire: Wire) -> None:
    model = make(wire, base_url=f"http://127.0.0.1:{unused_port()}")
    health = await model.health()
    assert health.status is HealthStatus.DOWN
    assert health.detail and "ProviderUnavailable" in health.detail
    assert len(health.detail) <= 200
    assert health.latency_ms is None


async def test_health_times_out_instead_of_hanging(
    make: MakeModel, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make(wire)

    async def hang(seconds: float) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr("nomosx.llm.providers._base.HEALTH_TIMEOUT", 0.05)
    monkeypatch.setattr(model, "_ping", hang)
    health = await model.health()
    assert health.status is HealthStatus.DOWN
    assert health.detail and health.detail.startswith("Timeout")


async def test_health_is_degraded_when_rate_limited(make: MakeModel, wire: Wire) -> None:
    model = make(wire)

    async def limited(seconds: float) -> None:
        raise RateLimited("slow down", provider=wire, model=MODEL)

    model._ping = limited  # type: ignore[method-assign]
    health = await model.health()
    assert health.status is HealthStatus.DEGRADED
    assert health.latency_ms is not None


# --- secrets --------------------------------------------------------------------------


async def test_the_api_key_never_appears_in_errors_or_reprs(
    make: MakeModel, server: FakeLLMServer, wire: Wire
) -> None:
    model = make(wire)
    server.script(
        Fail(401, message=f"Incorrect API key provided: {API_KEY}"),
        Fail(400, message=f"bad request with key={API_KEY}"),
    )
    for _ in range(2):
        with pytest.raises(LLMError) as caught:
            await model.complete(ask())
        assert API_KEY not in str(caught.value)
        assert API_KEY not in repr(caught.value)
        assert "[redacted]" in str(caught.value)
    assert API_KEY not in repr(model)
    assert API_KEY not in repr(model.config)
    assert API_KEY not in str(model.config)
    health = await make(wire, base_url=f"http://127.0.0.1:{unused_port()}").health()
    assert API_KEY not in (health.detail or "")


# --- building models ------------------------------------------------------------------


def test_make_model_picks_the_adapter_by_wire() -> None:
    from nomosx.llm.providers import AnthropicChatModel, GeminiChatModel, OpenAIChatModel

    expected = {
        "openai": OpenAIChatModel,
        "anthropic": AnthropicChatModel,
        "gemini": GeminiChatModel,
    }
    for name, cls in expected.items():
        config = ProviderConfig(name=name, wire=name, api_key="k")  # type: ignore[arg-type]
        model = make_model(config, "some-model")
        assert type(model) is cls
        assert (model.provider, model.model) == (name, "some-model")
        assert repr(model) == f"{cls.__name__}(provider={name!r}, model='some-model')"
        asyncio.run(model.aclose())


async def test_aclose_is_idempotent(make: MakeModel, wire: Wire) -> None:
    model = make(wire)
    await model.aclose()
    await model.aclose()


# --- vendor edge cases, with hand-made bodies -------------------------------------------


def sse(*events: str) -> bytes:
    """Several SSE events in one ``Malformed`` body (the server adds the first ``data: ``)."""
    return "\n\n".join(events).encode()


async def test_anthropic_keeps_assistant_turns(make: MakeModel, server: FakeLLMServer) -> None:
    await make("anthropic").complete(with_system())
    body = server.requests[-1].body
    assert body is not None
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_openai_reply_without_usage(make: MakeModel, server: FakeLLMServer) -> None:
    body = (
        b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": '
        b'[{"index": 0, "message": {"role": "assistant", "content": null}, '
        b'"finish_reason": "content_filter"}]}'
    )
    server.script(Malformed(body=body))
    response = await make("openai", name="llamacpp").complete(ask())
    assert response.content == ""
    assert response.usage == TokenUsage()
    assert response.finish_reason == "content_filter"


async def test_openai_stream_reads_only_the_first_choice(
    make: MakeModel, server: FakeLLMServer
) -> None:
    chunk = '{"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": '
    server.script(
        Malformed(
            body=sse(
                chunk + '[{"index": 0, "delta": {"content": "kept"}, "finish_reason": null}]}',
                "data: " + chunk + '[{"index": 1, "delta": {"content": "other"}}]}',
                "data: " + chunk + '[{"index": 0, "delta": {}, "finish_reason": "stop"}]}',
                "data: [DONE]",
            )
        )
    )
    events = await collect(make("openai").stream(ask()))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.response.content == "kept"
    assert done.response.usage == TokenUsage()  # this server sent no usage chunk


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (
            "openai",
            b'{"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", '
            b'"choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": null}]}',
        ),
        (
            "anthropic",
            b'{"type": "message_start", "message": {"id": "m", "type": "message", '
            b'"role": "assistant", "model": "m", "content": [], "stop_reason": null, '
            b'"usage": {"input_tokens": 3, "output_tokens": 1}}}',
        ),
        (
            "gemini",
            b'{"candidates": [{"content": {"parts": [{"text": "half"}], "role": "model"}}]}',
        ),
    ],
)
async def test_a_stream_that_ends_without_its_end_marker_is_unavailable(
    make: MakeModel, server: FakeLLMServer, wire: Wire, body: bytes
) -> None:
    server.script(Malformed(body=body))
    with pytest.raises(ProviderUnavailable, match="ended before the answer was complete"):
        await collect(make(wire).stream(ask()))


async def test_anthropic_stream_usage_from_message_delta(
    make: MakeModel, server: FakeLLMServer
) -> None:
    start = (
        '{"type": "message_start", "message": {"id": "m", "type": "message", "role": '
        '"assistant", "model": "m", "content": [], "stop_reason": null, "usage": '
        '{"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 5, '
        '"cache_creation_input_tokens": 2}}}'
    )
    delta = (
        '{"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": '
        '{"output_tokens": 12, "input_tokens": 10, "cache_read_input_tokens": 6}}'
    )
    text = (
        '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}'
    )
    server.script(
        Malformed(
            body=sse(
                start,
                "event: content_block_delta\ndata: " + text,
                "event: message_delta\ndata: " + delta,
                'event: message_stop\ndata: {"type": "message_stop"}',
            )
        )
    )
    events = await collect(make("anthropic").stream(ask()))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.response.content == "hi"
    assert done.response.finish_reason == "length"
    assert done.response.usage == TokenUsage(input_tokens=18, output_tokens=12, cached_tokens=6)


@pytest.mark.parametrize(
    ("body", "content", "finish"),
    [
        (b'{"promptFeedback": {"blockReason": "SAFETY"}}', "", "content_filter"),
        (
            b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "let me think", '
            b'"thought": true}, {"text": "answer"}]}, "finishReason": "STOP"}], '
            b'"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, '
            b'"thoughtsTokenCount": 3}}',
            "answer",
            "stop",
        ),
        (b'{"candidates": [{"finishReason": "FINISH_REASON_UNSPECIFIED"}]}', "", None),
        (b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}}]}', "x", None),
    ],
)
async def test_gemini_reply_shapes(
    make: MakeModel, server: FakeLLMServer, body: bytes, content: str, finish: str | None
) -> None:
    server.script(Malformed(body=body))
    response = await make("gemini").complete(ask())
    assert response.content == content
    assert response.finish_reason == finish
    if content == "answer":
        assert response.usage == TokenUsage(input_tokens=4, output_tokens=4)

"""``POST /api/chat`` and ``POST /api/chat/stream``: the LLM gateway over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from nomosx.api.auth import CurrentUser, owner_of
from nomosx.api.deps import AppDep, QuotaDep
from nomosx.api.schemas import ChatRequest, ChatResponse, Problem, Usage
from nomosx.api.sse import SSE_HEADERS, encode, leased, with_heartbeat
from nomosx.app import NomosX
from nomosx.auth.models import User
from nomosx.errors import ProviderUnavailable
from nomosx.llm.base import ChatModel
from nomosx.llm.types import (
    DoneEvent,
    ErrorEvent,
    LLMRequest,
    LLMResponse,
    Message,
    ProviderSwitched,
    TokenEvent,
)

router = APIRouter(prefix="/api/chat", tags=["chat"])

HEARTBEAT_SECONDS = 15.0

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the model or the request was refused"},
    402: {"model": Problem, "description": "the daily LLM budget is spent"},
    429: {"model": Problem, "description": "too many requests or open streams"},
    422: {"model": Problem, "description": "invalid body (field paths in error.fields)"},
    503: {"model": Problem, "description": "no language model configured or reachable"},
}

STREAM_DOC = """Server-sent events, one per line group:

- `event: token` / `data: {"content": "..."}` as the answer arrives;
- `event: provider_switched` / `data: {"fromProvider", "fromModel", "toProvider", "toModel",
  "reason"}` when a provider failed mid-answer and the next one continues it;
- last, either `event: done` / `data: {"provider", "model", "usage": {"inputTokens",
  "outputTokens", "cachedTokens"}, "costUsd", "latencyMs", "cached", "attempts"}` or
  `event: error` / `data: {"code", "message"}`.

Comment lines (`: ping`) are sent during long silences. Closing the connection cancels
the upstream model request."""


def _gateway(app: NomosX) -> ChatModel:
    if app.llm is None:
        raise ProviderUnavailable(
            "no language model is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY or "
            "GEMINI_API_KEY, or NOMOSX_LLM_CHAIN with a compatible server"
        )
    return app.llm


def _request(body: ChatRequest, user: User) -> LLMRequest:
    return LLMRequest(
        messages=[Message(role=m.role, content=m.content) for m in body.messages],
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        agent="chat",
        user_id=owner_of(user),
    )


def _out(response: LLMResponse) -> ChatResponse:
    return ChatResponse(
        content=response.content,
        provider=response.provider,
        model=response.model,
        usage=Usage(
            inputTokens=response.usage.input_tokens,
            outputTokens=response.usage.output_tokens,
            cachedTokens=response.usage.cached_tokens,
        ),
        costUsd=response.cost_usd,
        latencyMs=response.latency_ms,
        cached=response.cached,
        attempts=response.attempts,
    )


@router.post("", response_model=ChatResponse, responses=_ERRORS, summary="Chat, whole answer")
async def chat(body: ChatRequest, app: AppDep, user: CurrentUser, quota: QuotaDep) -> ChatResponse:
    gateway = _gateway(app)
    await quota.check_budget(user)
    return _out(await gateway.complete(_request(body, user)))


async def _frames(gateway: ChatModel, request: LLMRequest) -> AsyncIterator[bytes]:
    async for event in gateway.stream(request):
        if isinstance(event, TokenEvent):
            yield encode("token", {"content": event.content})
        elif isinstance(event, ProviderSwitched):
            yield encode(
                "provider_switched",
                {
                    "fromProvider": event.from_provider,
                    "fromModel": event.from_model,
                    "toProvider": event.to_provider,
                    "toModel": event.to_model,
                    "reason": event.reason,
                },
            )
        elif isinstance(event, DoneEvent):
            yield encode("done", _out(event.response).model_dump(exclude={"content"}))
        elif isinstance(event, ErrorEvent):
            yield encode("error", {"code": event.code, "message": event.message})


@router.post(
    "/stream",
    summary="Chat, streamed token by token (SSE)",
    description=STREAM_DOC,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **_ERRORS,
    },
    response_class=StreamingResponse,
)
async def chat_stream(
    body: ChatRequest, app: AppDep, user: CurrentUser, quota: QuotaDep
) -> StreamingResponse:
    gateway = _gateway(app)
    await quota.check_budget(user)
    request = _request(body, user)
    frames = with_heartbeat(_frames(gateway, request), HEARTBEAT_SECONDS)
    return StreamingResponse(
        await leased(frames, quota, user),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )

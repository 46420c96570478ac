"""``nomosx llm``: talk to the configured models, check them, and read the cost ledger."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from nomosx.cli.common import application, err, fail, handle_errors, out, run_async

if TYPE_CHECKING:
    from nomosx.app import NomosX
    from nomosx.llm.base import ChatModel
    from nomosx.llm.types import ProviderHealth
    from nomosx.store.repositories import CostTotal

llm_app = typer.Typer(help="Language models: ask, health, costs.", no_args_is_help=True)

NOT_CONFIGURED = (
    "no language model is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY or "
    "GEMINI_API_KEY (and optionally NOMOSX_LLM_CHAIN=provider:model,...), or a local "
    "server with NOMOSX_LLM__COMPATIBLE__OLLAMA__BASE_URL=http://localhost:11434/v1 and "
    "NOMOSX_LLM_CHAIN=ollama:llama3.2"
)


class GroupBy(StrEnum):
    agent = "agent"
    provider = "provider"
    model = "model"
    run = "run"


def _gateway(app: NomosX) -> ChatModel:
    if app.llm is None:
        raise fail(NOT_CONFIGURED)
    return app.llm


@llm_app.command("ask")
@handle_errors
def ask(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="provider:model (default: the chain).")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system prompt.")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.0,
) -> None:
    """Stream an answer from the configured models, token by token."""
    run_async(_ask(prompt, model, system, temperature))


async def _ask(prompt: str, model: str | None, system: str | None, temperature: float) -> None:
    from nomosx.llm.types import (
        DoneEvent,
        ErrorEvent,
        LLMRequest,
        Message,
        ProviderSwitched,
        TokenEvent,
    )

    messages = [Message(role="system", content=system)] if system else []
    messages.append(Message(role="user", content=prompt))
    request = LLMRequest(messages=messages, model=model, temperature=temperature, agent="cli")
    async with application(load_library=False) as app:
        async for event in _gateway(app).stream(request):
            if isinstance(event, TokenEvent):
                out.print(event.content, end="", markup=False, highlight=False, soft_wrap=True)
            elif isinstance(event, ProviderSwitched):
                err.print(
                    f"\n[yellow]switched from {event.from_provider} to {event.to_provider}[/]"
                )
            elif isinstance(event, ErrorEvent):
                out.print()
                raise fail(f"{event.code}: {event.message}")
            elif isinstance(event, DoneEvent):
                response = event.response
                cost = "unknown" if response.cost_usd is None else f"${response.cost_usd:.6f}"
                out.print()
                err.print(
                    f"{response.provider}:{response.model} · {response.usage.input_tokens} in, "
                    f"{response.usage.output_tokens} out · cost {cost}"
                    + (" · cached" if response.cached else ""),
                    highlight=False,
                    soft_wrap=True,
                )


@llm_app.command("health")
@handle_errors
def health() -> None:
    """Check each configured provider (a real, cheap request) and its circuit breaker."""
    checks = run_async(_health())
    from rich.table import Table

    table = Table()
    for column in ("provider", "status", "latency", "breaker", "detail"):
        table.add_column(column)
    for check in checks:
        latency = "" if check.latency_ms is None else f"{check.latency_ms:.0f} ms"
        table.add_row(
            check.provider, check.status.value, latency, check.breaker or "", check.detail or ""
        )
    out.print(table)
    if all(c.status.value == "down" for c in checks):
        raise typer.Exit(1)


async def _health() -> list[ProviderHealth]:
    async with application(load_library=False) as app:
        _gateway(app)  # a clear error when no model is configured
        return await app.llm_health()


@llm_app.command("costs")
@handle_errors
def costs(
    by: Annotated[
        GroupBy, typer.Option("--by", help="Group the ledger by this.")
    ] = GroupBy.provider,
    run: Annotated[str | None, typer.Option("--run", help="Only this pipeline run.")] = None,
) -> None:
    """Tokens and cost of every recorded LLM call, grouped."""
    totals = run_async(_costs(by.value, run))
    if not totals:
        err.print("no language-model call recorded yet")
        return
    from rich.table import Table

    table = Table()
    for column in (by.value, "calls", "tokens in", "tokens out", "cost (USD)"):
        table.add_column(column, justify="left" if column == by.value else "right")
    for total in totals:
        cost = "unknown" if total.cost_usd is None else f"{total.cost_usd:.6f}"
        table.add_row(
            total.group, str(total.calls), f"{total.tokens_in:,}", f"{total.tokens_out:,}", cost
        )
    out.print(table)


async def _costs(by: str, run_id: str | None) -> list[CostTotal]:
    async with application(load_library=False) as app:
        return await app.ledger.totals(by, run_id=run_id)

"""What the dashboard shows, written straight into the store: LLM calls on several days,
providers, models and agents (one without a known price), a failed run, a dead letter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nomosx.app import NomosX
from nomosx.errors import NoSourcesError
from nomosx.store.dead_letters import DeadLetterRepository
from nomosx.store.tables import LLMCallRow

# (days ago, provider, model, agent, cost in USD or None for an unknown price)
CALLS = (
    (0, "openai", "gpt-4o-mini", "reader", 0.012),
    (0, "openai", "gpt-4o-mini", "analyst", 0.030),
    (1, "anthropic", "claude-3-5-haiku-latest", "analyst", 0.050),
    (3, "openai", "gpt-4o", "expander", 0.004),
    (3, "ollama", "llama3.2", "reader", None),
)
PROVIDERS = ("openai", "anthropic", "ollama")
MODELS = ("gpt-4o-mini", "claude-3-5-haiku-latest", "gpt-4o", "llama3.2")
AGENTS = ("reader", "analyst", "expander")
FAILED_QUESTION = "Lattice gluon propagators in quantum chromodynamics?"
DEAD_QUESTION = "Why did this job fail every try?"


async def seed_dashboard(app: NomosX) -> None:
    now = datetime.now(UTC)
    async with app.db.session() as session:
        for days_ago, provider, model, agent, cost in CALLS:
            session.add(
                LLMCallRow(
                    agent=agent,
                    provider=provider,
                    model=model,
                    tokens_in=1000,
                    tokens_out=200,
                    cost_usd=cost,
                    latency_ms=120.0,
                    created_at=now - timedelta(days=days_ago),
                )
            )
    with pytest.raises(NoSourcesError):  # a run that fails: nothing in the library on this
        await app.brief(FAILED_QUESTION)
    await DeadLetterRepository(app.db).add(
        brief_id="00000000-0000-4000-8000-00000000dead",
        question=DEAD_QUESTION,
        owner_id=None,
        attempts=3,
        error_code="Timeout",
        error="the model did not answer within 120 s\nTraceback: (kept for the operator)",
    )

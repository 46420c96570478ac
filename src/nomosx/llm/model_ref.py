"""``"provider:model"`` strings, parsed once at the edge into objects."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass

from nomosx.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_model_ref(text: str, providers: Collection[str]) -> ModelRef:
    """Parse ``provider:model``; an unknown provider gets a "did you mean" suggestion."""
    provider, sep, model = text.strip().partition(":")
    provider = provider.strip().lower()
    model = model.strip()
    if not sep or not provider or not model:
        raise ConfigError(
            f"{text!r} is not a model reference: write provider:model, "
            "e.g. openai:gpt-4o-mini or anthropic:claude-3-5-haiku-latest"
        )
    if provider not in providers:
        known = ", ".join(sorted(providers)) or "none"
        close = difflib.get_close_matches(provider, list(providers), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown language-model provider {provider!r}{hint} (known: {known})")
    return ModelRef(provider, model)

"""Prices from ``genai-prices`` (no hand-kept table). An unknown model costs ``None``."""

from __future__ import annotations

from functools import lru_cache

from genai_prices import Usage, calc_price

from nomosx.llm.types import TokenUsage

# NomosX provider names → genai-prices provider ids. OpenAI-compatible servers (Ollama,
# vLLM, ...) are absent on purpose: their model names say nothing reliable about a price.
PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}


@lru_cache(maxsize=256)
def _known(provider_id: str, model: str) -> bool:
    try:
        calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model, provider_id=provider_id)
    except LookupError:
        return False
    return True


def cost_usd(provider: str, model: str, usage: TokenUsage) -> float | None:
    """The price of one call in USD, or ``None`` when the model's price is unknown.

    ``usage.input_tokens`` counts every input token, cached ones included;
    ``cached_tokens`` of them are priced at the provider's cache-read rate.
    """
    provider_id = PROVIDER_IDS.get(provider)
    if provider_id is None or not _known(provider_id, model):
        return None
    price = calc_price(
        Usage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=min(usage.cached_tokens, usage.input_tokens),
            output_tokens=usage.output_tokens,
        ),
        model_ref=model,
        provider_id=provider_id,
    )
    return float(price.total_price)

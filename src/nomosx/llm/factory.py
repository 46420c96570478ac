"""Builds the gateway from settings: adapters → instrumented → router → cache."""

from __future__ import annotations

from nomosx.breaker import CircuitBreaker
from nomosx.config import Settings
from nomosx.llm.base import ChatModel
from nomosx.llm.cache import CachedModel, MemoryResponseCache, ResponseCache
from nomosx.llm.ledger import CallLedger, InstrumentedModel
from nomosx.llm.providers import ProviderConfig, make_model
from nomosx.llm.retry import RetryPolicy
from nomosx.llm.router import Router, RouterLimits

_WIRES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}


def provider_config(settings: Settings, provider: str) -> ProviderConfig:
    key = settings.provider_key(provider)
    api_key = key.get_secret_value() if key is not None else None
    llm = settings.llm
    if provider in _WIRES:
        base_url = {
            "openai": llm.openai_base_url,
            "anthropic": llm.anthropic_base_url,
            "gemini": llm.gemini_base_url,
        }[provider]
        return ProviderConfig(
            name=provider,
            wire=_WIRES[provider],  # type: ignore[arg-type]
            api_key=api_key,
            base_url=base_url,
            timeout=llm.timeout,
        )
    compatible = llm.compatible[provider]
    return ProviderConfig(
        name=provider,
        wire="openai",
        api_key=api_key,
        base_url=compatible.base_url,
        timeout=llm.timeout,
    )


def build_gateway(
    settings: Settings,
    *,
    ledger: CallLedger | None = None,
    cache: ResponseCache | None = None,
) -> ChatModel | None:
    """The configured gateway, or ``None`` when no language model is configured."""
    chain = settings.model_chain
    if not chain:
        return None
    llm = settings.llm
    models = [
        InstrumentedModel(make_model(provider_config(settings, provider), model), ledger)
        for provider, model in chain
    ]
    router = Router(
        models,
        policy=RetryPolicy(
            attempts=llm.attempts,
            base=llm.backoff_base,
            max_delay=llm.backoff_max,
            max_retry_after=llm.max_retry_after,
        ),
        limits=RouterLimits(deadline=llm.deadline, health_ttl=llm.health_ttl),
        breakers={
            provider: CircuitBreaker(threshold=llm.breaker_threshold, cooldown=llm.breaker_cooldown)
            for provider, _ in chain
        },
    )
    if cache is None and llm.cache_entries > 0:
        cache = MemoryResponseCache(max_entries=llm.cache_entries)
    if cache is None:
        return router
    return CachedModel(router, cache, ledger=ledger, ttl=settings.cache.ttl_llm)

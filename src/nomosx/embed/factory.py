"""The embedder the settings ask for, wrapped in the cache when there is one."""

from __future__ import annotations

from nomosx.cache.base import Cache
from nomosx.config import Settings
from nomosx.embed.base import Embedder
from nomosx.embed.cached import CachedEmbedder

__all__ = ["build_embedder"]


def build_embedder(settings: Settings, cache: Cache | None) -> Embedder | None:
    """``local``: MiniLM shipped in a package (loaded on first use); ``openai``: the
    embeddings API (``OPENAI_API_KEY``); ``none``: no dense retrieval at all."""
    retrieval = settings.retrieval
    if retrieval.embedder == "none" or not retrieval.dense:
        return None
    inner: Embedder
    if retrieval.embedder == "openai":
        from nomosx.embed.openai import DEFAULT_OPENAI_EMBEDDING_MODEL, OpenAIEmbedder
        from nomosx.llm.providers.config import ProviderConfig

        key = settings.openai_api_key
        config = ProviderConfig(
            name="openai",
            wire="openai",
            api_key=key.get_secret_value() if key is not None else None,
            base_url=settings.llm.openai_base_url,
            timeout=settings.llm.timeout,
        )
        inner = OpenAIEmbedder(
            config,
            retrieval.embedding_model or DEFAULT_OPENAI_EMBEDDING_MODEL,
            dim=retrieval.embedding_dim,
            batch=max(retrieval.embedding_batch, 64),
        )
    else:
        from nomosx.embed.minilm import MiniLMEmbedder

        inner = MiniLMEmbedder(batch_size=retrieval.embedding_batch)
    return CachedEmbedder(inner, cache) if cache is not None else inner

"""``CachedEmbedder``: any embedder, its vectors kept in the cache's ``emb`` namespace.

Texts already embedded come from the cache (one ``get_many``); the misses are embedded in
one call to the wrapped embedder and stored. The cache never fails a call: when it is
down, every text is a miss and the embedder computes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nomosx.cache.adapters import EmbeddingCache
from nomosx.cache.base import Cache
from nomosx.embed.base import Embedder, EmbeddingKind, Vectors

__all__ = ["CachedEmbedder"]


class CachedEmbedder:
    def __init__(self, inner: Embedder, cache: Cache) -> None:
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self._views: dict[str, EmbeddingCache] = {}

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def dim(self) -> int:
        return self.inner.dim

    def _view(self, kind: EmbeddingKind) -> EmbeddingCache:
        view = self._views.get(kind)
        if view is None:
            view = self._views[kind] = EmbeddingCache(self.cache, f"{self.model}#{kind}")
        return view

    async def remember(
        self, texts: Sequence[str], vectors: Vectors, *, kind: EmbeddingKind = "document"
    ) -> None:
        """Store vectors computed elsewhere (e.g. shipped with the bundled library)."""
        if texts:
            await self._view(kind).set_many(texts, list(vectors))

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        view = self._view(kind)
        cached = await view.get_many(texts)
        missing: dict[str, list[int]] = {}
        for i, (text, vector) in enumerate(zip(texts, cached, strict=True)):
            if vector is not None and vector.shape == (self.dim,):
                out[i] = vector
            else:
                missing.setdefault(text, []).append(i)
        self.hits += len(texts) - sum(len(v) for v in missing.values())
        self.misses += len(missing)
        if missing:
            unique = list(missing)
            fresh = await self.inner.embed(unique, kind=kind)
            for text, vector in zip(unique, fresh, strict=True):
                out[missing[text]] = vector
            await view.set_many(unique, list(fresh))
        return out

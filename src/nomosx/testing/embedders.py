"""A deterministic embedder for tests: hashed bags of words (see ``fake_embedding``).

Texts that share words get similar vectors, so rankings over it behave like rankings.
``calls`` counts the texts it was asked to embed, for cache tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nomosx.embed.base import EmbeddingKind, Vectors
from nomosx.testing.fake_llm import fake_embedding

__all__ = ["HashingEmbedder"]


class HashingEmbedder:
    def __init__(self, dim: int = 64, *, model: str = "test:hashing") -> None:
        self._dim = dim
        self._model = model
        self.calls = 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def dim(self) -> int:
        return self._dim

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.asarray([fake_embedding(t, self._dim) for t in texts], dtype=np.float32)

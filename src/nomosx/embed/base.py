"""The embedder interface.

An embedder turns texts into L2-normalised float32 vectors, one row per text, so that a dot
product is the cosine similarity. ``kind`` lets asymmetric models treat queries and
documents differently; symmetric models (MiniLM) ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "EmbeddingKind", "Vectors", "normalise"]

EmbeddingKind = Literal["query", "document"]
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """``model`` names the weights (it keys the cache and the vector collection)."""

    @property
    def model(self) -> str: ...

    @property
    def dim(self) -> int: ...

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        """An ``(len(texts), dim)`` float32 array of unit vectors, in the order given."""
        ...


def normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return result

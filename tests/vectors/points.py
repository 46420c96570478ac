"""Deterministic points and the exact answers the vector store must give for them."""

from __future__ import annotations

import numpy as np

from nomosx.sources.base import SearchFilters
from nomosx.vectors import VectorHit, VectorPoint

DIM = 16
PROVIDERS = ("openalex", "arxiv", "crossref", "library")
TYPES = ("article", "preprint", None, "review")


def unit(rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)
    return out


def make_points(n: int, *, seed: int = 7, dim: int = DIM) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    vectors = unit(rng.standard_normal((n, dim)))
    return [
        VectorPoint(
            key=f"openalex:W{i}",
            vector=vectors[i],
            year=None if i % 17 == 0 else 1995 + i % 30,
            provider=PROVIDERS[i % 4],
            type=TYPES[(i // 4) % 4],
            open_access=(True, False, None)[i % 3],
            revision=i % 5,
        )
        for i in range(n)
    ]


def expected(
    points: list[VectorPoint], query: np.ndarray, k: int, filters: SearchFilters | None = None
) -> list[str]:
    """The exact answer: cosine by numpy over the points that ``filters.accepts``."""
    kept = [
        p
        for p in points
        if filters is None
        or filters.accepts(year=p.year, provider=p.provider, type=p.type, open_access=p.open_access)
    ]
    if not kept:
        return []
    scores = unit(np.stack([p.vector for p in kept])) @ unit(query)
    order = np.argsort(-scores, kind="stable")[:k]
    return [kept[i].key for i in order]


def keys(hits: list[VectorHit]) -> list[str]:
    return [h.key for h in hits]


def query_vector(seed: int) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal(DIM))

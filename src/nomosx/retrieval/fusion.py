"""Fusing rankings: reciprocal rank fusion and a weighted sum of normalised scores.

Both take one mapping ``key -> score`` per retriever (higher is better) and a weight per
retriever, and return ``key -> fused score``; a key missing from a retriever's mapping
gets nothing from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["fuse", "reciprocal_rank_fusion", "weighted_sum"]


def _ranked(scores: Mapping[str, float]) -> list[str]:
    return sorted(scores, key=lambda key: (-scores[key], key))


def reciprocal_rank_fusion(
    runs: Sequence[Mapping[str, float]], weights: Sequence[float], k: int = 60
) -> dict[str, float]:
    """``sum(w / (k + rank))`` over the runs, rank counted from 1 (Cormack et al., 2009)."""
    fused: dict[str, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        if weight == 0:
            continue
        for rank, key in enumerate(_ranked(run), start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def weighted_sum(runs: Sequence[Mapping[str, float]], weights: Sequence[float]) -> dict[str, float]:
    """``sum(w * (s - min) / (max - min))``: each run's scores min-max normalised first."""
    fused: dict[str, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        if weight == 0 or not run:
            continue
        low, high = min(run.values()), max(run.values())
        span = high - low
        for key, score in run.items():
            norm = (score - low) / span if span > 0 else 1.0
            fused[key] = fused.get(key, 0.0) + weight * norm
    return fused


def fuse(
    runs: Sequence[Mapping[str, float]],
    weights: Sequence[float],
    method: str,
    *,
    k: int = 60,
) -> dict[str, float]:
    if method == "rrf":
        return reciprocal_rank_fusion(runs, weights, k)
    if method == "weighted":
        return weighted_sum(runs, weights)
    raise ValueError(f"unknown fusion {method!r}: use 'rrf' or 'weighted'")

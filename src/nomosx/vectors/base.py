"""The vector store interface: one dense vector per source, searched by cosine similarity.

A point is keyed by the source's key (``<provider>:<provider id>``) and carries the fields
a search can filter on: year, provider, type and open access. ``revision`` lets an indexer
tell whether the stored vector was made from the current text of the source.

Filters are ``nomosx.sources.base.SearchFilters`` (``VectorFilter``), with the rule of
``SearchFilters.accepts``: a point without a year fails a year bound, an unknown
open-access status counts as closed, a point without a type matches only ``""``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nomosx.embed.base import Vectors
from nomosx.sources.base import SearchFilters, SourceHealth

__all__ = [
    "VectorFilter",
    "VectorHit",
    "VectorPoint",
    "VectorStore",
    "collection_name",
]

VectorFilter = SearchFilters


@dataclass(frozen=True, slots=True)
class VectorPoint:
    """One source's vector (1-D, the embedder's dimension) and its filterable fields."""

    key: str
    vector: Vectors
    year: int | None
    provider: str
    type: str | None
    open_access: bool | None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class VectorHit:
    """A search result: the source's key and the cosine similarity to the query."""

    key: str
    score: float


class VectorStore(Protocol):
    """Where source vectors live. Every failure is a ``VectorStoreError``."""

    async def ensure(self, dim: int) -> None:
        """Create the collection if missing; refuse one holding vectors of another ``dim``."""
        ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by key (in batches)."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove points by key; unknown keys are ignored."""
        ...

    async def search(
        self, vector: Vectors, k: int, filters: SearchFilters | None = None
    ) -> list[VectorHit]:
        """Up to ``k`` points most similar to ``vector`` that pass ``filters``, best first."""
        ...

    async def revisions(self, keys: Sequence[str]) -> dict[str, int]:
        """The stored ``revision`` of each key present (absent keys are left out)."""
        ...

    async def count(self) -> int: ...

    async def health(self) -> SourceHealth:
        """Never raises: an unreachable store is reported ``unhealthy``."""
        ...

    async def aclose(self) -> None: ...


_SLUG_MAX = 80


def collection_name(model: str, dim: int, *, prefix: str = "sources") -> str:
    """The collection for vectors of ``model`` at ``dim``: ``<prefix>-<model slug>-<dim>``.

    A new model or dimension gets a new collection, so vectors of different models never
    mix. The slug is the model name lowercased, each run of characters other than
    ``a-z 0-9 .`` made one ``-``; a slug over 80 characters is cut and ends with a hash of
    the whole name, so that two long names stay apart.
    """
    if dim < 1:
        raise ValueError(f"dimension must be positive, got {dim}")
    slug = re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-.") or "model"
    if len(slug) > _SLUG_MAX:
        digest = hashlib.blake2b(model.encode(), digest_size=4).hexdigest()
        slug = f"{slug[: _SLUG_MAX - 9].rstrip('-.')}-{digest}"
    return f"{prefix}-{slug}-{dim}"

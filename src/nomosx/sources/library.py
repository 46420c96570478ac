"""The ``library`` provider: lexical search over the local store, always available offline."""

from __future__ import annotations

import time

from nomosx.errors import StoreError
from nomosx.models import Source
from nomosx.search.library_index import LibraryIndex
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.store.repositories import SourceRepository


class LibraryProvider:
    name = "library"

    def __init__(self, repo: SourceRepository, index: LibraryIndex) -> None:
        self.repo = repo
        self.index = index

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        lexical = await self.index.get()
        # filters apply after retrieval: ask for more so that ``limit`` can still be met
        hits = lexical.search(query, limit if filters is None else limit * 5)
        found = await self.repo.get_many([h.key for h in hits])
        if filters is not None:
            found = [s for s in found if filters.matches(s)]
        return found[:limit]

    async def health(self) -> SourceHealth:
        started = time.perf_counter()
        try:
            count = await self.repo.count()
        except StoreError as exc:
            return SourceHealth(self.name, "unhealthy", detail=str(exc)[:200])
        latency = round((time.perf_counter() - started) * 1000, 3)
        return SourceHealth(
            self.name, "healthy" if count else "degraded", latency, detail=f"{count} sources"
        )

    async def aclose(self) -> None:
        return None

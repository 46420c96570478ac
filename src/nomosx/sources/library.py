"""The ``library`` provider: lexical search over the local store, always available offline."""

from __future__ import annotations

from nomosx.models import Source
from nomosx.search.library_index import LibraryIndex
from nomosx.store.repositories import SourceRepository


class LibraryProvider:
    name = "library"

    def __init__(self, repo: SourceRepository, index: LibraryIndex) -> None:
        self.repo = repo
        self.index = index

    async def search(self, query: str, limit: int) -> list[Source]:
        lexical = await self.index.get()
        hits = lexical.search(query, limit)
        return await self.repo.get_many([h.key for h in hits])

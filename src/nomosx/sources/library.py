"""The ``library`` provider: hybrid search over the local store, always available offline.

Lexical (BM25) hits and, when an embedder and a vector store are configured, dense hits
for the question's embedding are fused by reciprocal rank fusion; RANK then scores the
candidates properly. Either side alone still answers when the other is off or down.
"""

from __future__ import annotations

import time
from typing import Literal

from nomosx.config import RetrievalSettings
from nomosx.embed.base import Embedder
from nomosx.errors import StoreError
from nomosx.models import Source
from nomosx.retrieval.dense_index import DenseLibraryIndex
from nomosx.retrieval.fusion import reciprocal_rank_fusion
from nomosx.search.library_index import LibraryIndex
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.store.repositories import SourceRepository


class LibraryProvider:
    name = "library"

    def __init__(
        self,
        repo: SourceRepository,
        index: LibraryIndex,
        *,
        dense: DenseLibraryIndex | None = None,
        embedder: Embedder | None = None,
        retrieval: RetrievalSettings | None = None,
    ) -> None:
        self.repo = repo
        self.index = index
        self.retrieval = retrieval or RetrievalSettings()
        self.dense = dense if self.retrieval.dense and embedder is not None else None
        self.embedder = embedder

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        # filters apply after lexical retrieval: ask for more so that ``limit`` can be met
        depth = limit if filters is None else limit * 5
        runs: list[dict[str, float]] = []
        if self.retrieval.lexical or self.dense is None:
            lexical = await self.index.get()
            runs.append({h.key: h.score for h in lexical.search(query, depth)})
        if self.dense is not None and self.embedder is not None:
            vector = await self.embedder.embed([query], kind="query")
            hits = await self.dense.search(vector[0], limit, filters)
            runs.append({h.key: h.score for h in hits})
        if len(runs) == 1:
            keys = sorted(runs[0], key=lambda k: -runs[0][k])
        else:
            fused = reciprocal_rank_fusion(runs, [1.0, 1.0], k=self.retrieval.rrf_k)
            keys = sorted(fused, key=lambda k: (-fused[k], k))
        found = await self.repo.get_many(keys)
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
        detail = f"{count} sources"
        status: Literal["healthy", "degraded"] = "healthy" if count else "degraded"
        if self.dense is not None and self.dense.problem:
            status, detail = "degraded", f"{detail}; dense retrieval off: {self.dense.problem}"
        return SourceHealth(self.name, status, latency, detail=detail)

    async def aclose(self) -> None:
        if self.dense is not None:
            await self.dense.aclose()

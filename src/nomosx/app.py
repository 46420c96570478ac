"""The application: one object that wires settings, store, library and pipeline together.

The CLI and (later) the API open it once per process and call its methods; nothing below
this layer reads settings from the environment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from nomosx.cache.base import Cache, Namespace
from nomosx.cache.factory import build_cache
from nomosx.cache.keys import make_key
from nomosx.config import Settings
from nomosx.embed.factory import build_embedder
from nomosx.errors import NotFoundError
from nomosx.ingest.formats import Format
from nomosx.ingest.loader import IngestReport, ProgressCallback, ingest_file
from nomosx.llm.base import ChatModel
from nomosx.llm.ledger import CallLedger
from nomosx.llm.types import ProviderHealth
from nomosx.models import Brief, Source
from nomosx.observability.metrics import MeteredLedger, Metrics
from nomosx.pipeline.analyse import ExtractiveAnalyst
from nomosx.pipeline.edit import BriefEditor
from nomosx.pipeline.events import EventHandler
from nomosx.pipeline.expand import LLMQueryExpander
from nomosx.pipeline.guard import CitationGuard
from nomosx.pipeline.llm_analyse import FallbackAnalyst, LLMAnalyst
from nomosx.pipeline.llm_read import LLMReader
from nomosx.pipeline.orchestrator import BriefPipeline, BriefResult, validate_question
from nomosx.pipeline.protocols import Analyst, Reader
from nomosx.pipeline.rank import RelevanceRanker
from nomosx.pipeline.read import SentenceReader
from nomosx.pipeline.scout import ProviderScout, ScoutResult, keep_finds
from nomosx.retrieval.dense_index import DenseLibraryIndex, KnownVectors
from nomosx.retrieval.rerank import SentenceReranker
from nomosx.search.library_index import LibraryIndex
from nomosx.sources.base import SearchFilters, SourceEnricher, SourceProvider
from nomosx.sources.dedupe import DedupeIndexer, deduplicate
from nomosx.sources.library import LibraryProvider
from nomosx.store.db import Database
from nomosx.store.repositories import (
    EVERYONE,
    BriefRepository,
    BriefSummary,
    LLMCallRepository,
    Owner,
    RunRepository,
    SourceRepository,
)
from nomosx.store.users import UserRepository

if TYPE_CHECKING:
    import httpx

    from nomosx.vectors.base import VectorStore

BUNDLED_LIBRARY = "scifact.jsonl.gz"


@dataclass(frozen=True, slots=True)
class SearchHit:
    source: Source
    score: float
    matched: tuple[str, ...]


class NomosX:
    def __init__(self, settings: Settings, db: Database, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.db = db
        self.metrics = metrics
        self.sources = SourceRepository(db)
        self.briefs = BriefRepository(db)
        self.runs = RunRepository(db)
        self.users = UserRepository(db)
        self.index = LibraryIndex(
            self.sources, settings.index_dir, namespace=settings.resolved_database_url
        )
        self.ledger = LLMCallRepository(db)
        self.cache: Cache | None = build_cache(settings)
        self.embedder = build_embedder(settings, self.cache)
        self.dense: DenseLibraryIndex | None = None
        if self.embedder is not None:
            from nomosx.vectors.base import collection_name

            scope = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:8]
            self._collection = collection_name(self.embedder.model, self.embedder.dim)
            self.dense = DenseLibraryIndex(
                self.sources,
                self.embedder,
                self._open_vectors,
                settings.index_dir / f"dense-{scope}-{self._collection}.json",
            )
            self._vector_dir = settings.data_dir / "vectors" / scope
        self.editor = BriefEditor()
        self.llm: ChatModel | None = None
        if settings.llm_configured:
            # the provider SDKs are heavy to import: only when a model is configured
            from nomosx.llm.cache import SharedResponseCache
            from nomosx.llm.factory import build_gateway

            shared = SharedResponseCache(self.cache) if self.cache is not None else None
            ledger: CallLedger = self.ledger
            if metrics is not None:
                ledger = MeteredLedger(self.ledger, metrics)
            self.llm = build_gateway(settings, ledger=ledger, cache=shared)
        reader: Reader = SentenceReader()
        analyst: Analyst = ExtractiveAnalyst()
        if self.llm is not None:
            reader = LLMReader(self.llm, concurrency=settings.llm.read_concurrency)
            analyst = FallbackAnalyst(LLMAnalyst(self.llm), analyst)
        self.library_provider = LibraryProvider(
            self.sources,
            self.index,
            dense=self.dense,
            embedder=self.embedder,
            retrieval=settings.retrieval,
        )
        self._http: httpx.AsyncClient | None = None
        self.providers: dict[str, SourceProvider] = {"library": self.library_provider}
        self.enricher: SourceEnricher | None = None
        remote = [n for n in settings.pipeline.providers if n != "library"]
        if remote:
            from nomosx.sources.factory import build_enricher, build_remote, shared_client

            self._http = shared_client(settings)
            for provider in build_remote(remote, settings, client=self._http, cache=self.cache):
                self.providers[provider.name] = provider
            self.enricher = build_enricher(settings, client=self._http, cache=self.cache)
        chosen = [self.providers[n] for n in settings.pipeline.providers]
        self.pipeline = BriefPipeline(
            settings=settings,
            scout=ProviderScout(
                chosen,
                limit=settings.pipeline.candidates,
                expander=LLMQueryExpander(self.llm) if self.llm is not None else None,
                query_concurrency=settings.pipeline.query_concurrency,
            ),
            indexer=DedupeIndexer(),
            ranker=RelevanceRanker(
                settings.pipeline,
                self.index,
                retrieval=settings.retrieval,
                embedder=self.embedder,
                reranker=SentenceReranker(self.embedder) if self.embedder is not None else None,
            ),
            reader=reader,
            analyst=analyst,
            guard=CitationGuard(),
            editor=self.editor,
            briefs=self.briefs,
            runs=self.runs,
            ledger=self.ledger,
            library=self.sources if settings.sources.upsert else None,
            enricher=self.enricher,
        )

    @classmethod
    async def open(cls, settings: Settings, *, metrics: Metrics | None = None) -> NomosX:
        """Connect and migrate the store (no library work yet: see ``ensure_library``)."""
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
        except BaseException:
            await db.dispose()
            raise
        return cls(settings, db, metrics=metrics)

    async def _open_vectors(self) -> VectorStore:
        from nomosx.vectors.factory import open_vector_store

        key = self.settings.qdrant_api_key
        return await open_vector_store(
            self.settings.qdrant_url,
            key.get_secret_value() if key is not None else None,
            self._vector_dir / self.settings.retrieval.vector_store,
            self._collection,
            backend=self.settings.retrieval.vector_store,
        )

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        closer = getattr(getattr(self.embedder, "inner", self.embedder), "aclose", None)
        if closer is not None:
            await closer()
        if self._http is not None:
            await self._http.aclose()
        if self.llm is not None:
            await self.llm.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await self.db.dispose()

    async def __aenter__(self) -> NomosX:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def llm_health(self) -> list[ProviderHealth]:
        """Each configured model provider's health (cached by the router); none: ``[]``."""
        if self.llm is None:
            return []
        from nomosx.llm.cache import CachedModel
        from nomosx.llm.router import Router

        inner = self.llm.inner if isinstance(self.llm, CachedModel) else self.llm
        if isinstance(inner, Router):
            return await inner.provider_health()
        return [await inner.health()]

    async def library_is_empty(self) -> bool:
        return await self.sources.count() == 0

    async def ensure_library(
        self,
        on_progress: ProgressCallback | None = None,
        *,
        on_embed: ProgressCallback | None = None,
    ) -> IngestReport | None:
        """Load the bundled library into an empty store (once), with its vectors when the
        embedder is the one they were made with; ``None`` if nothing to do."""
        if not self.settings.bundled_library or not await self.library_is_empty():
            return None
        bundled = resources.files("nomosx.data") / BUNDLED_LIBRARY
        with resources.as_file(bundled) as path:
            report = await ingest_file(path, self.sources, on_progress=on_progress)
        await self.sync_vectors(known=self._bundled_vectors(), on_progress=on_embed)
        return report

    def _bundled_vectors(self) -> KnownVectors | None:
        if self.embedder is None:
            return None
        from nomosx.retrieval.bundled import load_bundled_vectors

        return load_bundled_vectors(self.embedder.model)

    async def ingest(
        self,
        path: Path,
        *,
        fmt: Format | None = None,
        on_progress: ProgressCallback | None = None,
        on_embed: ProgressCallback | None = None,
    ) -> IngestReport:
        """Import a file; new and changed sources are indexed and embedded before this
        returns, so they are searchable at once."""
        report = await ingest_file(path, self.sources, fmt=fmt, on_progress=on_progress)
        if report.inserted or report.updated:
            await self.index.get()
            await self.sync_vectors(on_progress=on_embed)
        return report

    async def sync_vectors(
        self, *, known: KnownVectors | None = None, on_progress: ProgressCallback | None = None
    ) -> int:
        """Embed what the vector store lacks; the number of sources applied."""
        if self.dense is None:
            return 0
        return await self.dense.sync(known=known, on_progress=on_progress)

    def provider(self, name: str) -> SourceProvider:
        """A source provider by name, built on first use if settings did not list it."""
        if name not in self.providers:
            from nomosx.sources.factory import build_enricher, build_remote, shared_client

            if self._http is None:
                self._http = shared_client(self.settings)
            for built in build_remote([name], self.settings, client=self._http, cache=self.cache):
                self.providers[built.name] = built
            if self.enricher is None:
                self.enricher = build_enricher(self.settings, client=self._http, cache=self.cache)
        return self.providers[name]

    async def scout(
        self, query: str, names: list[str], *, limit: int, filters: SearchFilters | None = None
    ) -> tuple[ScoutResult, list[Source]]:
        """SCOUT and INDEX with the named providers; what was found remotely is stored."""
        found = await ProviderScout(
            [self.provider(n) for n in names], limit=limit, filters=filters
        ).scout(query)
        kept = await keep_finds(
            found,
            deduplicate(found.sources),
            enricher=self.enricher,
            library=self.sources if self.settings.sources.upsert else None,
        )
        unique = kept.sources
        return found, unique

    async def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        index = await self.index.get()
        hits = index.search(query, limit)
        found = {s.key: s for s in await self.sources.get_many([h.key for h in hits])}
        return [
            SearchHit(source=found[h.key], score=h.score, matched=h.matched)
            for h in hits
            if h.key in found
        ]

    def brief_key(
        self, question: str, sources: int | None, revision: str, owner_id: str | None = None
    ) -> str:
        """Same question, same settings, same library state, same owner: the same brief."""
        return make_key(
            {
                "owner": owner_id,
                "question": validate_question(question).casefold(),
                "sources": sources or self.settings.pipeline.sources,
                "settings": self.settings.public_dict(),
                "library": revision,
            }
        )

    async def brief(
        self,
        question: str,
        *,
        sources: int | None = None,
        on_event: EventHandler | None = None,
        fresh: bool = False,
        brief_id: str | None = None,
        owner_id: str | None = None,
    ) -> BriefResult:
        """Write a brief, or return the stored one for the same question, state and owner
        (``fresh=True`` always writes a new one, under ``brief_id`` if given)."""
        revision = await self.sources.revision()
        key = self.brief_key(question, sources, revision, owner_id)
        if self.cache is not None and not fresh:
            hit = await self._cached_brief(key)
            if hit is not None:
                return hit
        result = await self.pipeline.run(
            question,
            sources=sources,
            on_event=on_event,
            library_revision=revision,
            brief_id=brief_id,
            owner_id=owner_id,
        )
        if self.cache is not None:
            await self.cache.set(Namespace.BRIEF, key, result.brief.id.encode())
        return result

    async def cached_brief(
        self, question: str, sources: int | None, owner_id: str | None = None
    ) -> BriefResult | None:
        """The stored brief for this question, state and owner, if the cache has one."""
        if self.cache is None:
            return None
        return await self._cached_brief(
            self.brief_key(question, sources, await self.sources.revision(), owner_id)
        )

    async def _cached_brief(self, key: str) -> BriefResult | None:
        assert self.cache is not None
        blob = await self.cache.get(Namespace.BRIEF, key)
        if blob is None:
            return None
        try:
            brief = await self.briefs.get(blob.decode())
            run = await self.runs.get(brief.lineage.run_id or "")
        except NotFoundError:  # deleted since: write it again
            await self.cache.delete(Namespace.BRIEF, key)
            return None
        return BriefResult(
            brief=brief, markdown=self.editor.render(brief, "md"), run=run, cached=True
        )

    async def get_brief(self, brief_id: str, *, owner: Owner = EVERYONE) -> Brief:
        return await self.briefs.get(brief_id, owner=owner)

    async def list_briefs(
        self, *, limit: int = 20, offset: int = 0, owner: Owner = EVERYONE
    ) -> list[BriefSummary]:
        return await self.briefs.list(limit=limit, offset=offset, owner=owner)

"""SCOUT: ask every configured provider at once, and each remote provider its queries
concurrently; one failing provider never fails the run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nomosx.errors import ConfigError, NomosXError, PipelineError
from nomosx.models import Source
from nomosx.pipeline.expand import QueryExpander
from nomosx.sources.base import SearchFilters, SourceEnricher, SourceProvider
from nomosx.store.repositories import SourceRepository

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ScoutResult:
    sources: list[Source]
    found: dict[str, int] = field(default_factory=dict)  # provider -> sources returned
    from_library: list[Source] = field(default_factory=list)  # already stored as they are
    failures: dict[str, str] = field(default_factory=dict)  # provider -> error message


class ProviderScout:
    """Asks every provider at once; within a remote provider, the question and its expanded
    queries run ``query_concurrency`` at a time (the provider's own rate limiter still
    spaces its requests). Nothing waits for the model to expand the question but the
    expanded queries themselves: the library searches the question alone, and every
    provider starts on the question at once."""

    def __init__(
        self,
        providers: Sequence[SourceProvider],
        *,
        limit: int,
        filters: SearchFilters | None = None,
        expander: QueryExpander | None = None,
        query_concurrency: int = 4,
    ) -> None:
        if not providers:
            raise PipelineError("no source provider is configured")
        if query_concurrency < 1:
            raise ConfigError(f"query_concurrency must be at least 1, not {query_concurrency}")
        self.providers = list(providers)
        self.limit = limit
        self.filters = filters
        self.expander = expander  # more queries for remote providers (the library: one)
        self.query_concurrency = query_concurrency

    async def scout(self, question: str) -> ScoutResult:
        results: dict[str, list[Source]] = {}
        failures: dict[str, str] = {}
        expansion = self._expansion(question)

        async def ask(provider: SourceProvider) -> None:
            try:
                more = None if provider.name == "library" else expansion
                results[provider.name] = await self._search(provider, question, more)
            except (NomosXError, OSError, TimeoutError) as exc:
                failures[provider.name] = str(exc) or type(exc).__name__
            except Exception as exc:  # a provider's bug fails that provider, not the run
                log.exception("source provider %s crashed", provider.name)
                failures[provider.name] = f"internal error: {type(exc).__name__}"

        try:
            async with asyncio.TaskGroup() as group:
                for provider in self.providers:
                    group.create_task(ask(provider))
        finally:
            if expansion is not None and not expansion.done():
                expansion.cancel()  # only when the scout itself was cancelled
        if len(failures) == len(self.providers):
            detail = "; ".join(f"{name}: {msg}" for name, msg in failures.items())
            raise PipelineError(f"every source provider failed ({detail})")
        sources = [s for p in self.providers for s in results.get(p.name, [])]
        return ScoutResult(
            sources=sources,
            from_library=results.get("library", []),
            found={name: len(found) for name, found in results.items()},
            failures=failures,
        )

    def _expansion(self, question: str) -> asyncio.Task[list[str]] | None:
        """The query expansion, started now so that the library need not wait for it;
        ``None`` when there is no expander or no remote provider to use its queries."""
        if self.expander is None or all(p.name == "library" for p in self.providers):
            return None
        return asyncio.create_task(self.expander.expand(question))

    async def _search(
        self,
        provider: SourceProvider,
        question: str,
        expansion: asyncio.Task[list[str]] | None,
    ) -> list[Source]:
        """What ``provider`` finds for the question and its expanded queries, in query
        order, ``query_concurrency`` searches at a time. The question is searched at once,
        while the model expands it (an expansion puts the question first anyway).

        A failing search fails the provider, as when the searches ran one by one: those
        not yet started are skipped, and the error raised is that of the first failing
        query in query order.
        """
        gate = asyncio.Semaphore(self.query_concurrency)
        failed = False

        async def one(query: str) -> list[Source]:
            nonlocal failed
            async with gate:
                if failed:
                    return []
                try:
                    return await provider.search(query, self.limit, self.filters)
                except Exception:
                    failed = True
                    raise

        first = asyncio.ensure_future(one(question))
        try:
            # shielded: the expansion is shared by every provider (the scout cancels it)
            queries = [] if expansion is None else await asyncio.shield(expansion)
        except BaseException:  # the expansion failed, or the scout was cancelled
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            raise
        more = [one(q) for q in queries if q != question]
        outcomes = await asyncio.gather(first, *more, return_exceptions=True)
        found: list[Source] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            found.extend(outcome)
        return found


@dataclass(slots=True)
class KeptFinds:
    sources: list[Source]  # the unique sources, enriched where it could be done
    enriched: int = 0
    stored: int = 0


async def keep_finds(
    found: ScoutResult,
    unique: list[Source],
    *,
    enricher: SourceEnricher | None,
    library: SourceRepository | None,
) -> KeptFinds:
    """What remote providers found (not what the library returned as stored): enriched
    with open-access links, then stored in the library for later, offline runs."""
    stored_already = {id(s) for s in found.from_library}
    kept = KeptFinds(sources=list(unique))
    if enricher is not None:
        fresh = [s for s in unique if id(s) not in stored_already and s.open_access is None]
        if fresh:
            fresh_ids = {id(s) for s in fresh}
            enriched = {s.key: s for s in await enricher.enrich(fresh)}
            kept.sources = [enriched.get(s.key, s) if id(s) in fresh_ids else s for s in unique]
            kept.enriched = sum(1 for s in enriched.values() if s.open_access is not None)
    if library is not None:
        remote = [s for s in kept.sources if id(s) not in stored_already]
        if remote:
            result = await library.upsert_many(remote)
            kept.stored = result.inserted + result.updated
    return kept

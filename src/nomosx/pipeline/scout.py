"""SCOUT: ask every configured provider at once; one failing provider never fails the run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nomosx.errors import NomosXError, PipelineError
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
    def __init__(
        self,
        providers: Sequence[SourceProvider],
        *,
        limit: int,
        filters: SearchFilters | None = None,
        expander: QueryExpander | None = None,
    ) -> None:
        if not providers:
            raise PipelineError("no source provider is configured")
        self.providers = list(providers)
        self.limit = limit
        self.filters = filters
        self.expander = expander  # more queries for remote providers (the library: one)

    async def scout(self, question: str) -> ScoutResult:
        results: dict[str, list[Source]] = {}
        failures: dict[str, str] = {}

        queries = [question]
        if self.expander is not None and any(p.name != "library" for p in self.providers):
            queries = await self.expander.expand(question)

        async def ask(provider: SourceProvider) -> None:
            try:
                mine = [question] if provider.name == "library" else queries
                found: list[Source] = []
                for query in mine:
                    found.extend(await provider.search(query, self.limit, self.filters))
                results[provider.name] = found
            except (NomosXError, OSError, TimeoutError) as exc:
                failures[provider.name] = str(exc) or type(exc).__name__
            except Exception as exc:  # a provider's bug fails that provider, not the run
                log.exception("source provider %s crashed", provider.name)
                failures[provider.name] = f"internal error: {type(exc).__name__}"

        async with asyncio.TaskGroup() as group:
            for provider in self.providers:
                group.create_task(ask(provider))
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

"""SCOUT: ask every configured provider at once; one failing provider never fails the run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nomosx.errors import NomosXError, PipelineError
from nomosx.models import Source
from nomosx.pipeline.expand import QueryExpander
from nomosx.sources.base import SearchFilters, SourceProvider

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

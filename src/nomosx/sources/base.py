"""The interface every academic source provider implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from nomosx.models import Source


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Optional narrowing of a search; a provider applies what its API supports and
    ``matches`` is the same rule applied to any source afterwards.

    ``providers`` keeps sources found by those providers (``Source.provider``); remote
    providers ignore it, the vector store and ``matches`` apply it."""

    year_from: int | None = None
    year_to: int | None = None
    open_access: bool | None = None
    types: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()

    def matches(self, source: Source) -> bool:
        return self.accepts(
            year=source.year,
            provider=source.provider,
            type=source.type,
            open_access=source.open_access,
        )

    def accepts(
        self,
        *,
        year: int | None,
        provider: str,
        type: str | None,
        open_access: bool | None,
    ) -> bool:
        """``matches`` on the fields alone: a missing year fails a year bound, an unknown
        open-access status counts as closed, a missing type matches only ``""``."""
        if self.year_from is not None and (year is None or year < self.year_from):
            return False
        if self.year_to is not None and (year is None or year > self.year_to):
            return False
        if self.open_access is not None and bool(open_access) != self.open_access:
            return False
        if self.providers and provider not in self.providers:
            return False
        return not self.types or (type or "") in self.types


@dataclass(frozen=True, slots=True)
class SourceHealth:
    provider: str
    status: Literal["healthy", "degraded", "unhealthy"]
    latency_ms: float | None = None
    detail: str | None = None


class SourceProvider(Protocol):
    """Finds sources for a query. ``name`` is how settings and reports refer to it."""

    @property
    def name(self) -> str: ...

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]: ...

    async def health(self) -> SourceHealth: ...

    async def aclose(self) -> None: ...


class SourceEnricher(Protocol):
    """Adds what a search result lacks (e.g. open-access links) without failing: a source
    it cannot enrich comes back unchanged."""

    async def enrich(self, sources: list[Source]) -> list[Source]: ...

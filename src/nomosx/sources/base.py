"""The interface every academic source provider implements."""

from __future__ import annotations

from typing import Protocol

from nomosx.models import Source


class SourceProvider(Protocol):
    """Finds sources for a query. ``name`` is how settings and reports refer to it."""

    name: str

    async def search(self, query: str, limit: int) -> list[Source]: ...

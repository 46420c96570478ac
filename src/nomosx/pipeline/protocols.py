"""The stage protocols of the pipeline, one method each.

An implementation needs no base class: any object with the right method is a stage. The
built-ins are ``ProviderScout`` (scout), ``DedupeIndexer`` (index), ``RelevanceRanker``
(rank), ``SentenceReader`` (read), ``ExtractiveAnalyst`` (analyse), ``CitationGuard``
(guard) and ``BriefEditor`` (edit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from nomosx.models import Brief, BriefSource, Draft, GuardReport, Reading, ScoredSource, Source
from nomosx.sources.base import SourceProvider

if TYPE_CHECKING:
    from nomosx.pipeline.scout import ScoutResult

__all__ = ["Analyst", "Editor", "Guard", "Indexer", "Ranker", "Reader", "Scout"]


class Scout(Protocol):
    """SCOUT: candidate sources for the question from every provider; ``providers`` names them."""

    @property
    def providers(self) -> Sequence[SourceProvider]: ...

    async def scout(self, question: str) -> ScoutResult: ...


class Indexer(Protocol):
    """INDEX: one source per work, duplicates across providers merged."""

    async def index(self, sources: Sequence[Source]) -> list[Source]: ...


class Ranker(Protocol):
    """RANK: at most ``limit`` sources related to the question, best first."""

    async def rank(
        self, question: str, sources: Sequence[Source], limit: int
    ) -> list[ScoredSource]: ...


class Reader(Protocol):
    """READ: per ranked source, the sentences that state claims, methods, results, limits.

    ``Reading.ref`` is the source's position in ``ranked`` plus one, its n in ``[SRC-n]``.
    """

    async def read(self, question: str, ranked: Sequence[ScoredSource]) -> list[Reading]: ...


class Analyst(Protocol):
    """ANALYSE: the brief's sections, every claim citing ``[SRC-n]``."""

    @property
    def name(self) -> str: ...

    async def analyse(
        self, question: str, ranked: Sequence[ScoredSource], readings: Sequence[Reading]
    ) -> Draft: ...


class Guard(Protocol):
    """GUARD: check every citation of a draft; return the (repaired) draft and the report."""

    async def guard(
        self, draft: Draft, sources: Sequence[BriefSource]
    ) -> tuple[Draft, GuardReport]: ...


class Editor(Protocol):
    """EDIT: render a finished brief."""

    def render(self, brief: Brief, fmt: Literal["md", "html", "json"]) -> str: ...

"""The stage protocols of the pipeline, one method each.

An implementation needs no base class: any object with the right method is a stage. The
built-ins are ``SentenceReader`` (read), ``ExtractiveAnalyst`` (analyse), ``CitationGuard``
(guard) and ``BriefEditor`` (edit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from nomosx.models import Brief, BriefSource, Draft, GuardReport, Reading, ScoredSource

__all__ = ["Analyst", "Editor", "Guard", "Reader"]


class Reader(Protocol):
    """READ: per ranked source, the sentences that state claims, methods, results, limits.

    ``Reading.ref`` is the source's position in ``ranked`` plus one, its n in ``[SRC-n]``.
    """

    async def read(self, question: str, ranked: Sequence[ScoredSource]) -> list[Reading]: ...


class Analyst(Protocol):
    """ANALYSE: the brief's sections, every claim citing ``[SRC-n]``."""

    name: str

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

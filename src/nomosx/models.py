"""Domain types shared by every layer: sources, readings, briefs, runs.

These are plain pydantic models, independent of storage (``nomosx.store`` maps them to
tables) and of rendering (``nomosx.pipeline.edit`` turns a ``Brief`` into Markdown, HTML
or JSON).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- sources


class Institution(_Model):
    name: str
    ror: str | None = None
    country: str | None = None


class Author(_Model):
    name: str
    orcid: str | None = None
    institutions: list[Institution] = Field(default_factory=list)


class Source(_Model):
    """One scholarly work, normalised from whichever provider found it.

    ``key`` is the library's stable identity: ``doi:<doi>`` when a DOI is known, else
    ``<provider>:<provider id>``. ``abstract`` is plain text (markup stripped).
    """

    key: str
    provider: str
    provider_ids: dict[str, str] = Field(default_factory=dict)
    doi: str | None = None
    arxiv_id: str | None = None
    title: str
    abstract: str | None = None
    year: int | None = None
    venue: str | None = None
    type: str | None = None
    authors: list[Author] = Field(default_factory=list)
    citation_count: int | None = None
    open_access: bool | None = None
    oa_status: str | None = None
    url: str | None = None
    pdf_url: str | None = None
    links: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    language: str | None = None
    quality_score: float | None = None
    novelty_score: float | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        """Title and abstract, the text that retrieval and reading work on."""
        return f"{self.title}\n{self.abstract or ''}".strip()


class ScoredSource(_Model):
    """A source ranked against a question. ``score`` is what the ranking sorted on."""

    source: Source
    relevance: float  # relevance to the question, normalised to [0, 1]
    lexical: float  # raw lexical (BM25) score
    dense: float | None = None  # cosine of question and source embeddings
    rerank: float | None = None  # the reranker's score, for the sources it reordered
    quality: float
    novelty: float
    score: float
    matched_terms: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- reading


class FindingKind(StrEnum):
    CLAIM = "claim"
    METHOD = "method"
    RESULT = "result"
    LIMITATION = "limitation"
    BACKGROUND = "background"


class Finding(_Model):
    """One sentence of a source, classified, with its exact character span in the abstract."""

    kind: FindingKind
    text: str
    start: int
    end: int
    relevance: float = 0.0  # relation of this sentence to the question, >= 0
    polarity: Literal["positive", "negative", "neutral"] = "neutral"


class Reading(_Model):
    """What READ took from one ranked source; ``ref`` is its n in ``[SRC-n]``."""

    ref: int
    source_key: str
    findings: list[Finding] = Field(default_factory=list)


# --------------------------------------------------------------------------- briefs


class SectionKey(StrEnum):
    EXECUTIVE_SUMMARY = "executive_summary"
    CONSENSUS = "consensus"
    DISAGREEMENTS = "disagreements"
    DEBATE = "debate"
    DEBATE_FOR = "debate_for"
    DEBATE_AGAINST = "debate_against"
    DEBATE_SYNTHESIS = "debate_synthesis"
    EVIDENCE_QUALITY = "evidence_quality"
    IMPLICATIONS = "implications"
    RISKS = "risks_and_limitations"
    OPEN_QUESTIONS = "open_questions"
    CHANGE_OUR_MIND = "what_would_change_our_mind"


class Statement(_Model):
    """One sentence of a brief.

    A ``claim`` asserts something about the world and must cite ``[SRC-n]``; a ``note``
    describes the brief itself (for example "No source disputes this.") and cites nothing.
    """

    text: str
    kind: Literal["claim", "note"] = "claim"


class Section(_Model):
    key: SectionKey
    title: str
    statements: list[Statement] = Field(default_factory=list)
    subsections: list[Section] = Field(default_factory=list)


class Draft(_Model):
    """What ANALYSE produces and GUARD checks: the brief's prose before it is stored."""

    title: str
    sections: list[Section]
    analyst: str  # "extractive" or "provider:model"


class Citation(_Model):
    """One ``[SRC-n]`` in one statement, with the source span that supports it."""

    ref: int
    section: SectionKey
    statement: str
    evidence: str | None = None
    start: int | None = None
    end: int | None = None
    support: float = 0.0


class GuardIssue(_Model):
    code: Literal["unknown_ref", "uncited", "unsupported", "cited_note", "empty"]
    section: SectionKey | None
    statement: str
    detail: str


class GuardReport(_Model):
    passed: bool
    statements: int = 0
    claims: int = 0
    citations: list[Citation] = Field(default_factory=list)
    issues: list[GuardIssue] = Field(default_factory=list)
    repairs: list[str] = Field(default_factory=list)


class BriefSource(_Model):
    """A source as numbered in a brief."""

    ref: int
    source: Source
    relevance: float
    quality: float
    score: float


class Lineage(_Model):
    question: str
    analyst: str
    providers: list[str]
    settings: dict[str, Any] = Field(default_factory=dict)
    library_revision: str | None = None
    run_id: str | None = None


class Brief(_Model):
    id: str
    question: str
    title: str
    mode: Literal["extractive", "llm"]
    sections: list[Section]
    sources: list[BriefSource]
    guard: GuardReport
    lineage: Lineage
    created_at: datetime = Field(default_factory=utcnow)

    def source_by_ref(self, ref: int) -> BriefSource | None:
        for s in self.sources:
            if s.ref == ref:
                return s
        return None


# --------------------------------------------------------------------------- runs


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StageRecord(_Model):
    name: str
    started_at: datetime
    duration_ms: float
    counts: dict[str, int] = Field(default_factory=dict)


class Usage(_Model):
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0  # None when any part of the cost is unknown


class LLMCall(_Model):
    """One attempt at a language-model call, as the cost ledger keeps it.

    Failed attempts and cache hits are recorded too: a hit costs 0 and ``saved_usd`` says
    what it would have cost; a stream cut mid-answer carries estimated token counts.
    """

    agent: str
    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float | None = None  # None: the model's price is unknown
    saved_usd: float | None = None
    latency_ms: float = 0.0
    cached: bool = False
    outcome: str = "ok"  # ok, cache_hit, or the error class (rate_limited, timeout, ...)
    error: str | None = None
    run_id: str | None = None
    user_id: str | None = None  # who the call was made for (budgets)


class PipelineRun(_Model):
    id: str
    question: str
    status: RunStatus = RunStatus.PENDING
    stages: list[StageRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    brief_id: str | None = None
    owner_id: str | None = None  # the user who asked (None: the CLI)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


Section.model_rebuild()

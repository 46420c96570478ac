"""Runs the stages of one brief in order, timing each and recording the run."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import sentry_sdk

from nomosx.config import Settings
from nomosx.errors import InputError, NomosXError, NoSourcesError
from nomosx.models import (
    Brief,
    BriefSource,
    Lineage,
    PipelineRun,
    RunStatus,
    StageRecord,
    Usage,
    utcnow,
)
from nomosx.observability.sentry import tag_scope
from nomosx.pipeline.context import current_run_id, current_user_id
from nomosx.pipeline.events import EventHandler, StageEvent
from nomosx.pipeline.protocols import Analyst, Editor, Guard, Indexer, Ranker, Reader, Scout
from nomosx.pipeline.scout import keep_finds
from nomosx.sources.base import SourceEnricher
from nomosx.store.repositories import (
    BriefRepository,
    LLMCallRepository,
    RunRepository,
    SourceRepository,
)

MAX_QUESTION_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class BriefResult:
    brief: Brief
    markdown: str
    run: PipelineRun
    cached: bool = False  # answered from the brief cache: ``run`` is the original run


def validate_question(question: str) -> str:
    cleaned = " ".join(question.split())
    if len(cleaned) < 3:
        raise InputError("the question is empty: ask something, e.g. 'Does X reduce Y?'")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise InputError(
            f"the question is {len(cleaned):,} characters long; the limit is {MAX_QUESTION_CHARS:,}"
        )
    if "\x00" in cleaned:  # PostgreSQL cannot store it: the brief would fail later
        raise InputError("the question contains a NUL character (U+0000): remove it")
    return cleaned


class BriefPipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        scout: Scout,
        indexer: Indexer,
        ranker: Ranker,
        reader: Reader,
        analyst: Analyst,
        guard: Guard,
        editor: Editor,
        briefs: BriefRepository,
        runs: RunRepository,
        ledger: LLMCallRepository | None = None,
        library: SourceRepository | None = None,
        enricher: SourceEnricher | None = None,
    ) -> None:
        self.settings = settings
        self.scout = scout
        self.indexer = indexer
        self.ranker = ranker
        self.reader = reader
        self.analyst = analyst
        self.guard = guard
        self.editor = editor
        self.briefs = briefs
        self.runs = runs
        self.ledger = ledger
        self.library = library  # where sources found remotely are kept for later runs
        self.enricher = enricher  # open-access links for what remote providers found

    async def run(
        self,
        question: str,
        *,
        sources: int | None = None,
        on_event: EventHandler | None = None,
        library_revision: str | None = None,
        brief_id: str | None = None,
        owner_id: str | None = None,
    ) -> BriefResult:
        """Run every stage; the brief is stored (under ``brief_id`` if given, owned by
        ``owner_id``) before this returns, and the run is recorded whatever happens."""
        question = validate_question(question)
        limit = sources or self.settings.pipeline.sources
        if not 1 <= limit <= 50:
            raise InputError(f"--sources must be between 1 and 50, not {limit}")
        run = PipelineRun(
            id=str(uuid.uuid4()),
            question=question,
            status=RunStatus.RUNNING,
            brief_id=brief_id or str(uuid.uuid4()),
            owner_id=owner_id,
        )
        await self.runs.save(run)
        tracker = _StageTracker(run, on_event)
        token = current_run_id.set(run.id)
        user_token = current_user_id.set(owner_id)
        if sentry_sdk.is_initialized():
            tag_scope(run_id=run.id)
        try:
            result = await self._stages(question, limit, run, tracker, library_revision)
        except NomosXError as exc:
            run.status = RunStatus.FAILED
            run.error = str(exc)
            run.finished_at = utcnow()
            run.usage = await self._usage(run.id)
            await self.runs.save(run)
            raise
        finally:
            current_run_id.reset(token)
            current_user_id.reset(user_token)
        return result

    async def _usage(self, run_id: str) -> Usage:
        """Tokens and cost of every LLM call of the run, from the ledger."""
        if self.ledger is None:
            return Usage()
        totals = await self.ledger.totals("run", run_id=run_id)
        if not totals:
            return Usage()
        total = totals[0]
        return Usage(
            tokens_in=total.tokens_in, tokens_out=total.tokens_out, cost_usd=total.cost_usd
        )

    async def _stages(
        self,
        question: str,
        limit: int,
        run: PipelineRun,
        tracker: _StageTracker,
        library_revision: str | None,
    ) -> BriefResult:
        async with tracker.stage("scout") as counts:
            found = await self.scout.scout(question)
            counts.update(found=len(found.sources), failed_providers=len(found.failures))
        async with tracker.stage("index") as counts:
            unique = await self.indexer.index(found.sources)
            counts.update(unique=len(unique), merged=len(found.sources) - len(unique))
            kept = await keep_finds(found, unique, enricher=self.enricher, library=self.library)
            unique = kept.sources
            if kept.enriched:
                counts.update(enriched=kept.enriched)
            if kept.stored:
                counts.update(stored=kept.stored)
        async with tracker.stage("rank") as counts:
            ranked = await self.ranker.rank(question, unique, limit)
            counts.update(ranked=len(ranked))
        if not ranked:
            raise NoSourcesError(
                f"no source in the library relates to the question {question!r}: import "
                "sources with 'nomosx ingest FILE' or rephrase the question"
            )
        async with tracker.stage("read") as counts:
            readings = await self.reader.read(question, ranked)
            counts.update(findings=sum(len(r.findings) for r in readings))
        async with tracker.stage("analyse") as counts:
            draft = await self.analyst.analyse(question, ranked, readings)
            counts.update(sections=len(draft.sections))
        numbered = [
            BriefSource(
                ref=i, source=s.source, relevance=s.relevance, quality=s.quality, score=s.score
            )
            for i, s in enumerate(ranked, start=1)
        ]
        async with tracker.stage("guard") as counts:
            draft, report = await self.guard.guard(draft, numbered)
            counts.update(
                citations=len(report.citations),
                issues=len(report.issues),
                repairs=len(report.repairs),
            )
        async with tracker.stage("edit") as counts:
            brief = Brief(
                id=run.brief_id or str(uuid.uuid4()),
                question=question,
                title=draft.title,
                mode="extractive" if draft.analyst == "extractive" else "llm",
                sections=draft.sections,
                sources=numbered,
                guard=report,
                lineage=Lineage(
                    question=question,
                    analyst=draft.analyst,
                    providers=[p.name for p in self.scout.providers],
                    settings=self.settings.public_dict(),
                    library_revision=library_revision,
                    run_id=run.id,
                ),
            )
            markdown = self.editor.render(brief, "md")
            await self.briefs.save(brief, markdown, owner_id=run.owner_id)
            counts.update(characters=len(markdown))
        run.status = RunStatus.SUCCEEDED
        run.brief_id = brief.id
        run.finished_at = utcnow()
        run.usage = await self._usage(run.id)
        await self.runs.save(run)
        return BriefResult(brief=brief, markdown=markdown, run=run)


class _StageTracker:
    """Times stages, records them on the run and tells the event handler."""

    def __init__(self, run: PipelineRun, on_event: EventHandler | None) -> None:
        self.run = run
        self.on_event = on_event

    @asynccontextmanager
    async def stage(self, name: str) -> AsyncIterator[dict[str, int]]:
        counts: dict[str, int] = {}
        started = utcnow()
        if self.on_event is not None:
            await self.on_event(StageEvent(stage=name, status="start"))
        t0 = time.perf_counter()
        yield counts
        duration = round((time.perf_counter() - t0) * 1000, 3)
        self.run.stages.append(
            StageRecord(name=name, started_at=started, duration_ms=duration, counts=counts)
        )
        if self.on_event is not None:
            await self.on_event(
                StageEvent(stage=name, status="end", counts=dict(counts), duration_ms=duration)
            )

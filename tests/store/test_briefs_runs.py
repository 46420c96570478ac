from __future__ import annotations

import pytest

from nomosx.errors import NotFoundError, StoreError
from nomosx.models import (
    Brief,
    BriefSource,
    GuardReport,
    Lineage,
    LLMCall,
    PipelineRun,
    RunStatus,
    Section,
    SectionKey,
    StageRecord,
    Statement,
    Usage,
    utcnow,
)
from nomosx.store.db import Database
from nomosx.store.repositories import (
    BriefRepository,
    LLMCallRepository,
    RunRepository,
)
from tests.factories import make_source


def make_brief(brief_id: str, run_id: str | None = None, question: str = "Q?") -> Brief:
    return Brief(
        id=brief_id,
        question=question,
        title="Evidence brief",
        mode="extractive",
        sections=[
            Section(
                key=SectionKey.EXECUTIVE_SUMMARY,
                title="Executive summary",
                statements=[Statement(text="Emissions fell by 5 to 15 percent. [SRC-1]")],
            )
        ],
        sources=[BriefSource(ref=1, source=make_source(), relevance=1.0, quality=0.8, score=0.9)],
        guard=GuardReport(passed=True, statements=1, claims=1),
        lineage=Lineage(
            question=question, analyst="extractive", providers=["library"], run_id=run_id
        ),
    )


async def test_brief_round_trip_and_listing(db: Database) -> None:
    runs, briefs = RunRepository(db), BriefRepository(db)
    run = PipelineRun(id="11111111-0000-0000-0000-000000000000", question="Q?")
    await runs.save(run)
    brief = make_brief("aaaaaaaa-0000-0000-0000-000000000001", run.id)
    await briefs.save(brief, "# md")
    assert await briefs.get(brief.id) == brief
    assert await briefs.get("aaaaaaaa") == brief  # unique prefix
    later = make_brief("bbbbbbbb-0000-0000-0000-000000000002", question="Later?")
    await briefs.save(later, "# md")
    listed = await briefs.list()
    assert [b.id for b in listed] == [later.id, brief.id]
    assert listed[1].sources == 1
    assert await briefs.count() == 2
    assert [b.id for b in await briefs.list(limit=1, offset=1)] == [brief.id]


async def test_unknown_or_ambiguous_brief_id(db: Database) -> None:
    briefs = BriefRepository(db)
    await briefs.save(make_brief("abcd0000-0000-0000-0000-000000000001"), "")
    await briefs.save(make_brief("abcd0000-0000-0000-0000-000000000002"), "")
    with pytest.raises(NotFoundError):
        await briefs.get("abcd0000")  # two briefs share it
    with pytest.raises(NotFoundError):
        await briefs.get("zzz")


async def test_run_is_updated_in_place(db: Database) -> None:
    runs = RunRepository(db)
    run = PipelineRun(id="22222222-0000-0000-0000-000000000000", question="Q?")
    await runs.save(run)
    run.status = RunStatus.SUCCEEDED
    run.stages.append(
        StageRecord(name="scout", started_at=utcnow(), duration_ms=3.5, counts={"found": 4})
    )
    run.usage = Usage(tokens_in=10, tokens_out=5, cost_usd=None)
    run.finished_at = utcnow()
    await runs.save(run)
    loaded = await runs.get(run.id)
    assert loaded.status is RunStatus.SUCCEEDED
    assert loaded.stages[0].counts == {"found": 4}
    assert loaded.usage.cost_usd is None
    with pytest.raises(NotFoundError):
        await runs.get("nope")


async def test_cost_ledger_totals(db: Database) -> None:
    ledger = LLMCallRepository(db)
    await ledger.record(
        LLMCall(
            agent="analyst",
            provider="openai",
            model="gpt-4o-mini",
            tokens_in=100,
            tokens_out=50,
            cost_usd=0.01,
        )
    )
    await ledger.record(
        LLMCall(
            agent="analyst",
            provider="openai",
            model="gpt-4o-mini",
            tokens_in=10,
            tokens_out=5,
            cost_usd=0.002,
        )
    )
    await ledger.record(
        LLMCall(agent="reader", provider="ollama", model="llama3", tokens_in=7, cost_usd=None)
    )
    by_agent = {t.group: t for t in await ledger.totals("agent")}
    assert by_agent["analyst"].calls == 2
    assert by_agent["analyst"].tokens_in == 110
    assert by_agent["analyst"].cost_usd == pytest.approx(0.012)
    assert by_agent["reader"].cost_usd is None  # unknown is never shown as $0
    by_provider = {t.group: t for t in await ledger.totals("provider")}
    assert set(by_provider) == {"openai", "ollama"}
    with pytest.raises(ValueError, match="group by"):
        await ledger.totals("colour")


async def test_unreachable_database_is_a_store_error() -> None:
    db = Database("postgresql+asyncpg://nobody:secret@127.0.0.1:1/none")
    try:
        with pytest.raises(StoreError) as info:
            await db.migrate()
        assert "secret" not in str(info.value)
        assert "127.0.0.1" in str(info.value)
    finally:
        await db.dispose()

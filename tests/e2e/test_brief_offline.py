"""End to end: the bundled library, the whole pipeline, the stored brief, on both stores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.errors import InputError, NoSourcesError
from nomosx.models import RunStatus
from nomosx.pipeline.events import STAGES, StageEvent
from nomosx.pipeline.guard import check

MARKER = re.compile(r"\[SRC-\d+(?:\s*[,;]\s*SRC-\d+)*\]")
QUESTIONS = (
    "Does vitamin D supplementation reduce the risk of fractures?",
    "Is obesity associated with an increased risk of cancer?",
)


async def _open(tmp_path: Path, database_url: str) -> NomosX:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    app = await NomosX.open(settings)
    report = await app.ensure_library()
    assert report is not None and report.inserted == 5183 and not report.errors
    assert await app.ensure_library() is None  # loaded once
    return app


@pytest.mark.timeout(300)
async def test_offline_brief_on_the_bundled_library(tmp_path: Path, db, database_url: str) -> None:  # type: ignore[no-untyped-def]
    app = await _open(tmp_path, database_url)
    try:
        for question in QUESTIONS:
            events: list[StageEvent] = []
            result = await app.brief(question, on_event=_recorder(events))
            brief = result.brief

            # progress: every stage started and ended, in order
            assert [e.stage for e in events if e.status == "end"] == list(STAGES)
            assert all(e.duration_ms is not None for e in events if e.status == "end")

            # sources: numbered 1..N, related to the question
            assert 3 <= len(brief.sources) <= 10
            assert [s.ref for s in brief.sources] == list(range(1, len(brief.sources) + 1))
            assert all(s.relevance > 0 for s in brief.sources)

            # every citation resolves and its evidence is a span of the cited abstract
            refs = {s.ref: s.source for s in brief.sources}
            assert brief.guard.passed
            assert brief.guard.citations
            for citation in brief.guard.citations:
                source = refs[citation.ref]
                assert citation.evidence
                if citation.start is not None and citation.end is not None:
                    assert source.abstract is not None
                    assert source.abstract[citation.start : citation.end] == citation.evidence
                assert citation.evidence in source.text
            claims = [
                st
                for section in brief.sections
                for sub in (section, *section.subsections)
                for st in sub.statements
                if st.kind == "claim"
            ]
            assert claims
            for claim in claims:
                assert MARKER.search(claim.text), claim.text
                for ref in map(int, re.findall(r"SRC-(\d+)", claim.text)):
                    quote = MARKER.sub("", claim.text).strip()
                    assert quote in (refs[ref].abstract or ""), (ref, quote)

            # the guard, run again on the stored brief, finds nothing
            assert check(_draft_of(brief), brief.sources).passed

            # extractive, and says so
            assert brief.mode == "extractive"
            assert "extractive" in result.markdown.lower()

            # stored, with its run
            stored = await app.get_brief(brief.id)
            assert stored == brief
            run = await app.runs.get(result.run.id)
            assert run.status is RunStatus.SUCCEEDED
            assert run.brief_id == brief.id
            assert [s.name for s in run.stages] == list(STAGES)
            assert brief.lineage.library_revision
            json.loads(app.editor.render(brief, "json"))
        assert len(await app.list_briefs()) == len(QUESTIONS)
    finally:
        await app.close()


def _recorder(events: list[StageEvent]):  # type: ignore[no-untyped-def]
    async def record(event: StageEvent) -> None:
        events.append(event)

    return record


def _draft_of(brief):  # type: ignore[no-untyped-def]
    from nomosx.models import Draft

    return Draft(title=brief.title, sections=brief.sections, analyst=brief.lineage.analyst)


async def test_unrelated_question_fails_clearly_and_is_recorded(tmp_path: Path) -> None:
    app = await _open(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(NoSourcesError, match="no source in the library relates"):
            await app.brief("zxqv blorptastic frumious bandersnatch?")
        with pytest.raises(InputError, match="empty"):
            await app.brief("   ")
        with pytest.raises(InputError, match="limit is 1,000"):
            await app.brief("why " * 400)
        with pytest.raises(InputError, match="between 1 and 50"):
            await app.brief("Does vitamin D reduce fractures?", sources=99)
        assert await app.list_briefs() == []
    finally:
        await app.close()


async def test_index_is_reused_and_updated_when_the_library_changes(tmp_path: Path) -> None:
    from tests.factories import make_source

    app = await _open(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        hits = await app.search("vitamin D fractures", 5)
        assert hits and app.index.builds == 1
        await app.search("obesity cancer", 5)
        assert app.index.builds == 1  # same revision: no rebuild
        new = make_source(
            "doi:10.9/zeppelin",
            title="Zeppelin airships and transatlantic travel",
            abstract="Zeppelin airships carried passengers across the Atlantic.",
        )
        await app.sources.upsert_many([new])
        hits = await app.search("zeppelin airships", 5)
        assert [h.source.key for h in hits] == ["doi:10.9/zeppelin"]
        assert (app.index.builds, app.index.applied) == (1, 1)  # added, not rebuilt
    finally:
        await app.close()

    # a new process finds the saved index instead of building it
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    )
    again = await NomosX.open(settings)
    try:
        assert await again.search("zeppelin", 1)
        assert again.index.builds == 0
    finally:
        await again.close()

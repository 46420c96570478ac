"""End to end with a language model: the real SDK against a loopback OpenAI server.

The pipeline reads each source and writes the brief through the gateway; the model's
answers are scripted from the real ranked sources, one of them with an invented citation
that the guard must remove. Tokens and cost land in the ledger under the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.pipeline.llm_analyse import brief_schema
from nomosx.store.repositories import LLMCallRepository
from nomosx.testing.fake_llm import Fail, FakeLLMServer, Reply

QUESTION = "Does vitamin D supplementation reduce the risk of fractures?"


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


@pytest.mark.timeout(300)
async def test_llm_brief_through_the_gateway(tmp_path: Path) -> None:
    async with FakeLLMServer(models=("gpt-4o-mini",)) as server:
        settings = Settings(
            data_dir=tmp_path / "data",
            openai_api_key="sk-test-e2e",
            llm_chain="openai:gpt-4o-mini",
            llm={"openai_base_url": server.openai_base_url, "read_concurrency": 1},
        )
        app = await NomosX.open(settings)
        try:
            await app.ensure_library()
            scouted = await app.pipeline.scout.scout(QUESTION)
            unique = await app.pipeline.indexer.index(scouted.sources)
            ranked = await app.pipeline.ranker.rank(QUESTION, unique, 3)
            assert len(ranked) == 3
            for scored in ranked:
                quote = _first_sentence(scored.source.abstract or "")
                server.script(Reply(json.dumps({"findings": [{"kind": "claim", "quote": quote}]})))
            body = {key: [] for key in brief_schema()["required"]}
            body.update(
                title="Vitamin D and fractures",
                executive_summary=[
                    f"{_first_sentence(ranked[0].source.abstract or '')} [SRC-1]",
                    f"{_first_sentence(ranked[1].source.abstract or '')} [SRC-2, SRC-1]",
                    "Vitamin D cures every fracture within a week. [SRC-7]",
                ],
            )
            server.script(Reply(json.dumps(body), input_tokens=3000, output_tokens=400))

            result = await app.brief(QUESTION, sources=3)
            brief = result.brief
            assert brief.mode == "llm"
            assert brief.lineage.analyst == "openai:gpt-4o-mini"
            assert brief.title == "Vitamin D and fractures"
            summary = [st.text for st in brief.sections[0].statements]
            assert not any("[SRC-7]" in text for text in summary)  # the invented citation is gone
            assert brief.guard.passed and brief.guard.repairs
            assert len(server.completion_requests) == 4  # three readings and one brief

            ledger = LLMCallRepository(app.db)
            by_agent = {t.group: t for t in await ledger.totals("agent", run_id=result.run.id)}
            assert by_agent["reader"].calls == 3 and by_agent["analyst"].calls == 1
            run = await app.runs.get(result.run.id)
            assert run.usage.tokens_in >= 3000 and run.usage.tokens_out >= 400
            assert run.usage.cost_usd is not None and run.usage.cost_usd > 0

            # the same question again: the stored brief, from the brief cache
            again = await app.brief(QUESTION, sources=3)
            assert again.cached and again.brief.id == brief.id
            assert len(server.completion_requests) == 4
            # rewritten (--fresh): every model call is answered by the response cache, at $0
            rewritten = await app.brief(QUESTION, sources=3, fresh=True)
            assert not rewritten.cached and rewritten.brief.mode == "llm"
            assert len(server.completion_requests) == 4
            assert (await app.runs.get(rewritten.run.id)).usage.cost_usd == 0.0
            saved = await ledger.totals("run", run_id=rewritten.run.id)
            assert saved and saved[0].calls == 4

            # provider down: the analyst falls back to the extractive brief, and says so
            server.script(*[Fail(503)] * 40)
            fallback = await app.brief("Is obesity associated with cancer risk?", sources=3)
            assert fallback.brief.mode == "extractive"
            assert fallback.brief.guard.passed
        finally:
            await app.close()

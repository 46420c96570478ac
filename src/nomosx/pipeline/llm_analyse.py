"""ANALYSE with a language model: structured output into the brief's sections.

The model sees the question and the ranked sources numbered ``[SRC-1]…[SRC-N]`` (as data),
and answers JSON with one list of sentences per section; every factual sentence must end
with its citations. GUARD then checks every citation against the sources.
``FallbackAnalyst`` keeps the no-key default: when the model fails, the extractive
analyst writes the brief, and the brief says it is extractive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from nomosx.errors import LLMError, PipelineError
from nomosx.llm.base import ChatModel
from nomosx.llm.types import LLMRequest, Message, ResponseFormat
from nomosx.models import Draft, Reading, ScoredSource, Section, SectionKey, Statement
from nomosx.pipeline.analyse import SECTION_TITLES
from nomosx.pipeline.context import current_run_id, current_user_id
from nomosx.pipeline.prompts import DATA_RULE, as_data, sources_block
from nomosx.pipeline.protocols import Analyst

log = logging.getLogger(__name__)

_TOP_LEVEL = (
    SectionKey.EXECUTIVE_SUMMARY,
    SectionKey.CONSENSUS,
    SectionKey.DISAGREEMENTS,
    SectionKey.DEBATE,
    SectionKey.EVIDENCE_QUALITY,
    SectionKey.IMPLICATIONS,
    SectionKey.RISKS,
    SectionKey.OPEN_QUESTIONS,
    SectionKey.CHANGE_OUR_MIND,
)
_DEBATE = (SectionKey.DEBATE_FOR, SectionKey.DEBATE_AGAINST, SectionKey.DEBATE_SYNTHESIS)
_FIELDS = [k for k in _TOP_LEVEL if k is not SectionKey.DEBATE] + list(_DEBATE)

_GUIDE = {
    SectionKey.EXECUTIVE_SUMMARY: "3-5 sentences answering the question directly",
    SectionKey.CONSENSUS: "what several sources agree on",
    SectionKey.DISAGREEMENTS: "where sources disagree or results conflict",
    SectionKey.DEBATE_FOR: "the strongest evidence for an affirmative answer",
    SectionKey.DEBATE_AGAINST: "the strongest evidence against it",
    SectionKey.DEBATE_SYNTHESIS: "how the two sides weigh up",
    SectionKey.EVIDENCE_QUALITY: "designs, sample sizes, and how much to trust them",
    SectionKey.IMPLICATIONS: "what follows for a decision maker",
    SectionKey.RISKS: "risks and limitations of acting on this evidence",
    SectionKey.OPEN_QUESTIONS: "what the sources leave unanswered",
    SectionKey.CHANGE_OUR_MIND: "which findings would overturn the conclusion",
}

SYSTEM_PROMPT = (
    "You are the analyst of NomosX, writing a decision brief for policy makers. Use only "
    "the numbered sources you are given. End every sentence that states a fact with its "
    "citations, written exactly like [SRC-3] or [SRC-2, SRC-5], citing only sources that "
    "say what the sentence says. Do not invent sources, numbers or findings; when the "
    "sources do not cover a section, return an empty list for it. " + DATA_RULE
)


def brief_schema() -> dict[str, Any]:
    sentences = {"type": "array", "items": {"type": "string"}}
    properties: dict[str, Any] = {"title": {"type": "string"}}
    for key in _FIELDS:
        properties[key.value] = {**sentences, "description": _GUIDE[key]}
    return {
        "type": "object",
        "properties": properties,
        "required": ["title", *(k.value for k in _FIELDS)],
        "additionalProperties": False,
    }


def _statements(items: object, key: SectionKey) -> list[Statement]:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise PipelineError(f"the model's {key.value!r} is not a list of sentences")
    statements = [Statement(text=" ".join(i.split())) for i in items if i.strip()]
    return statements or [Statement(text="The sources do not address this.", kind="note")]


def draft_from_json(text: str, analyst: str) -> Draft:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"the model's brief is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PipelineError("the model's brief is not a JSON object")

    def section(key: SectionKey) -> Section:
        return Section(
            key=key, title=SECTION_TITLES[key], statements=_statements(data.get(key.value, []), key)
        )

    sections = []
    for key in _TOP_LEVEL:
        if key is SectionKey.DEBATE:
            sections.append(
                Section(
                    key=key, title=SECTION_TITLES[key], subsections=[section(k) for k in _DEBATE]
                )
            )
        else:
            sections.append(section(key))
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise PipelineError("the model's brief has no title")
    return Draft(title=" ".join(title.split()), sections=sections, analyst=analyst)


class LLMAnalyst:
    def __init__(self, model: ChatModel, *, max_tokens: int = 4000) -> None:
        self.model = model
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"{self.model.provider}:{self.model.model}"

    def request(self, question: str, ranked: Sequence[ScoredSource]) -> LLMRequest:
        user = (
            f"Question: {as_data(question)}\n\n"
            f"Sources ({len(ranked)}), numbered as you must cite them:\n\n"
            f"{sources_block(ranked)}\n\n"
            "Write the brief as JSON with the keys of the schema."
        )
        return LLMRequest(
            messages=[
                Message(role="system", content=SYSTEM_PROMPT),
                Message(role="user", content=user),
            ],
            temperature=0.0,
            max_tokens=self.max_tokens,
            response_format=ResponseFormat(
                type="json_schema", json_schema=brief_schema(), name="brief"
            ),
            agent="analyst",
            run_id=current_run_id.get(),
            user_id=current_user_id.get(),
        )

    async def analyse(
        self, question: str, ranked: Sequence[ScoredSource], readings: Sequence[Reading]
    ) -> Draft:
        response = await self.model.complete(self.request(question, ranked))
        return draft_from_json(response.content, f"{response.provider}:{response.model}")


class FallbackAnalyst:
    """Try ``primary``; if the model fails or answers nonsense, ``fallback`` writes it."""

    def __init__(self, primary: Analyst, fallback: Analyst) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def name(self) -> str:
        return self.primary.name

    async def analyse(
        self, question: str, ranked: Sequence[ScoredSource], readings: Sequence[Reading]
    ) -> Draft:
        try:
            draft = await self.primary.analyse(question, ranked, readings)
        except (LLMError, PipelineError) as exc:
            log.warning("analyst %s failed, writing an extractive brief: %s", self.name, exc)
            return await self.fallback.analyse(question, ranked, readings)
        return draft

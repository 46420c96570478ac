"""READ with a language model: per source, the claim, method, result and limitation
sentences, each quoted exactly so that its span in the abstract is known.

A quote the model did not copy exactly is dropped (no finding without its span); a source
the model fails on is read by the sentence reader instead. Sources are read concurrently,
at most ``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from nomosx.errors import LLMError
from nomosx.llm.base import ChatModel
from nomosx.llm.types import LLMRequest, Message, ResponseFormat
from nomosx.models import Finding, FindingKind, Reading, ScoredSource, Source
from nomosx.pipeline.context import current_run_id, current_user_id
from nomosx.pipeline.prompts import DATA_RULE, as_data, source_block
from nomosx.pipeline.read import polarity, read_source, sentence_relevance
from nomosx.text.tokens import terms

log = logging.getLogger(__name__)

_KINDS = [k.value for k in FindingKind]

SYSTEM_PROMPT = (
    "You read one scientific abstract for a research brief. List its sentences that state "
    "a claim, a method, a result or a limitation, copying each sentence exactly as it is "
    "written (character for character), with its kind. " + DATA_RULE
)


def findings_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": _KINDS},
                        "quote": {"type": "string"},
                    },
                    "required": ["kind", "quote"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["findings"],
        "additionalProperties": False,
    }


def locate(abstract: str, quote: str) -> tuple[int, int] | None:
    """The span of ``quote`` in ``abstract``, tolerant of whitespace differences only."""
    quote = quote.strip()
    if not quote:
        return None
    at = abstract.find(quote)
    if at >= 0:
        return at, at + len(quote)
    pattern = r"\s+".join(re.escape(word) for word in quote.split())
    match = re.search(pattern, abstract)
    return (match.start(), match.end()) if match else None


def findings_from_json(text: str, question: str, source: Source) -> list[Finding]:
    data = json.loads(text)
    items = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("no 'findings' list")
    abstract = source.abstract or ""
    question_terms = frozenset(terms(question))
    found: list[Finding] = []
    seen: set[tuple[int, int]] = set()
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in _KINDS:
            continue
        span = locate(abstract, str(item.get("quote", "")))
        if span is None or span in seen:
            continue
        seen.add(span)
        sentence = abstract[span[0] : span[1]]
        found.append(
            Finding(
                kind=FindingKind(item["kind"]),
                text=sentence,
                start=span[0],
                end=span[1],
                relevance=sentence_relevance(question_terms, sentence),
                polarity=polarity(sentence),
            )
        )
    return sorted(found, key=lambda f: f.start)


class LLMReader:
    def __init__(self, model: ChatModel, *, concurrency: int = 4, max_tokens: int = 1500):
        self.model = model
        self.concurrency = concurrency
        self.max_tokens = max_tokens

    def request(self, question: str, source: Source) -> LLMRequest:
        return LLMRequest(
            messages=[
                Message(role="system", content=SYSTEM_PROMPT),
                Message(
                    role="user",
                    content=(
                        f"Research question (for context): {as_data(question)}\n\n"
                        f"{source_block(1, source)}\n\nAnswer as JSON."
                    ),
                ),
            ],
            temperature=0.0,
            max_tokens=self.max_tokens,
            response_format=ResponseFormat(
                type="json_schema", json_schema=findings_schema(), name="findings"
            ),
            agent="reader",
            run_id=current_run_id.get(),
            user_id=current_user_id.get(),
        )

    async def _read_one(
        self, gate: asyncio.Semaphore, question: str, ref: int, source: Source
    ) -> Reading:
        if not source.abstract:
            return Reading(ref=ref, source_key=source.key, findings=[])
        async with gate:
            try:
                response = await self.model.complete(self.request(question, source))
                findings = findings_from_json(response.content, question, source)
            except (LLMError, ValueError) as exc:
                log.warning(
                    "reading %s with the model failed (%s); reading it by sentence", source.key, exc
                )
                return read_source(frozenset(terms(question)), ref, source)
        return Reading(ref=ref, source_key=source.key, findings=findings)

    async def read(self, question: str, ranked: Sequence[ScoredSource]) -> list[Reading]:
        gate = asyncio.Semaphore(self.concurrency)
        return list(
            await asyncio.gather(
                *(
                    self._read_one(gate, question, ref, scored.source)
                    for ref, scored in enumerate(ranked, start=1)
                )
            )
        )

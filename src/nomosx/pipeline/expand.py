"""Query expansion for SCOUT: a language model rewrites the question into a few keyword
searches that academic search APIs answer better. Offline there is no expansion."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from nomosx.errors import LLMError
from nomosx.llm.base import ChatModel
from nomosx.llm.types import LLMRequest, Message, ResponseFormat
from nomosx.pipeline.context import current_run_id, current_user_id
from nomosx.pipeline.prompts import DATA_RULE, as_data

log = logging.getLogger(__name__)

MAX_QUERIES = 3

SYSTEM_PROMPT = (
    "You turn a research question into short keyword queries for academic search engines "
    "(OpenAlex, Crossref, Semantic Scholar, arXiv): 2 to 3 queries of 2 to 6 words, using "
    "the field's own terms and synonyms, no boolean operators. " + DATA_RULE
)


class QueryExpander(Protocol):
    async def expand(self, question: str) -> list[str]:
        """The queries to run remotely; the question itself comes first."""
        ...


def _schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
        "required": ["queries"],
        "additionalProperties": False,
    }


class LLMQueryExpander:
    def __init__(self, model: ChatModel) -> None:
        self.model = model

    async def expand(self, question: str) -> list[str]:
        request = LLMRequest(
            messages=[
                Message(role="system", content=SYSTEM_PROMPT),
                Message(role="user", content=f"<source>{as_data(question)}</source>"),
            ],
            temperature=0.0,
            max_tokens=200,
            response_format=ResponseFormat(
                type="json_schema", json_schema=_schema(), name="queries"
            ),
            agent="scout",
            run_id=current_run_id.get(),
            user_id=current_user_id.get(),
        )
        try:
            response = await self.model.complete(request)
            data = json.loads(response.content)
        except (LLMError, ValueError) as exc:
            log.warning("query expansion failed (%s): searching the question only", exc)
            return [question]
        raw = data.get("queries") if isinstance(data, dict) else None
        extra = [" ".join(q.split()) for q in raw or [] if isinstance(q, str) and q.strip()]
        return list(dict.fromkeys([question, *extra[:MAX_QUERIES]]))

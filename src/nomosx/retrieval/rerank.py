"""Rerankers: reorder the top candidates with a closer (slower) look at each.

No cross-encoder ships in a package that installs offline, so the built-in reranker reads
at the sentence level with the same embedding model: a source scores the best cosine
between the question and any one of its sentences (or its title). A claim is usually
supported by one sentence of an abstract; averaging the whole abstract into one vector
dilutes it, the best sentence does not. Sentence vectors go through the embedder, so
with the cache wrapper each sentence is embedded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from nomosx.embed.base import Embedder
from nomosx.text.sentences import split_sentences

__all__ = ["Candidate", "Reranker", "SentenceReranker"]

Candidate = tuple[str, str, str]  # key, title, abstract


class Reranker(Protocol):
    @property
    def name(self) -> str: ...

    async def score(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        """One relevance score per candidate, higher is better, in the order given."""
        ...


class SentenceReranker:
    name = "sentence-maxsim"

    def __init__(self, embedder: Embedder, *, max_sentences: int = 24) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences

    def _passages(self, title: str, abstract: str) -> list[str]:
        passages = [title.strip()] if title.strip() else []
        for start, end in split_sentences(abstract)[: self.max_sentences]:
            sentence = abstract[start:end].strip()
            if len(sentence) > 12:
                passages.append(sentence)
        return passages or [title or abstract or " "]

    async def score(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        per_doc = [self._passages(title, abstract) for _, title, abstract in candidates]
        flat = [p for passages in per_doc for p in passages]
        question = await self.embedder.embed([query], kind="query")
        vectors = await self.embedder.embed(flat, kind="document")
        sims = vectors @ question[0]
        scores = []
        start = 0
        for passages in per_doc:
            scores.append(float(np.max(sims[start : start + len(passages)])))
            start += len(passages)
        return scores

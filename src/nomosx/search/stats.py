"""Corpus statistics that relevance scoring needs, as a protocol."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol


class TermStatistics(Protocol):
    """Document frequencies of a corpus, as BM25 uses them."""

    avgdl: float

    def idf(self, term: str) -> float: ...


class LocalStatistics:
    """Statistics of a small set of documents, for when no library index exists."""

    def __init__(self, documents: Iterable[Sequence[str]]) -> None:
        docs = list(documents)
        self._n = len(docs)
        self._df: Counter[str] = Counter()
        for doc in docs:
            self._df.update(set(doc))
        self.avgdl = sum(len(d) for d in docs) / self._n if self._n else 0.0

    def idf(self, term: str) -> float:
        df = self._df.get(term, 0)
        return math.log1p((self._n - df + 0.5) / (df + 0.5))

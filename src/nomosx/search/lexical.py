"""BM25 over the library, on ``bm25s`` sparse matrices with NomosX's own terms.

The index is saved under the data directory, one folder per library revision, so a
process that starts later loads it (milliseconds) instead of rebuilding it (seconds).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt

from nomosx.text.tokens import terms

# BM25 parameters (Elasticsearch's defaults, as in the BEIR baselines); RANK uses the same.
K1 = 1.2
B = 0.75

# Bump whenever tokenisation or the saved layout changes: saved indexes of another version
# are ignored (and rebuilt) rather than misread.
INDEX_VERSION = "1"

_KEYS_FILE = "keys.json"
_META_FILE = "nomosx.json"


@dataclass(frozen=True, slots=True)
class LexicalHit:
    key: str
    score: float
    matched: tuple[str, ...]  # the question's terms found in the source
    coverage: float  # share of the question's idf mass those terms carry, in [0, 1]


class LexicalIndex:
    """An immutable BM25 index over ``(key, text)`` documents."""

    def __init__(self, keys: Sequence[str], retriever: bm25s.BM25, avgdl: float) -> None:
        self.keys = list(keys)
        self.avgdl = avgdl
        self._retriever = retriever
        vocab: dict[str, int] = getattr(retriever, "vocab_dict", None) or {}
        self._vocab = vocab
        if vocab:
            doc_freq = np.diff(np.asarray(retriever.scores["indptr"])).astype(np.float64)
        else:
            doc_freq = np.zeros(0)
        n = max(len(self.keys), 1)
        self._idf = np.log1p((n - doc_freq + 0.5) / (doc_freq + 0.5))
        self._unseen_idf = math.log1p((n + 0.5) / 0.5)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def build(cls, documents: Iterable[tuple[str, str]]) -> LexicalIndex:
        keys: list[str] = []
        corpus: list[list[str]] = []
        for key, text in documents:
            keys.append(key)
            corpus.append(terms(text) or [""])
        retriever = bm25s.BM25(k1=K1, b=B)
        if corpus:
            retriever.index(corpus, show_progress=False)
        avgdl = sum(len(doc) for doc in corpus) / len(corpus) if corpus else 0.0
        return cls(keys, retriever, avgdl)

    def save(self, folder: Path) -> None:
        """Write atomically: a complete folder appears or nothing does."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
        try:
            self._retriever.save(str(tmp), show_progress=False)
            (tmp / _META_FILE).write_text(json.dumps({"avgdl": self.avgdl}), encoding="utf-8")
            (tmp / _KEYS_FILE).write_text(json.dumps(self.keys), encoding="utf-8")
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / _KEYS_FILE).exists():  # pragma: no cover - lost a race oddly
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        keys = json.loads((folder / _KEYS_FILE).read_text(encoding="utf-8"))
        meta = json.loads((folder / _META_FILE).read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(folder), show_progress=False, mmap=False)
        return cls(keys, retriever, float(meta["avgdl"]))

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term the library never saw counts as rare."""
        token = self._vocab.get(term)
        return self._unseen_idf if token is None else float(self._idf[token])

    def search(self, query: str, k: int) -> list[LexicalHit]:
        """The ``k`` best documents for ``query``; documents matching no term never appear."""
        query_terms = list(dict.fromkeys(t for t in terms(query) if t in self._vocab))
        if not query_terms or not self.keys:
            return []
        per_term: list[npt.NDArray[np.float32]] = [
            np.asarray(self._retriever.get_scores([t])) for t in query_terms
        ]
        total = np.sum(per_term, axis=0)
        k = min(k, int(np.count_nonzero(total)))
        if k <= 0:
            return []
        top = np.argpartition(-total, k - 1)[:k]
        top = top[np.argsort(-total[top], kind="stable")]
        weights = [self.idf(t) for t in query_terms]
        mass = sum(weights) or 1.0
        hits = []
        for doc in top:
            matched = tuple(t for t, s in zip(query_terms, per_term, strict=True) if s[doc] > 0)
            coverage = sum(w for t, w in zip(query_terms, weights, strict=True) if t in matched)
            hits.append(
                LexicalHit(
                    key=self.keys[int(doc)],
                    score=float(total[doc]),
                    matched=matched,
                    coverage=coverage / mass if math.isfinite(coverage) else 0.0,
                )
            )
        return hits

"""Synthetic libraries for scale benchmarks: deterministic, any size, Zipf-distributed words.

    from synthetic import Corpus  # in a script of bench/, run as bench/<name>.py
    corpus = Corpus(vocabulary=50_000, length=150, seed=0)
    for key, title, abstract in corpus.documents(1_000_000): ...
    questions = corpus.queries(200)

Words are made of three consonant-vowel syllables (``bakolu``): never English stop words,
and left alone by the Snowball stemmer, so NomosX's ``terms`` keeps each word as one term
and the index sees the vocabulary asked for. Word ``r`` (0-based rank) is drawn with
probability proportional to ``1 / (r + 1) ** exponent``; documents have Poisson lengths
around ``length`` words, the first ``title_words`` of them the title. The same seed gives
the same corpus.

    .venv/bin/python bench/synthetic.py --docs 5 --vocabulary 1000    # a look at a few
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

_CONSONANTS = "bdfgklmnprtvz"
_VOWELS = "aou"  # no e, i, y: the stemmer rewrites endings with those
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


def vocabulary_words(size: int) -> list[str]:
    """``size`` distinct words, most frequent first."""
    syllables = len(_SYLLABLES)
    if size > syllables**4:
        raise ValueError(f"at most {syllables**4} words")
    width = 3 if size <= syllables**3 else 4
    words = ("".join(parts) for parts in itertools.product(_SYLLABLES, repeat=width))
    return list(itertools.islice(words, size))


@dataclass(frozen=True)
class Corpus:
    vocabulary: int = 50_000
    length: int = 150  # mean words per document (title and abstract)
    exponent: float = 1.0  # Zipf's s
    title_words: int = 12
    seed: int = 0
    _words: list[str] = field(init=False, repr=False, compare=False)
    _cdf: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights = 1.0 / np.arange(1, self.vocabulary + 1, dtype=np.float64) ** self.exponent
        object.__setattr__(self, "_words", vocabulary_words(self.vocabulary))
        object.__setattr__(self, "_cdf", np.cumsum(weights) / weights.sum())

    def _draw(self, rng: np.random.Generator, count: int) -> npt.NDArray[np.int64]:
        ranks = np.searchsorted(self._cdf, rng.random(count), side="right")
        return np.minimum(ranks, self.vocabulary - 1)

    def documents(self, n: int, *, start: int = 0) -> Iterator[tuple[str, str, str]]:
        """``(key, title, abstract)`` of documents ``start`` to ``start + n - 1``.

        Document ``i`` is the same whatever ``start`` (each block of 10,000 documents
        has its own random stream): ``start`` gives documents to add to a corpus.
        """
        block = 10_000
        first_block, last = start // block, start + n
        for number in itertools.count(first_block):
            low = number * block
            if low >= last:
                return
            rng = np.random.default_rng([self.seed, number])
            lengths = np.maximum(rng.poisson(self.length, block), self.title_words + 1)
            ranks = self._draw(rng, int(lengths.sum())).tolist()
            words = self._words
            offset = 0
            for j, size in enumerate(lengths.tolist()):
                i = low + j
                if start <= i < last:
                    doc = [words[r] for r in ranks[offset : offset + size]]
                    title = " ".join(doc[: self.title_words]).capitalize()
                    yield f"syn:{i}", title, " ".join(doc[self.title_words :]) + "."
                offset += size

    def texts(self, n: int, *, start: int = 0) -> Iterator[tuple[str, str]]:
        """``(key, title + "\\n" + abstract)``, as the lexical index reads a source."""
        for key, title, abstract in self.documents(n, start=start):
            yield key, f"{title}\n{abstract}"

    def queries(self, n: int, *, words: tuple[int, int] = (4, 10), skip: int = 20) -> list[str]:
        """``n`` questions of ``words`` words, from the same distribution without its
        ``skip`` most frequent words (which a real question's stop words would be)."""
        rng = np.random.default_rng([self.seed, 2**31])
        out = []
        for _ in range(n):
            count = int(rng.integers(words[0], words[1] + 1))
            ranks = [int(r) for r in self._draw(rng, count * 4) if r >= skip][:count]
            out.append(" ".join(self._words[r] for r in ranks) + "?")
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=3)
    parser.add_argument("--vocabulary", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = Corpus(vocabulary=args.vocabulary, seed=args.seed)
    for key, title, abstract in corpus.documents(args.docs):
        print(f"{key}: {title}\n    {abstract[:200]}...")
    print("queries:", corpus.queries(3))


if __name__ == "__main__":
    main()

"""Tokenisation used everywhere terms are compared: BM25, sentence relevance, the guard.

One function, ``terms``, so that the index, the reader and the guard agree on what a
term is: lower-cased alphanumeric runs, English stop words removed, Snowball-stemmed.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just let me more most my myself no nor not of off on once
    only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves may might must shall whether within without upon via among
    per thus however therefore whereas yet p n vs et al ie eg
    """.split()  # noqa: SIM905 - a word list reads better as prose
)

# Negations carry meaning for claims ("does not reduce"); they are kept as terms for the
# guard but are stop words for retrieval. ``terms(keep_negations=True)`` keeps them.
NEGATIONS: frozenset[str] = frozenset({"no", "not", "nor", "without"})

_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    result: str = _stemmer.stemWord(word)
    return result


def words(text: str) -> list[str]:
    """Lower-cased word tokens, hyphenated compounds split into their parts."""
    out: list[str] = []
    for token in _WORD.findall(text.lower()):
        if "-" in token:
            out.extend(part for part in token.split("-") if part)
        elif "'" in token:
            out.append(token.replace("'", ""))
        else:
            out.append(token)
    return out


_STOP_KEEPING_NEGATIONS = STOPWORDS - NEGATIONS
_MAX_CACHED_WORDS = 500_000
# word -> its term, or "" for a stop word; one table per stop list
_TERM_OF: tuple[dict[str, str], dict[str, str]] = ({}, {})


def terms(text: str, *, keep_negations: bool = False) -> list[str]:
    """Content terms of ``text``: stop words dropped, Snowball-stemmed, in order."""
    table = _TERM_OF[keep_negations]
    stop = _STOP_KEEPING_NEGATIONS if keep_negations else STOPWORDS
    out: list[str] = []
    for word in words(text):
        term = table.get(word)
        if term is None:
            if len(table) >= _MAX_CACHED_WORDS:
                table.clear()
            term = table[word] = "" if word in stop else stem(word)
        if term:
            out.append(term)
    return out


def term_set(text: str) -> frozenset[str]:
    return frozenset(terms(text))

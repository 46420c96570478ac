"""Quality and novelty scores of a source, each in [0, 1].

Quality is a weighted mean of five signals; an unknown signal takes a neutral value,
never the best one:

==============  ======  ==========================================================
signal          weight  value
==============  ======  ==========================================================
citations       0.30    log(1 + c) / log(1 + 1000), capped at 1 (unknown: 0.3)
venue and type  0.25    review / meta-analysis 1.0, article 0.8, proceedings 0.7,
                        book or chapter 0.6, preprint 0.5, other 0.4 (unknown: 0.5)
completeness    0.20    share of: abstract, DOI, authors, venue, year
recency         0.15    exp(-age / 10 years) (unknown year: 0.3, never "new")
open access     0.10    1.0 open, 0.0 closed (unknown: 0.5)
==============  ======  ==========================================================

Novelty ranks a source's year within the set being ranked: the newest gets 1, the oldest
0, a source with no year 0 (a missing year is not "new").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from nomosx.models import Source

_TYPE_SCORES = {
    "review": 1.0,
    "meta-analysis": 1.0,
    "systematic-review": 1.0,
    "article": 0.8,
    "journal-article": 0.8,
    "proceedings-article": 0.7,
    "book": 0.6,
    "book-chapter": 0.6,
    "preprint": 0.5,
    "posted-content": 0.5,
}
_REVIEW_WORDS = ("meta-analysis", "meta analysis", "systematic review")


def _citations(source: Source) -> float:
    if source.citation_count is None:
        return 0.3
    return min(1.0, math.log1p(max(source.citation_count, 0)) / math.log1p(1000))


def _venue_type(source: Source) -> float:
    title = source.title.lower()
    if any(word in title for word in _REVIEW_WORDS):
        return 1.0
    if source.type is None:
        return 0.5
    return _TYPE_SCORES.get(source.type.lower(), 0.4)


def _completeness(source: Source) -> float:
    present = (
        bool(source.abstract),
        bool(source.doi),
        bool(source.authors),
        bool(source.venue),
        source.year is not None,
    )
    return sum(present) / len(present)


def _recency(source: Source, this_year: int) -> float:
    if source.year is None:
        return 0.3
    return math.exp(-max(this_year - source.year, 0) / 10.0)


def _open_access(source: Source) -> float:
    if source.open_access is None:
        return 0.5
    return 1.0 if source.open_access else 0.0


def quality_score(source: Source, *, this_year: int | None = None) -> float:
    year = this_year if this_year is not None else datetime.now(UTC).year
    score = (
        0.30 * _citations(source)
        + 0.25 * _venue_type(source)
        + 0.20 * _completeness(source)
        + 0.15 * _recency(source, year)
        + 0.10 * _open_access(source)
    )
    return round(score, 4)


def novelty_scores(sources: Sequence[Source]) -> list[float]:
    years = [s.year for s in sources if s.year is not None]
    if not years:
        return [0.0 for _ in sources]
    low, high = min(years), max(years)
    span = high - low
    return [
        0.0 if s.year is None else (1.0 if span == 0 else (s.year - low) / span) for s in sources
    ]

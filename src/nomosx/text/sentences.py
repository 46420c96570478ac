"""Sentence spans of abstracts and prose, and the headings of structured abstracts.

``split_sentences`` returns character spans, so that every reader finding and every guard
citation can point at the exact text it came from. It is regex-driven and tuned for
scientific abstracts:

- no break after abbreviations ("et al.", "e.g.", "i.e.", "vs.", "Fig.", "approx.", ...),
  inside numbers ("1.2", "p = 0.016", "P<.05") or after initials ("J. Smith");
- a break after ``.``, ``?`` or ``!`` followed by white space and a capital, a digit or an
  opening bracket or quote;
- a break at glued boundaries such as ``"disabilities.A line"`` or ``"(n = 7).To"``, which
  SciFact and other scraped corpora contain;
- a break at a blank line, with or without punctuation.
"""

from __future__ import annotations

import re

from nomosx.text.tokens import STOPWORDS

__all__ = ["HEADING_WORDS", "split_heading", "split_sentences"]

_CLOSERS = "\"'”’)\\]"

# Terminal punctuation followed by white space and what may open a sentence.
_SPACED = re.compile(rf"[.?!]+[{_CLOSERS}]*(?=\s+[\"“'(\[]?[A-Z0-9])")
# Terminal punctuation glued to the next sentence: "disabilities.A line", "7).To", "kDa.In",
# "PCR.The". The left side is a word of two or more letters ending in lower case, a digit, a
# closing bracket or quote, or "%", and the right side a capital that is not itself an
# initial ("U.S.", "Ph.D."); after an acronym ("DNA.We") the capital must open a word.
_GLUED = re.compile(
    r"[.?!](?:"
    rf"(?:(?<=[A-Za-z][a-z][.?!])|(?<=[0-9)\]%\"'”’][.?!]))[.?!]*[{_CLOSERS}]*(?=[A-Z](?![.]))"
    rf"|(?<=[A-Z][A-Z][.?!])[.?!]*[{_CLOSERS}]*(?=[A-Z][a-z])"
    r")"
)
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_TOKEN_BEFORE = re.compile(r"(\S+)$")
_LETTERS_BEFORE = re.compile(r"[A-Za-z]+$")
_WORD_BEFORE = re.compile(r"([A-Za-z][\w'-]*)\W*$")
_WORD_AFTER = re.compile(r"\s*[\"“'(\[]?([A-Za-z]+)")
_INITIALS = re.compile(r"(?:[A-Z]\.)*[A-Z]")

# Lower-cased, without the final period. "etc." is left out on purpose: it ends sentences
# more often than not, and a break needs a capital after it anyway.
_ABBREVIATIONS = """
    al e.g eg i.e ie vs v cf ca approx fig figs eq eqs ref refs resp no nos vol pp
    suppl dept univ dr mr mrs prof st jr sr inc ltd co corp sp spp ssp var nov
    jan feb mar apr jun jul aug sep sept oct dec ph.d m.d u.s u.k e.u
    proc natl acad sci biol mol appl reprod chem biochem biophys immunol physiol pharmacol
    endocrinol neurosci oncol cardiol neurol pathol microbiol genet res med clin exp dev
"""
ABBREVIATIONS: frozenset[str] = frozenset(_ABBREVIATIONS.split())


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences of ``text``, in order.

    ``text[start:end]`` is the sentence without surrounding white space; empty stretches
    yield no span.
    """
    cuts = {m.end() for m in _GLUED.finditer(text) if not _glued_abbreviation(text, m.start())}
    for match in _SPACED.finditer(text):
        if _is_boundary(text, match.start(), match.end()):
            cuts.add(match.end())
    cuts.update(m.start() for m in _PARAGRAPH.finditer(text))
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in [*sorted(cuts), len(text)]:
        span = _strip(text, start, cut)
        if span is not None:
            spans.append(span)
        start = cut
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _glued_abbreviation(text: str, punct_start: int) -> bool:
    word = _LETTERS_BEFORE.search(text, max(0, punct_start - 20), punct_start)
    return word is not None and word.group(0).lower() in ABBREVIATIONS


def _is_boundary(text: str, punct_start: int, punct_end: int) -> bool:
    """Whether the punctuation at ``text[punct_start:punct_end]`` ends a sentence."""
    if text[punct_start] != ".":
        return True  # "?" and "!"
    token_match = _TOKEN_BEFORE.search(text, max(0, punct_start - 40), punct_start)
    if token_match is None:
        return True
    token = token_match.group(1).lstrip("([{\"'“")
    if token.lower() in ABBREVIATIONS:
        return False
    if len(token) == 1 and token.islower():
        return False  # "p. 5", "n. 3"
    if _INITIALS.fullmatch(token):
        return _initial_ends_sentence(text, token_match.start(), punct_end)
    return True


def _initial_ends_sentence(text: str, token_start: int, punct_end: int) -> bool:
    """Tell "vitamin D. The" (a sentence end) from "J. Smith" (an initial)."""
    after = _WORD_AFTER.match(text, punct_end)
    if after is not None and after.group(1).lower() in STOPWORDS:
        return True  # "... hepatitis B. We ..."
    before = _WORD_BEFORE.search(text, max(0, token_start - 40), token_start)
    if before is None:
        return False
    word = before.group(1)
    return word.islower() and word not in STOPWORDS  # "vitamin D." but not "by J."


# --------------------------------------------------------------------------- headings

_HEADINGS = """
    ABSTRACT ACQUISITION AIM AIMS ANALYSES ANALYSIS BACKGROUND CLINICAL CONCLUSION
    CONCLUSIONS CONTEXT CRITERIA DATA DESIGN DISCUSSION ELIGIBILITY ENDPOINT ENDPOINTS
    EVIDENCE EXPOSURE EXPOSURES EXTRACTION FINDINGS FUNDING HYPOTHESIS IMPLICATIONS
    IMPORTANCE INTERPRETATION INTERVENTION INTERVENTIONS INTRODUCTION KEY LIMITATIONS MAIN
    MATERIALS MEASURE MEASUREMENTS MEASURES METHOD METHODOLOGY METHODS OBJECTIVE OBJECTIVES
    OBSERVATIONS OUTCOME OUTCOMES PARTICIPANTS PATIENTS POPULATION PRIMARY PRINCIPAL
    PURPOSE QUESTION RATIONALE REGISTRATION RELEVANCE RESEARCH RESULTS REVIEW SEARCH
    SECONDARY SELECTION SETTING SETTINGS SIGNIFICANCE SOURCES STATISTICAL STRATEGY STUDY
    SUBJECTS SUMMARY SYNTHESIS TRIAL UNLABELLED EXPERIMENTAL RECENT MOTIVATION AVAILABILITY
    IMPLEMENTATION COLLECTION MATERIAL STATEMENT
"""
HEADING_WORDS: frozenset[str] = frozenset(_HEADINGS.split())
_HEADING_WORD = re.compile(r"\s*(?:[,/&]\s*)?(?:(?:AND|OR)\s+)?([A-Z]{3,})(?![\w-])")
_TITLE_HEADING = re.compile(r"([A-Z][a-z]{2,}(?: (?:and|or|[a-z]{3,}))*)\s*:")
_AFTER_HEADING = re.compile(r"(?::\s*|\s+)(?=\S)")


def split_heading(text: str, start: int = 0, end: int | None = None) -> tuple[str | None, int]:
    """The heading a structured-abstract sentence opens with, and where its body starts.

    ``split_heading(text, s, e)`` on ``"RESULTS Alendronate increased BMD"`` returns
    ``("RESULTS", s + 8)``. Only known heading words count ("METHODS", "DESIGN, SETTING,
    AND PARTICIPANTS", "Background:"), so an acronym that opens a sentence ("MRI showed
    ...") is kept.
    """
    end = len(text) if end is None else end
    heading_end: int | None = None
    pos = start
    while (word := _HEADING_WORD.match(text, pos, end)) is not None:
        if word.group(1) not in HEADING_WORDS:
            break
        heading_end = pos = word.end()
    if heading_end is None:
        titled = _TITLE_HEADING.match(text, start, end)
        if titled is None or titled.group(1).split()[0].upper() not in HEADING_WORDS:
            return None, start
        heading_end = titled.end(1)
    body = _AFTER_HEADING.match(text, heading_end, end)
    if body is None:
        return None, start
    return text[start:heading_end], body.end()

"""A brief's sources as BibTeX, written with bibtexparser v2.

Values are data, not LaTeX: every TeX special character of a title, a venue or a name is
escaped (``&`` → ``\\&``, ``{`` → ``\\{``, …), so a title can neither break the entry nor
inject macros, and the file always parses. DOIs and URLs are written verbatim (styles
print them with ``\\url``/``\\doi``, which take ``_``, ``%`` and ``#`` literally) except for
the characters that would unbalance the braces or end the value, which are
percent-encoded.

Citation keys are ``{first author's last name}{year}{first title word}`` in lowercase
ASCII (``lovelace2019carbon``), the habit of reference managers; the same sources in the
same order always get the same keys, and keys that collide get ``a``, ``b``, … appended.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from bibtexparser.entrypoint import write_string
from bibtexparser.library import Library
from bibtexparser.model import Entry, Field
from bibtexparser.writer import BibtexFormat

from nomosx.models import Brief, Source

__all__ = ["bibtex_entry_type", "brief_bibtex", "citation_keys", "sources_bibtex"]

# source type (as the providers and the importers normalise it) → BibTeX entry type
_ENTRY_TYPES = {
    "article": "article",
    "journal-article": "article",
    "review": "article",
    "systematic-review": "article",
    "meta-analysis": "article",
    "letter": "article",
    "editorial": "article",
    "proceedings-article": "inproceedings",
    "book": "book",
    "monograph": "book",
    "edited-book": "book",
    "book-chapter": "incollection",
    "book-section": "incollection",
    "proceedings": "proceedings",
    "dissertation": "phdthesis",
    "report": "techreport",
    "preprint": "misc",
    "posted-content": "misc",
    "dataset": "misc",
}
# where each entry type keeps the venue
_VENUE_FIELD = {
    "article": "journal",
    "inproceedings": "booktitle",
    "incollection": "booktitle",
    "book": "publisher",
    "proceedings": "publisher",
    "phdthesis": "school",
    "techreport": "institution",
    "misc": "howpublished",
}
_TEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "&": r"\&",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}
_TEX_SPECIAL = re.compile("|".join(re.escape(c) for c in _TEX_SPECIALS))
_URL_UNSAFE = {"{": "%7B", "}": "%7D", "\\": "%5C", " ": "%20", '"': "%22"}
_TOP_LEVEL_AND = re.compile(r"\band\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_SAFE_ID = re.compile(r"[^A-Za-z0-9-]")
_STOP_WORDS = frozenset({"a", "an", "the", "on", "of", "in", "for", "and", "to", "is", "are"})


def bibtex_entry_type(source: Source) -> str:
    """The BibTeX entry type for the source's type; ``misc`` when it is unknown."""
    return _ENTRY_TYPES.get((source.type or "").strip().lower(), "misc")


def escape(text: str) -> str:
    """``text`` with TeX's special characters escaped and whitespace collapsed."""
    return _TEX_SPECIAL.sub(lambda m: _TEX_SPECIALS[m.group(0)], " ".join(text.split()))


def _verbatim(value: str) -> str:
    """A DOI or URL as written, with what would break a braced value percent-encoded."""
    return "".join(_URL_UNSAFE.get(c, c) for c in value.strip())


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _WORD.findall(folded)


def _last_name(name: str) -> str:
    name = name.strip()
    if "," in name:  # "Last, First" as some providers store it
        return name.split(",", 1)[0]
    parts = name.split()
    return parts[-1] if parts else ""


def _base_key(source: Source) -> str:
    author = _ascii_words(_last_name(source.authors[0].name)) if source.authors else []
    words = [w for w in _ascii_words(source.title) if w not in _STOP_WORDS]
    key = "".join(author[-1:]) + (str(source.year) if source.year is not None else "")
    key += words[0] if words else ""
    return key or "source"


def citation_keys(sources: Sequence[Source]) -> list[str]:
    """One unique key per source, in order; colliding keys get ``a``, ``b``, … appended."""
    bases = [_base_key(s) for s in sources]
    counts: dict[str, int] = {}
    for base in bases:
        counts[base] = counts.get(base, 0) + 1
    taken: set[str] = set()
    keys: list[str] = []
    for base in bases:
        key = base
        # a shared base, or one that equals another's suffixed key, gets the next suffix
        if counts[base] > 1 or key in taken:
            key = next(k for k in _suffixed(base) if k not in taken)
        taken.add(key)
        keys.append(key)
    return keys


def _suffixed(base: str) -> Iterable[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    n = 0
    while True:
        suffix = ""
        i = n
        while True:  # a … z, aa, ab, …
            suffix = letters[i % 26] + suffix
            i = i // 26 - 1
            if i < 0:
                break
        yield base + suffix
        n += 1


def _author(name: str) -> str:
    escaped = escape(name)
    # "and" separates names in BibTeX: a name containing the word is kept whole
    return "{" + escaped + "}" if _TOP_LEVEL_AND.search(name) else escaped


def _entry(source: Source, key: str, note: str | None) -> Entry:
    entry_type = bibtex_entry_type(source)
    fields: list[tuple[str, str]] = []
    if source.authors:
        fields.append(("author", " and ".join(_author(a.name) for a in source.authors)))
    fields.append(("title", escape(source.title)))
    if source.venue:
        fields.append((_VENUE_FIELD.get(entry_type, "howpublished"), escape(source.venue)))
    if source.year is not None:
        fields.append(("year", str(source.year)))
    if source.doi:
        fields.append(("doi", _verbatim(source.doi)))
    url = source.url or source.pdf_url
    if url and url.lower().startswith(("http://", "https://")):
        fields.append(("url", _verbatim(url)))
    if source.arxiv_id:
        fields.extend([("eprint", _verbatim(source.arxiv_id)), ("archiveprefix", "arXiv")])
    if source.type in ("preprint", "posted-content") and not source.venue:
        fields.append(("howpublished", "Preprint"))
    if note:
        fields.append(("note", escape(note)))
    return Entry(entry_type, key, [Field(name, value) for name, value in fields])


def sources_bibtex(sources: Sequence[Source], notes: Sequence[str | None] | None = None) -> str:
    """BibTeX entries for ``sources`` in order, each with its optional ``note``."""
    keys = citation_keys(sources)
    given = list(notes) if notes is not None else [None] * len(sources)
    library = Library([_entry(s, k, n) for s, k, n in zip(sources, keys, given, strict=True)])
    layout = BibtexFormat()  # type: ignore[no-untyped-call]
    layout.indent = "  "
    layout.value_column = "auto"
    layout.block_separator = "\n"
    text: str = write_string(library, bibtex_format=layout)
    return text


def brief_bibtex(brief: Brief) -> str:
    """The brief's numbered sources as BibTeX, in ``[SRC-n]`` order, each entry noting the
    number it is cited by, under a comment naming the brief (the question is left out: an
    ``@`` in it would start an entry for most parsers)."""
    ordered = sorted(brief.sources, key=lambda s: s.ref)
    body = sources_bibtex([s.source for s in ordered], [f"Cited as [SRC-{s.ref}]" for s in ordered])
    return f"% Sources of the NomosX brief {_SAFE_ID.sub('', brief.id)}\n\n{body}"

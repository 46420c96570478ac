"""Pure normalisation of identifiers and text, so that one work found twice is keyed once.

Every function here is total: it returns ``None`` (or an empty string) for input it cannot
use instead of raising, except :func:`abstract_from_inverted_index`, which raises
``ValueError`` on a malformed index because that is a broken record, not a missing field.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = [
    "abstract_from_inverted_index",
    "normalise_arxiv_id",
    "normalise_doi",
    "normalise_language",
    "normalise_orcid",
    "normalise_ror",
    "normalise_title",
    "parse_year",
    "source_key",
    "strip_markup",
]

# --------------------------------------------------------------------------- identifiers

_DOI_PREFIXES = (
    "https://doi.org/",
    "http://doi.org/",
    "https://dx.doi.org/",
    "http://dx.doi.org/",
    "https://www.doi.org/",
    "http://www.doi.org/",
    "doi:",
)
_DOI = re.compile(r"10\.\d{4,9}/\S+")


def normalise_doi(value: str | None) -> str | None:
    """``10.1000/abc`` from any common spelling of a DOI, or ``None`` if it is not one.

    DOIs are case-insensitive, so the result is lowercased; ``https://doi.org/``,
    ``dx.doi.org`` and ``doi:`` prefixes are removed.
    """
    if value is None:
        return None
    doi = value.strip().lower()
    for prefix in _DOI_PREFIXES:
        if doi.startswith(prefix):
            doi = doi[len(prefix) :].strip()
            break
    return doi if _DOI.fullmatch(doi) else None


_ORCID = re.compile(r"(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])")


def normalise_orcid(value: str | None) -> str | None:
    """The bare ``0000-0002-1825-0097`` form of an ORCID iD (URL or bare), else ``None``."""
    if not value:
        return None
    text = value.strip().upper()
    for prefix in ("HTTPS://ORCID.ORG/", "HTTP://ORCID.ORG/", "ORCID:"):
        text = text.removeprefix(prefix)
    match = _ORCID.fullmatch(text.strip())
    return "-".join(match.groups()) if match else None


_ROR = re.compile(r"0[a-hj-km-np-tv-z0-9]{6}\d{2}")


def normalise_ror(value: str | None) -> str | None:
    """The bare ``01zkghx44`` form of a ROR id (URL or bare), else ``None``."""
    if not value:
        return None
    text = value.strip().lower()
    for prefix in ("https://ror.org/", "http://ror.org/", "ror.org/"):
        text = text.removeprefix(prefix)
    return text if _ROR.fullmatch(text) else None


_ARXIV = re.compile(
    r"(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|10\.48550/arxiv\.)?"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[a-z]{2})?/\d{7})(?:v\d+)?(?:\.pdf)?/?",
    re.IGNORECASE,
)


def normalise_arxiv_id(value: str | None) -> str | None:
    """``2101.00001`` (or ``hep-th/9901001``) from an arXiv id, URL or DOI, version dropped."""
    if not value:
        return None
    match = _ARXIV.fullmatch(value.strip())
    if match is None:
        return None
    ident = match.group("id")
    if "/" in ident:  # old style: archive name is lowercase, subject class uppercase
        archive, number = ident.split("/")
        name, _, subject = archive.partition(".")
        ident = f"{name.lower()}{'.' + subject.upper() if subject else ''}/{number}"
    return ident


_LANGUAGES = {
    "english": "en",
    "eng": "en",
    "german": "de",
    "deutsch": "de",
    "ger": "de",
    "deu": "de",
    "french": "fr",
    "français": "fr",
    "fre": "fr",
    "fra": "fr",
    "spanish": "es",
    "spa": "es",
    "italian": "it",
    "ita": "it",
    "portuguese": "pt",
    "por": "pt",
    "dutch": "nl",
    "chinese": "zh",
    "chi": "zh",
    "zho": "zh",
    "japanese": "ja",
    "jpn": "ja",
    "russian": "ru",
    "rus": "ru",
}


def normalise_language(value: str | None) -> str | None:
    """An ISO 639-1 code (``en``) from a code or a common language name, else ``None``."""
    if not value:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"[a-z]{2}", text):
        return text
    return _LANGUAGES.get(text)


_YEAR = re.compile(r"(?<![0-9])([0-9]{4})(?![0-9])")


def parse_year(value: object) -> int | None:
    """The first four-digit year in ``2020``, ``"2020/05/01/"`` or ``"2020-05"``, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    match = _YEAR.search(value)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- text


def normalise_title(title: str) -> str:
    """A comparison form of a title: no accents, casefolded, only letters and digits."""
    decomposed = unicodedata.normalize("NFKD", title)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", plain.casefold()).split())


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_BLOCK_TAGS = _names(
    "p div br hr li ul ol dl dt dd h1 h2 h3 h4 h5 h6 title sec section abstract blockquote "
    "table tr td th caption list list-item disp-formula fig label body header footer article "
    "html head trans-abstract"
)
_INLINE_TAGS = _names(
    "a abbr b big cite code em font i mark q s small span strike strong sub sup tt u var sc "
    "italic bold underline monospace inline-formula ext-link xref uri named-content "
    "styled-content math mi mo mn ms mtext mrow msub msup msubsup mfrac msqrt mroot mstyle "
    "mspace semantics mover munder munderover mtable mtr mtd mfenced mpadded mphantom menclose"
)
_TAG = re.compile(r"</?([A-Za-z][\w.-]*(?::[A-Za-z][\w.-]*)?)(?:\s[^<>]*)?/?>")
_DROPPED = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>"
    r"|<((?:[\w.-]+:)?(?:annotation|annotation-xml|script|style))\b[^<>]*>.*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_HEADING = re.compile(
    r"^\s*((?:<[^<>/!][^<>]*>\s*)*?)"
    r"<(?P<tag>(?:[\w.-]+:)?(?:title|h[1-6]))\b[^<>]*>\s*abstract\s*[:.]?\s*</(?P=tag)\s*>",
    re.IGNORECASE,
)


def _replace_tag(match: re.Match[str]) -> str:
    name = match.group(1).lower()
    prefix, _, local = name.rpartition(":")
    if local in _BLOCK_TAGS:
        return " "
    if local in _INLINE_TAGS or prefix:
        return ""
    return match.group(0)  # "x<y and y>z" is text, not a tag


def strip_markup(text: str) -> str:
    """Plain text from JATS, HTML or MathML: tags removed, entities decoded, spaces collapsed.

    A leading "Abstract" heading (``<jats:title>Abstract</jats:title>``) is dropped. Only
    known tag names (and any ``prefix:name`` tag) are removed, so a comparison such as
    ``x<y and y>z`` in plain text survives.
    """
    if "<" in text:
        text = _HEADING.sub(r"\1", text, count=1)
        text = _DROPPED.sub(" ", text)
        text = _TAG.sub(_replace_tag, text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def abstract_from_inverted_index(index: Mapping[str, Sequence[int]] | None) -> str | None:
    """Rebuild an OpenAlex abstract: each word at each of its positions, in position order.

    Raises ``ValueError`` if a position is not a non-negative integer.
    """
    if not index:
        return None
    placed: list[tuple[int, str]] = []
    for word, positions in index.items():
        if isinstance(positions, str | bytes):
            raise ValueError(f"positions of {word!r} must be a list of integers")
        for position in positions:
            if isinstance(position, bool) or not isinstance(position, int) or position < 0:
                raise ValueError(f"position {position!r} of {word!r} is not an integer >= 0")
            placed.append((position, word))
    placed.sort(key=lambda item: item[0])
    return " ".join(word for _, word in placed) or None


# --------------------------------------------------------------------------- keys


def source_key(
    *, doi: str | None, provider: str, provider_id: str | None, title: str, year: int | None
) -> str:
    """The stable identity of a source: by DOI, else by provider id, else by title and year."""
    normalised = normalise_doi(doi)
    if normalised:
        return f"doi:{normalised}"
    if provider_id:
        return f"{provider}:{provider_id}"
    basis = f"{normalise_title(title)}|{'' if year is None else year}"
    return f"title:{hashlib.sha256(basis.encode('utf-8')).hexdigest()[:16]}"

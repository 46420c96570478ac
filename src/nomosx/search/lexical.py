"""BM25 over the library on tantivy, with NomosX's own terms.

NomosX tokenises (``terms``: stop words dropped, Snowball stems); tantivy indexes those
terms joined by spaces with its whitespace tokenizer and scores with BM25 (k1 = 1.2,
b = 0.75, the parameters RANK uses). Queries are built term by term and never parsed: the
text of a question is never query syntax.

``LexicalIndex`` is a searchable snapshot; ``LexicalIndex.build`` makes one in memory
(evaluation, tests). ``DiskIndex`` is the library's index in a folder: changed in place
by one writer at a time (across processes too: tantivy's lock), each source replaced by
key, with the library revision it has applied recorded beside it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tantivy

from nomosx.text.tokens import terms

# BM25 parameters (Elasticsearch's defaults, as in the BEIR baselines); tantivy uses the
# same, and RANK scores with these.
K1 = 1.2
B = 0.75

# Bump whenever tokenisation or the index layout changes: a folder of another version is
# never read (the library index builds a new one and removes the old).
INDEX_VERSION = "2"

_KEY = "key"
_TEXT = "text"
_LENGTH = "length"
_META_FILE = "nomosx.json"
_MASK_BITS = 20  # query terms told apart per search by a score bit mask (exact in float32)
_BUILD_HEAP = 256_000_000  # indexing memory of a full build, split between its threads
_UPDATE_HEAP = 32_000_000  # ... and of an incremental update (one thread)


class IndexUnusable(Exception):
    """The folder holds no usable index of this version (missing, corrupt, other)."""


class WriterBusy(Exception):
    """Another writer, in this process or another, holds the index."""


@dataclass(frozen=True, slots=True)
class LexicalHit:
    key: str
    score: float
    matched: tuple[str, ...]  # the question's terms found in the source
    coverage: float  # share of the question's idf mass those terms carry, in [0, 1]


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(_KEY, stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field(_TEXT, tokenizer_name="whitespace", index_option="freq")
    builder.add_unsigned_field(_LENGTH, fast=True)
    return builder.build()


def _document(key: str, text: str) -> tantivy.Document:
    tokens = terms(text)
    doc = tantivy.Document()
    doc.add_text(_KEY, key)
    doc.add_text(_TEXT, " ".join(tokens))
    doc.add_unsigned(_LENGTH, len(tokens))
    return doc


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class LexicalIndex:
    """A searchable, unchanging view of an index: searches and statistics agree."""

    def __init__(self, searcher: tantivy.Searcher, schema: tantivy.Schema) -> None:
        self._searcher = searcher
        self._schema = schema
        self._n = searcher.num_docs
        self.avgdl = self._total_length() / self._n if self._n else 0.0
        self._unseen_idf = self._idf(0)

    def __len__(self) -> int:
        return self._n

    def _total_length(self) -> float:
        result = self._searcher.aggregate(
            tantivy.Query.all_query(), {"total": {"sum": {"field": _LENGTH}}}
        )
        return float(result["total"]["value"] or 0.0)

    @classmethod
    def build(cls, documents: Iterable[tuple[str, str]]) -> LexicalIndex:
        """An index of ``(key, text)`` documents, in memory."""
        schema = _schema()
        index = tantivy.Index(schema)
        writer = index.writer(_BUILD_HEAP, _threads())
        for key, text in documents:
            writer.add_document(_document(key, text))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return cls(index.searcher(), schema)

    def _idf(self, df: int) -> float:
        n = max(self._n, 1)
        df = min(df, n)  # replaced documents count until their segment is merged
        return math.log1p((n - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term the library never saw counts as rare."""
        return self._idf(self._searcher.doc_freq(_TEXT, term))

    def search(self, query: str, k: int) -> list[LexicalHit]:
        """The ``k`` best documents for ``query``; documents matching no term never appear."""
        if k <= 0 or not self._n:
            return []
        frequencies = {t: self._searcher.doc_freq(_TEXT, t) for t in dict.fromkeys(terms(query))}
        query_terms = [t for t, df in frequencies.items() if df > 0]
        if not query_terms:
            return []
        per_term = [
            tantivy.Query.term_query(self._schema, _TEXT, t, index_option="freq")
            for t in query_terms
        ]
        found = self._searcher.search(
            tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in per_term]),
            limit=min(k, self._n),
            count=False,
        ).hits
        if not found:
            return []
        keys = [self._searcher.doc(address)[_KEY][0] for _, address in found]
        matched = self._matched(query_terms, keys)
        weights = {t: self._idf(frequencies[t]) for t in query_terms}
        mass = sum(weights.values()) or 1.0
        hits = []
        for (score, address), key in zip(found, keys, strict=True):
            terms_in = matched.get((address.segment_ord, address.doc), ())
            coverage = sum(weights[t] for t in terms_in) / mass
            hits.append(
                LexicalHit(
                    key=key,
                    score=float(score),
                    matched=terms_in,
                    coverage=min(1.0, coverage) if math.isfinite(coverage) else 0.0,
                )
            )
        return hits

    def _matched(
        self, query_terms: Sequence[str], keys: Sequence[str]
    ) -> dict[tuple[int, int], tuple[str, ...]]:
        """Which of ``query_terms`` each document of ``keys`` contains, by address.

        One search over just those documents per 20 terms: term ``i`` adds ``2**i`` to a
        document's score, so the score is the bit mask of the terms the document has.
        """
        query = tantivy.Query
        these = query.const_score_query(
            query.boolean_query(
                [(tantivy.Occur.Should, query.term_query(self._schema, _KEY, k)) for k in keys]
            ),
            0.0,
        )
        found: dict[tuple[int, int], list[str]] = {}
        for start in range(0, len(query_terms), _MASK_BITS):
            chunk = query_terms[start : start + _MASK_BITS]
            masks = query.boolean_query(
                [(tantivy.Occur.Must, these)]
                + [
                    (
                        tantivy.Occur.Should,
                        query.const_score_query(
                            query.term_query(self._schema, _TEXT, t, index_option="basic"),
                            float(1 << bit),
                        ),
                    )
                    for bit, t in enumerate(chunk)
                ]
            )
            for score, address in self._searcher.search(masks, limit=len(keys), count=False).hits:
                mask = round(score)
                found.setdefault((address.segment_ord, address.doc), []).extend(
                    t for bit, t in enumerate(chunk) if mask >> bit & 1
                )
        return {address: tuple(ts) for address, ts in found.items()}


@dataclass(frozen=True, slots=True)
class _Meta:
    version: str
    revision: int


def _read_meta(folder: Path) -> _Meta | None:
    try:
        data = json.loads((folder / _META_FILE).read_text(encoding="utf-8"))
        return _Meta(version=str(data["version"]), revision=int(data["revision"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_meta(folder: Path, revision: int) -> None:
    """Replace the record atomically: a reader sees the old one or the new one."""
    tmp = folder / f".{_META_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"version": INDEX_VERSION, "revision": revision}), encoding="utf-8")
    os.replace(tmp, folder / _META_FILE)


class DiskIndex:
    """The index in ``folder``, and the library revision it has applied (``revision``).

    The revision is recorded after each commit, so the index always holds at least what
    it says: replaying the sources written since (replace by key) is harmless.
    """

    def __init__(self, folder: Path, index: tantivy.Index, revision: int) -> None:
        self.folder = folder
        self._index = index
        self._schema = index.schema
        self.revision = revision

    @classmethod
    def open(cls, folder: Path) -> DiskIndex:
        """The complete index in ``folder``; ``IndexUnusable`` if there is none."""
        meta = _read_meta(folder)
        if meta is None or meta.version != INDEX_VERSION:
            raise IndexUnusable(f"no index of version {INDEX_VERSION} in {folder}")
        try:
            index = tantivy.Index.open(str(folder))
            index.config_reader("manual")
            index.searcher().doc_freq(_TEXT, "")  # the fields this version writes exist
        except (ValueError, OSError, RuntimeError) as exc:
            raise IndexUnusable(f"the index in {folder} cannot be read: {exc}") from exc
        return cls(folder, index, meta.revision)

    @classmethod
    def prepare(cls, folder: Path) -> DiskIndex:
        """The index in ``folder`` to build (revision -1: none), created (again) if
        unreadable.

        Another process may be building it already: it then holds the writer, and the
        caller waits for it instead.
        """
        folder.mkdir(parents=True, exist_ok=True)
        schema = _schema()
        try:
            index = tantivy.Index(schema, path=str(folder), reuse=True)
        except (ValueError, OSError, RuntimeError):  # corrupt, or another schema
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            index = tantivy.Index(schema, path=str(folder), reuse=False)
        index.config_reader("manual")
        return cls(folder, index, -1)

    def refresh(self) -> bool:
        """Catch up with commits of other processes; whether the revision moved."""
        meta = _read_meta(self.folder)
        if meta is None or meta.revision == self.revision:
            return False
        self._index.reload()
        self.revision = meta.revision
        return True

    def snapshot(self) -> LexicalIndex:
        return LexicalIndex(self._index.searcher(), self._schema)

    def writer(self, *, build: bool = False) -> IndexUpdate:
        """The index's single writer; ``WriterBusy`` while someone else has it."""
        heap, threads = (_BUILD_HEAP, _threads()) if build else (_UPDATE_HEAP, 1)
        try:
            writer = self._index.writer(heap, threads)
        except ValueError as exc:
            if "LockBusy" in str(exc):
                raise WriterBusy(str(exc)) from None
            raise
        return IndexUpdate(self, writer, build=build)

    def committed(self, revision: int) -> None:
        _write_meta(self.folder, revision)
        self._index.reload()
        self.revision = revision


class IndexUpdate:
    """Changes to a ``DiskIndex`` under its writer lock, which ``commit`` or ``abort`` free.

    A full build starts from nothing: whatever a crashed build left is dropped first.
    """

    def __init__(self, disk: DiskIndex, writer: tantivy.IndexWriter, *, build: bool) -> None:
        self.disk = disk
        self._writer: tantivy.IndexWriter | None = writer
        if build:
            writer.delete_all_documents()

    def _live(self) -> tantivy.IndexWriter:
        if self._writer is None:
            raise RuntimeError("this index update is finished")
        return self._writer

    def upsert(self, documents: Iterable[tuple[str, str]]) -> int:
        """Add ``(key, text)`` documents, replacing any document of the same key."""
        writer = self._live()
        count = 0
        for key, text in documents:
            writer.delete_documents_by_term(_KEY, key)
            writer.add_document(_document(key, text))
            count += 1
        return count

    def commit(self, revision: int) -> None:
        """Make the changes visible, record ``revision`` as applied, free the writer."""
        writer = self._live()
        writer.commit()
        self.disk.committed(revision)  # written under the writer lock: in order
        self._writer = None
        writer.wait_merging_threads()  # frees the lock once merges are done

    def abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.rollback()
            writer.wait_merging_threads()

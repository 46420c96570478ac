from __future__ import annotations

import math
from pathlib import Path

import pytest

from nomosx.pipeline.rank import bm25
from nomosx.search.lexical import DiskIndex, IndexUnusable, LexicalIndex, WriterBusy
from nomosx.text.tokens import terms

DOCS = [
    ("a", "Vitamin D supplementation and fracture risk in older adults"),
    ("b", "Carbon taxes reduce emissions: evidence from British Columbia"),
    ("c", "Vitamin C and the common cold"),
    ("d", "Calcium intake, vitamin D and hip fractures: a randomised trial"),
]

CORPUS = [
    ("p1", "Vitamin D and bone density in postmenopausal women; vitamin D dosing"),
    ("p2", "Bone fractures in the elderly: falls, frailty and calcium"),
    ("p3", "Statins lower cholesterol and cardiovascular risk"),
    ("p4", "Vitamin K2, bone health and arterial calcification"),
    ("p5", "Exercise prevents falls in the elderly: a randomised trial of balance training"),
    ("p6", ""),
    ("p7", "Cholesterol, statins and muscle pain: a cohort study of statin users"),
]


def test_search_ranks_by_bm25_and_reports_matched_terms() -> None:
    index = LexicalIndex.build(DOCS)
    hits = index.search("Does vitamin D reduce hip fractures?", 10)
    keys = [h.key for h in hits]
    assert keys[0] == "d"  # vitamin, hip, fractures
    assert set(keys) == {"a", "b", "c", "d"}  # each shares a term; none is invented
    by_key = {h.key: h for h in hits}
    assert set(by_key["d"].matched) == {"vitamin", "d", "hip", "fractur"}
    assert by_key["b"].matched == ("reduc",)
    assert by_key["c"].coverage < by_key["a"].coverage < by_key["d"].coverage
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert [h.key for h in index.search("vitamin hip fractures", 2)] == ["d", "a"]


def test_no_match_returns_nothing() -> None:
    index = LexicalIndex.build(DOCS)
    assert index.search("quantum chromodynamics", 10) == []
    assert index.search("the of and", 10) == []  # only stop words
    assert index.search("vitamin", 0) == []
    assert LexicalIndex.build([]).search("vitamin", 5) == []
    assert len(LexicalIndex.build([])) == 0


def test_idf_of_rare_and_unseen_terms() -> None:
    index = LexicalIndex.build(DOCS)
    assert index.idf("vitamin") < index.idf("carbon")
    assert index.idf("neverseen") >= index.idf("carbon")


def _brute_force(corpus: list[tuple[str, str]]) -> tuple[dict[str, int], float, int]:
    docs = [terms(text) for _, text in corpus]
    df: dict[str, int] = {}
    for doc in docs:
        for term in set(doc):
            df[term] = df.get(term, 0) + 1
    return df, sum(map(len, docs)) / len(docs), len(docs)


def test_statistics_match_a_brute_force_count() -> None:
    index = LexicalIndex.build(CORPUS)
    df, avgdl, n = _brute_force(CORPUS)
    assert len(index) == n
    assert index.avgdl == pytest.approx(avgdl)
    for term in [*df, "unseen"]:
        expected = math.log1p((n - df.get(term, 0) + 0.5) / (df.get(term, 0) + 0.5))
        assert index.idf(term) == pytest.approx(expected), term


def test_scores_are_bm25_with_ranks_parameters() -> None:
    """tantivy's scores are RANK's BM25 on the same statistics (short documents: their
    lengths are stored exactly)."""
    index = LexicalIndex.build(CORPUS)
    question = "vitamin D, bone fractures and falls in the elderly"
    texts = dict(CORPUS)
    hits = index.search(question, 10)
    assert {h.key for h in hits} == {"p1", "p2", "p4", "p5"}
    for hit in hits:
        expected, matched = bm25(list(dict.fromkeys(terms(question))), terms(texts[hit.key]), index)
        assert hit.score == pytest.approx(expected, rel=1e-5)
        assert set(hit.matched) == set(matched)


def test_matched_terms_of_long_queries() -> None:
    """More query terms than one bit-mask search tells apart."""
    words = [f"w{i}x" for i in range(50)]
    docs = [
        (f"d{j}", " ".join(w for i, w in enumerate(words) if i % (j + 2) == 0)) for j in range(6)
    ]
    index = LexicalIndex.build(docs)
    hits = index.search(" ".join(words), 10)
    assert len(hits) == 6
    for hit in hits:
        j = int(hit.key[1:])
        assert hit.matched == tuple(w for i, w in enumerate(words) if i % (j + 2) == 0)
    assert max(hits, key=lambda h: h.coverage).key == "d0"


def test_query_syntax_is_only_terms() -> None:
    index = LexicalIndex.build(
        [
            ("x", "The title of a foo study"),
            ("y", "Bar charts and baz plots"),
            ("z", "Nothing relevant here"),
        ]
    )
    for query in ['title:foo AND (bar OR "baz"', "foo^10 -bar", "*", "key:x", '"', "(", "a:b:c"]:
        index.search(query, 10)  # never a parse error
    hits = index.search('title:foo AND (bar OR "baz"', 10)
    assert {h.key for h in hits} == {"x", "y"}
    assert {h.key: set(h.matched) for h in hits} == {"x": {"titl", "foo"}, "y": {"bar", "baz"}}
    assert index.search("key:x", 10) == []  # no field is addressed: "key" and "x" are terms


def test_disk_index_replaces_by_key_and_records_its_revision(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    with pytest.raises(IndexUnusable):
        DiskIndex.open(folder)
    disk = DiskIndex.prepare(folder)
    update = disk.writer(build=True)
    with pytest.raises(WriterBusy):
        disk.writer()  # one writer at a time
    assert update.upsert(DOCS) == 4
    update.commit(7)
    assert disk.revision == 7
    assert [h.key for h in disk.snapshot().search("vitamin hip fractures", 2)] == ["d", "a"]

    before = disk.snapshot()
    update = disk.writer()
    update.upsert([("d", "Zeppelin airships"), ("e", "Airships again")])
    update.commit(9)
    after = disk.snapshot()
    assert len(after) == 5
    assert [h.key for h in after.search("hip", 5)] == []
    assert [h.key for h in after.search("zeppelin", 5)] == ["d"]
    assert [h.key for h in before.search("hip", 5)] == ["d"]  # a snapshot never changes

    reopened = DiskIndex.open(folder)
    assert reopened.revision == 9
    assert len(reopened.snapshot()) == 5
    aborted = reopened.writer()
    aborted.upsert([("f", "never committed")])
    aborted.abort()
    assert len(DiskIndex.open(folder).snapshot()) == 5
    last = reopened.writer()  # the lock was freed
    last.commit(9)
    with pytest.raises(RuntimeError, match="finished"):
        last.upsert([("g", "too late")])
    last.abort()  # harmless once finished


def test_a_folder_without_the_record_or_unreadable_is_unusable(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    disk = DiskIndex.prepare(folder)
    update = disk.writer(build=True)
    update.upsert(DOCS)
    update.commit(1)
    (folder / "nomosx.json").write_text('{"version": "0", "revision": 1}')
    with pytest.raises(IndexUnusable):
        DiskIndex.open(folder)
    (folder / "nomosx.json").write_text('{"version": "2", "revision": 1}')
    (folder / "meta.json").write_text("{ not json")
    with pytest.raises(IndexUnusable):
        DiskIndex.open(folder)
    rebuilt = DiskIndex.prepare(folder)  # starts again from nothing
    assert rebuilt.revision == -1
    assert len(rebuilt.snapshot()) == 0

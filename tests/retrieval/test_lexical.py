from __future__ import annotations

from pathlib import Path

from nomosx.search.lexical import LexicalIndex

DOCS = [
    ("a", "Vitamin D supplementation and fracture risk in older adults"),
    ("b", "Carbon taxes reduce emissions: evidence from British Columbia"),
    ("c", "Vitamin C and the common cold"),
    ("d", "Calcium intake, vitamin D and hip fractures: a randomised trial"),
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
    assert LexicalIndex.build([]).search("vitamin", 5) == []


def test_save_and_load_give_the_same_results(tmp_path: Path) -> None:
    index = LexicalIndex.build(DOCS)
    index.save(tmp_path / "idx")
    loaded = LexicalIndex.load(tmp_path / "idx")
    assert loaded.keys == index.keys
    assert loaded.avgdl == index.avgdl
    assert loaded.search("vitamin fractures", 3) == index.search("vitamin fractures", 3)
    assert not list(tmp_path.glob(".building-*"))


def test_idf_of_rare_and_unseen_terms() -> None:
    index = LexicalIndex.build(DOCS)
    assert index.idf("vitamin") < index.idf("carbon")
    assert index.idf("neverseen") >= index.idf("carbon")

"""Ingest into the real store, on SQLite and PostgreSQL: good records kept, bad ones named."""

from __future__ import annotations

import json
from pathlib import Path

from nomosx.ingest.loader import ingest_file
from nomosx.store.db import Database
from nomosx.store.repositories import SourceRepository


def _work(doi: str, title: str, abstract: str = "Open access is growing.") -> dict[str, object]:
    words: dict[str, list[int]] = {}
    for i, word in enumerate(abstract.split()):
        words.setdefault(word, []).append(i)
    return {
        "id": "https://openalex.org/W" + str(abs(hash(doi)) % 10**9),
        "doi": doi,
        "display_name": title,
        "publication_year": 2018,
        "cited_by_count": 12,
        "authorships": [
            {
                "author": {
                    "display_name": "Heather Piwowar",
                    "orcid": "https://orcid.org/0000-0003-1613-5981",
                },
                "institutions": [
                    {
                        "display_name": "Impactstory",
                        "ror": "https://ror.org/02nr0ka47",
                        "country_code": "US",
                    }
                ],
            }
        ],
        "abstract_inverted_index": words,
    }


def _file(tmp_path: Path) -> Path:
    lines = [
        json.dumps(_work("https://doi.org/10.7717/peerj.4375", "The state of OA")).encode(),
        b"{this is not json",
        json.dumps({"doc_id": 7, "title": "", "abstract": ["No title here."]}).encode(),
        json.dumps(_work("10.7717/PEERJ.4375", "The state of OA (again)")).encode(),
        json.dumps({"doc_id": 10, "title": "Huge", "abstract": ["word " * 2_100_000]}).encode(),
        b'{"doc_id": 8, "title": "Caf\xe9 latte", "abstract": ["x"]}',
        json.dumps(
            {
                "doc_id": 9,
                "title": "Sleep and memory",
                "abstract": ["Sleep helps.", "Memory improves."],
            }
        ).encode(),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


async def test_ingest_keeps_good_records_and_names_bad_lines(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    path = _file(tmp_path)
    progress: list[tuple[int, int]] = []
    report = await ingest_file(
        path, repo, on_progress=lambda done, total: progress.append((done, total))
    )

    assert report.records == 3  # two versions of one DOI, and the SciFact record
    assert report.inserted == 2  # the duplicate DOI (other case and prefix) is one source
    bad = {e.line: e.reason for e in report.errors}
    assert set(bad) == {2, 3, 5, 6}
    assert "JSON" in bad[2] or "json" in bad[2]
    assert "title" in bad[3]
    assert "limit is 100,000" in bad[5]
    assert "UTF-8" in bad[6]
    assert all(str(path) in str(e) for e in report.errors)
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)

    source = await repo.get("doi:10.7717/peerj.4375")
    assert source.title == "The state of OA (again)"  # the later record wins
    assert source.abstract == "Open access is growing."
    assert source.authors[0].orcid == "0000-0003-1613-5981"
    assert source.authors[0].institutions[0].country == "US"
    assert (await repo.get("scifact:9")).abstract == "Sleep helps. Memory improves."


async def test_reingest_changes_nothing(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    path = _file(tmp_path)
    await ingest_file(path, repo)
    revision = await repo.revision()
    again = await ingest_file(path, repo)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert await repo.revision() == revision
    assert await repo.count() == 2

"""Hybrid retrieval through the application with the real offline model: ingest embeds
new sources at once, searches find them by meaning, embeddings are cached and reused, and
the bundled library arrives with its vectors (none computed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nomosx.app import NomosX
from nomosx.config import Settings

DOCS = [
    {
        "doc_id": 1,
        "title": "Myocardial infarction after influenza",
        "abstract": ["Heart attacks were more frequent in the week after a flu infection."],
    },
    {
        "doc_id": 2,
        "title": "Coral bleaching and sea temperature",
        "abstract": ["Reefs bleached where the ocean was warmest."],
    },
    {
        "doc_id": 3,
        "title": "Soil nitrogen in maize fields",
        "abstract": ["Fertiliser raised nitrate in groundwater."],
    },
]


def _write(path: Path, docs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.mark.timeout(300)
@pytest.mark.parametrize("vector_store", ["qdrant", "faiss"])
async def test_ingest_embeds_new_sources_searchable_by_meaning(
    tmp_path: Path, database_url: str, db: object, vector_store: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        bundled_library=False,
        retrieval={"vector_store": vector_store},
    )
    app = await NomosX.open(settings)
    try:
        progress: list[tuple[int, int]] = []
        await app.ingest(
            _write(tmp_path / "a.jsonl", DOCS), on_embed=lambda d, t: progress.append((d, t))
        )
        assert app.dense is not None
        assert app.dense.embedded == 3 and progress[-1] == (3, 3)
        # no word in common with the heart-attack study: found by its embedding
        found = await app.library_provider.search("cardiac events following viral illness", 3)
        assert found and found[0].title.startswith("Myocardial infarction")
        changed = [dict(DOCS[2], abstract=["Fertiliser raised nitrate in rivers."])]
        await app.ingest(_write(tmp_path / "b.jsonl", changed))
        assert app.dense.embedded == 4  # only the changed source
    finally:
        await app.close()
    # a new process: vectors in the store and in the emb cache, nothing embedded again
    again = await NomosX.open(settings)
    try:
        assert again.dense is not None
        assert await again.sync_vectors() == 0 and again.dense.embedded == 0
        sources = await again.sources.get_many(["scifact:1", "scifact:2", "scifact:3"])
        ranked = await again.pipeline.ranker.rank("flu and heart attacks", sources, 3)
        assert ranked[0].dense is not None and ranked[0].source.key == "scifact:1"
        cache = again.embedder
        assert getattr(cache, "misses", None) == 1  # the question; the sources were cached
    finally:
        await again.close()


@pytest.mark.timeout(300)
async def test_the_bundled_library_arrives_with_its_vectors(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = await NomosX.open(settings)
    try:
        await app.ensure_library()
        assert app.dense is not None
        assert app.dense.embedded == 0 and app.dense.reused == 5183
        result = await app.brief("Does vitamin D supplementation reduce fractures?")
        assert len(result.brief.sources) >= 3
        # every candidate's vector came from the cache: only the question was embedded
        assert getattr(app.embedder, "misses", None) == 1
    finally:
        await app.close()

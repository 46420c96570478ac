"""Embed the bundled library with the offline model and write the vectors it ships with.

    .venv/bin/python scripts/embed_bundled_library.py

Reads ``src/nomosx/data/scifact.jsonl.gz`` through the product's own ingest (so keys and
texts are exactly what the store holds), embeds title + abstract with ``MiniLMEmbedder``
and writes ``src/nomosx/data/scifact-vectors.npz``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from nomosx.embed.minilm import MiniLMEmbedder
from nomosx.ingest.loader import ingest_file
from nomosx.retrieval.bundled import BUNDLED_VECTORS
from nomosx.retrieval.dense_index import text_digest
from nomosx.store.db import Database
from nomosx.store.repositories import SourceRepository

DATA = Path(__file__).resolve().parents[1] / "src" / "nomosx" / "data"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/lib.db")
        await db.migrate()
        repo = SourceRepository(db)
        await ingest_file(DATA / "scifact.jsonl.gz", repo)
        rows = [row async for batch in repo.changed_since(0) for row in batch]
        await db.dispose()
    texts = [f"{r.title}\n{r.abstract or ''}".strip() for r in rows]
    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    parts = []
    with Progress() as progress:
        task = progress.add_task("embedding", total=len(texts))
        for start in range(0, len(texts), 256):
            parts.append(embedder.encode(texts[start : start + 256]))
            progress.update(task, completed=min(start + 256, len(texts)))
    vectors = np.concatenate(parts)
    seconds = time.perf_counter() - started
    np.savez_compressed(
        DATA / BUNDLED_VECTORS,
        model=np.asarray(embedder.model),
        keys=np.asarray([r.key for r in rows]),
        digests=np.asarray([text_digest(t) for t in texts]),
        vectors=vectors.astype(np.float16),
    )
    size = (DATA / BUNDLED_VECTORS).stat().st_size / 1e6
    print(f"{len(rows)} sources embedded in {seconds:.1f} s -> {BUNDLED_VECTORS} ({size:.1f} MB)")


if __name__ == "__main__":
    asyncio.run(main())

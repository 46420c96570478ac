"""Keeps the vector store in step with the library: every source written since the last
revision applied is embedded and upserted (title + abstract, ``embedding_text``).

The revision applied is recorded in a small file per collection under the data
directory. A source whose point already carries its revision is not embedded again (a
second process, or a shared Qdrant server, may have done it), and vectors known in advance
(``known``: the bundled library ships its own) are used instead of the model when the text
they were made from is the same. With ``CachedEmbedder`` each vector also lands in the
``emb`` cache, where RANK finds it.

When the vector store cannot be opened (another process holds a local folder) dense
*retrieval* is off for this process and ``problem`` says why; RANK still scores candidates
by embedding, through the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from nomosx.embed.base import Embedder, Vectors
from nomosx.errors import VectorStoreError
from nomosx.sources.base import SearchFilters
from nomosx.store.repositories import SourceRepository, SourceText
from nomosx.vectors.base import VectorHit, VectorPoint, VectorStore

__all__ = ["DenseLibraryIndex", "KnownVectors", "text_digest"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # done, total
KnownVectors = Mapping[str, tuple[str, Vectors]]  # key -> (text digest, vector)


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _embedding_text(row: SourceText) -> str:
    return f"{row.title}\n{row.abstract or ''}".strip()


class DenseLibraryIndex:
    def __init__(
        self,
        repo: SourceRepository,
        embedder: Embedder,
        open_store: Callable[[], Awaitable[VectorStore]],
        state_file: Path,
        *,
        batch: int = 64,
    ) -> None:
        self.repo = repo
        self.embedder = embedder
        self._open_store = open_store
        self.state_file = state_file
        self.batch = batch
        self.problem: str | None = None
        self.embedded = 0  # vectors this process computed
        self.reused = 0  # vectors taken from ``known`` or already in the store
        self._store: VectorStore | None = None
        self._opened = False
        self._lock = asyncio.Lock()
        self._applied: int | None = None

    async def store(self) -> VectorStore | None:
        """The vector store, opened on first use; ``None`` when it cannot be used."""
        if not self._opened:
            self._opened = True
            try:
                store = await self._open_store()
                await store.ensure(self.embedder.dim)
            except VectorStoreError as exc:
                self.problem = str(exc)
                log.warning("dense retrieval is off for this process: %s", exc)
                return None
            self._store = store
        return self._store

    async def sync(
        self, *, known: KnownVectors | None = None, on_progress: Progress | None = None
    ) -> int:
        """Apply every source written since the recorded revision; the number applied."""
        async with self._lock:
            store = await self.store()
            if store is None:
                return 0
            state = await self.repo.state()
            applied = self._read_applied()
            if applied > state.revision or (applied and await store.count() == 0):
                applied = 0  # the database or the collection was recreated
            if applied == state.revision:
                return 0
            total = state.sources if applied == 0 else 0
            done = 0
            async for rows in self.repo.changed_since(applied, batch=512):
                for start in range(0, len(rows), self.batch * 8):
                    chunk = rows[start : start + self.batch * 8]
                    await self._apply(store, chunk, known or {})
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, max(total, done))
                applied = max(applied, rows[-1].revision)
                self._write_applied(applied)
            self._write_applied(max(applied, state.revision))
            return done

    async def search(
        self, vector: Vectors, k: int, filters: SearchFilters | None = None
    ) -> list[VectorHit]:
        """Nearest sources, after a sync; ``[]`` when the store is unavailable."""
        await self.sync()
        store = self._store
        if store is None:
            return []
        try:
            return await store.search(vector, k, filters)
        except VectorStoreError as exc:
            log.warning("dense retrieval failed, lexical results only: %s", exc)
            return []

    async def _apply(
        self, store: VectorStore, rows: Sequence[SourceText], known: KnownVectors
    ) -> None:
        stored = await store.revisions([r.key for r in rows])
        todo = [r for r in rows if stored.get(r.key, -1) < r.revision]
        self.reused += len(rows) - len(todo)
        if not todo:
            return
        texts = [_embedding_text(r) for r in todo]
        vectors = np.zeros((len(todo), self.embedder.dim), dtype=np.float32)
        missing: list[int] = []
        for i, (row, text) in enumerate(zip(todo, texts, strict=True)):
            hit = known.get(row.key)
            if (
                hit is not None
                and hit[0] == text_digest(text)
                and hit[1].shape == (self.embedder.dim,)
            ):
                vectors[i] = hit[1]
                self.reused += 1
            else:
                missing.append(i)
        remember = getattr(self.embedder, "remember", None)
        if len(missing) < len(todo) and remember is not None:
            given = [i for i in range(len(todo)) if i not in set(missing)]
            await remember([texts[i] for i in given], vectors[given])
        for start in range(0, len(missing), self.batch):
            part = missing[start : start + self.batch]
            vectors[part] = await self.embedder.embed([texts[i] for i in part])
            self.embedded += len(part)
        await store.upsert(
            [
                VectorPoint(
                    key=row.key,
                    vector=vector,
                    year=row.year,
                    provider=row.provider,
                    type=row.type,
                    open_access=row.open_access,
                    revision=row.revision,
                )
                for row, vector in zip(todo, vectors, strict=True)
            ]
        )

    def _read_applied(self) -> int:
        if self._applied is not None:
            return self._applied
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            self._applied = int(data["revision"])
        except (OSError, ValueError, KeyError, TypeError):
            self._applied = 0
        return self._applied

    def _write_applied(self, revision: int) -> None:
        self._applied = revision
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dense-", dir=self.state_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"revision": revision, "model": self.embedder.model}, handle)
        os.replace(tmp, self.state_file)

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.aclose()
            self._store = None

"""Keeps the library's lexical index in step with the store.

The index is named by the library's revision: a process loads the saved index of the
current revision, or builds it once (and saves it) when the library has changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

from nomosx.search.lexical import INDEX_VERSION, LexicalIndex
from nomosx.store.repositories import SourceRepository


class LibraryIndex:
    def __init__(self, repo: SourceRepository, folder: Path, *, namespace: str = "") -> None:
        self.repo = repo
        self.folder = folder
        self._scope = hashlib.sha256(namespace.encode()).hexdigest()[:8]
        self._prefix = f"lexical-v{INDEX_VERSION}-{self._scope}-"
        self._current: tuple[str, LexicalIndex] | None = None
        self._lock = asyncio.Lock()
        self.builds = 0

    async def get(self) -> LexicalIndex:
        revision = await self.repo.revision()
        current = self._current
        if current is not None and current[0] == revision:
            return current[1]
        async with self._lock:
            current = self._current
            if current is not None and current[0] == revision:
                return current[1]
            index = await self._load_or_build(revision)
            self._current = (revision, index)
            return index

    async def _load_or_build(self, revision: str) -> LexicalIndex:
        name = self._prefix + hashlib.sha256(revision.encode()).hexdigest()[:16]
        path = self.folder / name
        if path.is_dir():
            return await asyncio.to_thread(LexicalIndex.load, path)
        documents: list[tuple[str, str]] = []
        async for batch in self.repo.iter_texts():
            documents.extend(batch)
        index = await asyncio.to_thread(LexicalIndex.build, documents)
        await asyncio.to_thread(index.save, path)
        self.builds += 1
        self._remove_stale(keep=path)
        return index

    def _remove_stale(self, keep: Path) -> None:
        for old in self.folder.glob(f"lexical-v*-{self._scope}-*"):  # any revision, any version
            if old != keep and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

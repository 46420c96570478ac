"""Keeps the library's lexical index in step with the store, incrementally.

The index is one folder per database (``lexical-v<INDEX_VERSION>-<scope>``) that records
the library revision it has applied. ``get`` reads the store's revision (one primary-key
read) and, when the store is ahead, applies the sources written since
(``SourceRepository.changed_since``: each replaced by key), so a source is searchable as
soon as ``get`` returns after its ingest, with no rebuild. A missing or unreadable folder
is built from scratch; so is one that disagrees with the store (a database recreated
under the same URL).

Processes share the folder; tantivy lets one writer in at a time, and a process takes it
only to apply changes. One that finds it busy waits briefly for the other's commit, then
serves the index as it is and tries again on its next ``get``. Within a process, one
update runs at a time (an asyncio lock), shielded from the caller's cancellation so that a
dropped request never throws away a build half done.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import time
from pathlib import Path

from nomosx.errors import StoreError
from nomosx.search.lexical import (
    INDEX_VERSION,
    DiskIndex,
    IndexUnusable,
    IndexUpdate,
    LexicalIndex,
    WriterBusy,
)
from nomosx.store.repositories import LibraryState, SourceRepository

log = logging.getLogger(__name__)

_POLL = 0.05  # seconds between looks at a busy writer


class LibraryIndex:
    def __init__(
        self,
        repo: SourceRepository,
        folder: Path,
        *,
        namespace: str = "",
        busy_wait: float = 1.0,
        build_wait: float = 600.0,
    ) -> None:
        self.repo = repo
        self.folder = folder
        self._scope = hashlib.sha256(namespace.encode()).hexdigest()[:8]
        self.path = folder / f"lexical-v{INDEX_VERSION}-{self._scope}"
        self.busy_wait = busy_wait  # for another process's update, before serving as is
        self.build_wait = build_wait  # for another process's first build of the index
        self._disk: DiskIndex | None = None
        self._current: tuple[int, LexicalIndex] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[tuple[int, LexicalIndex]] | None = None
        self._other_writer = False
        self.builds = 0  # full builds by this process
        self.applied = 0  # sources this process applied incrementally

    async def get(self) -> LexicalIndex:
        """The index, with every source the store had when called."""
        state = await self.repo.state()
        current = self._current
        if current is not None and current[0] == state.revision:
            return current[1]
        async with self._lock:
            left = self._task
            if left is not None and not left.done():  # a cancelled caller's update
                await asyncio.wait([left])
            current = self._current
            if current is not None and current[0] == state.revision:
                return current[1]
            task = asyncio.ensure_future(self._update(state))
            task.add_done_callback(_retrieve)
            self._task = task
            return (await asyncio.shield(task))[1]

    async def _update(self, state: LibraryState) -> tuple[int, LexicalIndex]:
        try:
            disk = self._disk
            if disk is None:
                disk = self._disk = await self._open()
            else:
                await asyncio.to_thread(disk.refresh)
            if disk.revision < state.revision:
                await self._apply(disk, state.revision)
            elif disk.revision > state.revision and await self._reset(disk.revision):
                log.warning("the library is behind its index %s: rebuilding it", self.path)
                await self._build(disk)
            current = self._current
            if current is None or current[0] != disk.revision:
                current = (disk.revision, await asyncio.to_thread(disk.snapshot))
                if disk.revision == state.revision and len(current[1]) != state.sources:
                    log.warning(
                        "the index %s has %d sources, the library %d: rebuilding it",
                        self.path,
                        len(current[1]),
                        state.sources,
                    )
                    await self._build(disk)
                    current = (disk.revision, await asyncio.to_thread(disk.snapshot))
                self._current = current
            return current
        except (OSError, ValueError, RuntimeError) as exc:
            self._disk = None  # open it afresh next time
            raise StoreError(f"the library index in {self.path} failed: {exc}") from exc

    async def _reset(self, indexed: int) -> bool:
        """Whether the store is really behind the index (read again: the revision we have
        may predate another process's ingest and update)."""
        return (await self.repo.state()).revision < indexed

    async def _open(self) -> DiskIndex:
        try:
            disk = await asyncio.to_thread(DiskIndex.open, self.path)
        except IndexUnusable as exc:
            log.info("building the library index %s (%s)", self.path, exc)
            disk = await asyncio.to_thread(DiskIndex.prepare, self.path)
            await self._build(disk)
        await asyncio.to_thread(self._remove_stale)
        return disk

    async def _build(self, disk: DiskIndex) -> None:
        """Index every source from scratch, or wait for the process that does."""
        deadline = time.monotonic() + self.build_wait
        while True:
            try:
                update = await asyncio.to_thread(disk.writer, build=True)
            except WriterBusy:
                await asyncio.sleep(_POLL * 4)
                if await asyncio.to_thread(disk.refresh):
                    return  # the other process has committed its build
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been building the library index {self.path} "
                        f"for over {self.build_wait:.0f} s; try again later"
                    ) from None
                continue
            state = await self.repo.state()
            await self._fill(update, since=0, revision=state.revision)
            self.builds += 1
            return

    async def _apply(self, disk: DiskIndex, revision: int) -> None:
        update = await self._writer(disk, revision)
        if update is None:
            return
        if disk.revision >= revision:  # another process applied it meanwhile
            await asyncio.to_thread(update.abort)
            return
        self.applied += await self._fill(update, since=disk.revision, revision=revision)

    async def _writer(self, disk: DiskIndex, revision: int) -> IndexUpdate | None:
        """The writer, once free; ``None`` if another process keeps it past ``busy_wait``
        (or has applied ``revision`` meanwhile)."""
        deadline = time.monotonic() + (0.0 if self._other_writer else self.busy_wait)
        while True:
            try:
                update = await asyncio.to_thread(disk.writer)
            except WriterBusy:
                self._other_writer = True
                await asyncio.to_thread(disk.refresh)
                if disk.revision >= revision:
                    self._other_writer = False
                    return None
                if time.monotonic() >= deadline:
                    log.info("the library index %s is being updated elsewhere", self.path)
                    return None
                await asyncio.sleep(_POLL)
                continue
            self._other_writer = False
            await asyncio.to_thread(disk.refresh)
            return update

    async def _fill(self, update: IndexUpdate, *, since: int, revision: int) -> int:
        """Apply the sources written after ``since`` and commit; how many were applied.

        The store is read while the previous batch is indexed. The revision recorded is
        the newest applied: every source up to it has been (``changed_since``).
        """
        count = 0
        covered = revision
        pending: asyncio.Future[int] | None = None
        try:
            async for batch in self.repo.changed_since(since):
                if pending is not None:
                    count += await pending
                covered = max(covered, batch[-1].revision)
                documents = [(s.key, s.text) for s in batch]
                pending = asyncio.ensure_future(asyncio.to_thread(update.upsert, documents))
            if pending is not None:
                count += await pending
                pending = None
            await asyncio.to_thread(update.commit, covered)
        except BaseException:
            if pending is not None:
                await asyncio.wait([pending])
            await asyncio.to_thread(update.abort)
            raise
        return count

    def _remove_stale(self) -> None:
        """Remove this database's indexes of older versions."""
        for old in self.folder.glob(f"lexical-v*-{self._scope}*"):
            found = re.match(r"lexical-v(\d+)-", old.name)
            if old.is_dir() and found and int(found.group(1)) < int(INDEX_VERSION):
                shutil.rmtree(old, ignore_errors=True)


def _retrieve(task: asyncio.Task[tuple[int, LexicalIndex]]) -> None:
    """Mark the outcome seen: a caller that was cancelled no longer awaits it."""
    if not task.cancelled():
        task.exception()

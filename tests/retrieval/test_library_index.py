"""The library's lexical index kept in step with the store, on both backends."""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from nomosx.errors import StoreError
from nomosx.search.lexical import DiskIndex
from nomosx.search.library_index import LibraryIndex
from nomosx.store.db import Database
from nomosx.store.repositories import SourceRepository
from nomosx.text.tokens import terms
from tests.factories import make_source

ROOT = Path(__file__).resolve().parents[2]
TOPICS = [
    ("vitamin", "Vitamin D supplementation and fracture risk in older adults"),
    ("carbon", "Carbon taxes reduce emissions: evidence from British Columbia"),
    ("cold", "Vitamin C and the common cold"),
    ("hip", "Calcium intake, vitamin D and hip fractures: a randomised trial"),
    ("sleep", "Sleep deprivation impairs memory consolidation"),
]


def _sources(prefix: str = "doi:10.1/") -> list:  # type: ignore[type-arg]
    return [
        make_source(f"{prefix}{name}", title=title, abstract=f"A study of {name}.", authors=[])
        for name, title in TOPICS
    ]


def _index(db: Database, folder: Path, **options: float) -> LibraryIndex:
    return LibraryIndex(SourceRepository(db), folder, namespace=db.url, **options)  # type: ignore[arg-type]


async def _keys(index: LibraryIndex, query: str, k: int = 10) -> list[str]:
    return [h.key for h in (await index.get()).search(query, k)]


async def test_a_new_source_is_searchable_right_after_get(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    assert len(await index.get()) == 5
    assert (index.builds, index.applied) == (1, 0)
    assert await index.get() is await index.get()  # same revision: the same snapshot

    await repo.upsert_many(
        [make_source("doi:10.9/zeppelin", title="Zeppelin airships", abstract=None, authors=[])]
    )
    assert await _keys(index, "zeppelin airships") == ["doi:10.9/zeppelin"]
    assert (index.builds, index.applied) == (1, 1)  # one source added, nothing rebuilt
    assert len(await index.get()) == 6


async def test_an_updated_source_is_found_by_its_new_text_only(
    db: Database, tmp_path: Path
) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    assert await _keys(index, "sleep memory") == ["doi:10.1/sleep"]
    await repo.upsert_many(
        [make_source("doi:10.1/sleep", title="Ocean acidification", abstract=None, authors=[])]
    )
    assert await _keys(index, "sleep memory") == []
    assert await _keys(index, "ocean acidification") == ["doi:10.1/sleep"]
    assert len(await index.get()) == 5
    assert (index.builds, index.applied) == (1, 1)


async def test_a_new_process_loads_the_index_without_rebuilding(
    db: Database, tmp_path: Path
) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    first = _index(db, tmp_path)
    assert await _keys(first, "carbon taxes") == ["doi:10.1/carbon"]

    again = _index(db, tmp_path)
    assert await _keys(again, "carbon taxes") == ["doi:10.1/carbon"]
    assert (again.builds, again.applied) == (0, 0)

    await repo.upsert_many(_sources("doi:10.2/")[:2])  # written while no index is open
    later = _index(db, tmp_path)
    assert len(await later.get()) == 7
    assert (later.builds, later.applied) == (0, 2)


async def test_a_missing_or_corrupt_index_is_rebuilt(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    first = _index(db, tmp_path)
    await first.get()

    shutil.rmtree(first.path)
    missing = _index(db, tmp_path)
    assert await _keys(missing, "carbon taxes") == ["doi:10.1/carbon"]
    assert missing.builds == 1

    (first.path / "meta.json").write_text("{ garbage")
    corrupt = _index(db, tmp_path)
    assert await _keys(corrupt, "carbon taxes") == ["doi:10.1/carbon"]
    assert corrupt.builds == 1

    for segment in first.path.glob("*.term"):
        segment.write_bytes(b"\0" * 64)
    broken = _index(db, tmp_path)
    assert await _keys(broken, "carbon taxes") == ["doi:10.1/carbon"]
    assert broken.builds == 1

    (first.path / "nomosx.json").unlink()  # a build that died before its end
    unfinished = _index(db, tmp_path)
    assert await _keys(unfinished, "carbon taxes") == ["doi:10.1/carbon"]
    assert unfinished.builds == 1
    assert len(await unfinished.get()) == 5


async def test_older_versions_are_removed_and_other_databases_kept(
    db: Database, tmp_path: Path
) -> None:
    index = _index(db, tmp_path)
    old = tmp_path / f"{index.path.name.replace('-v2-', '-v1-')}-0123456789abcdef"
    other = tmp_path / "lexical-v1-ffffffff-0123456789abcdef"
    old.mkdir()
    other.mkdir()
    await index.get()
    assert not old.exists()
    assert other.exists()
    assert index.path.is_dir()


async def test_an_index_ahead_of_its_library_is_rebuilt(db: Database, tmp_path: Path) -> None:
    """The database was recreated under the same URL: its index is not kept."""
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    await repo.upsert_many(_sources("doi:10.2/"))
    index = _index(db, tmp_path)
    assert len(await index.get()) == 10
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM sources"))
        await conn.execute(text("UPDATE library_state SET revision = 0, sources = 0"))
    await repo.upsert_many(_sources()[:1])
    assert len(await index.get()) == 1
    assert index.builds == 2

    fresh = _index(db, tmp_path)  # and a process that starts afterwards agrees
    assert len(await fresh.get()) == 1


async def test_an_index_that_lost_sources_is_rebuilt(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    await index.get()
    disk = DiskIndex.open(index.path)
    update = disk.writer()
    update.upsert([("stray", "a source the library never had")])
    update.commit(disk.revision)
    again = _index(db, tmp_path)
    assert len(await again.get()) == 5
    assert again.builds == 1


async def test_statistics_after_updates_match_a_brute_force_count(
    db: Database, tmp_path: Path
) -> None:
    repo = SourceRepository(db)
    index = _index(db, tmp_path)
    sources = _sources()
    await repo.upsert_many(sources[:2])
    await index.get()
    await repo.upsert_many(sources[2:])
    stats = await index.get()
    texts = [terms(f"{s.title}\n{s.abstract or ''}") for s in sources]
    n = len(texts)
    assert len(stats) == n
    assert stats.avgdl == pytest.approx(sum(map(len, texts)) / n)
    for term in {t for doc in texts for t in doc} | {"unseen"}:
        df = sum(term in doc for doc in texts)
        assert stats.idf(term) == pytest.approx(math.log1p((n - df + 0.5) / (df + 0.5)))


async def test_concurrent_gets_share_one_update(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    snapshots = await asyncio.gather(*(index.get() for _ in range(5)))
    assert all(s is snapshots[0] for s in snapshots)
    assert index.builds == 1
    await repo.upsert_many(_sources("doi:10.2/"))
    snapshots = await asyncio.gather(*(index.get() for _ in range(5)))
    assert all(len(s) == 10 for s in snapshots)
    assert (index.builds, index.applied) == (1, 5)


async def test_a_cancelled_caller_does_not_stop_the_update(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    for delay in (0, 0.001, 0.01):
        await repo.upsert_many(
            [make_source(f"doi:10.3/{delay}", title="Zeppelin", abstract=None, authors=[])]
        )
        caller = asyncio.ensure_future(index.get())
        await asyncio.sleep(delay)
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        assert len(await index.get()) == await repo.count()
    assert index.builds == 1


async def test_a_busy_writer_serves_the_index_as_it_is(db: Database, tmp_path: Path) -> None:
    """Another writer holds the index: wait briefly, serve what there is, catch up later."""
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path, busy_wait=0.2)
    await index.get()
    other = DiskIndex.open(index.path).writer()  # as another process would
    await repo.upsert_many(
        [make_source("doi:10.9/zeppelin", title="Zeppelin airships", abstract=None, authors=[])]
    )
    assert await _keys(index, "zeppelin") == []  # served as it is
    assert len(await index.get()) == 5  # no wait the second time
    other.abort()
    assert await _keys(index, "zeppelin") == ["doi:10.9/zeppelin"]
    assert index.applied == 1


async def test_a_build_in_progress_elsewhere_is_waited_for(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path, build_wait=0.3)
    builder = DiskIndex.prepare(index.path).writer(build=True)  # another process builds
    with pytest.raises(StoreError, match="another process has been building"):
        await index.get()
    builder.abort()
    assert len(await index.get()) == 5
    assert index.builds == 1


async def test_a_build_finished_elsewhere_is_used(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    builder = DiskIndex.prepare(index.path).writer(build=True)  # another process builds
    waiting = asyncio.ensure_future(index.get())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    builder.upsert([(s.key, s.text) async for b in repo.changed_since(0) for s in b])
    builder.commit((await repo.state()).revision)
    assert len(await waiting) == 5
    assert (index.builds, index.applied) == (0, 0)


async def test_a_failed_update_changes_nothing_and_frees_the_writer(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(_sources())
    index = _index(db, tmp_path)
    await index.get()
    await repo.upsert_many(_sources("doi:10.2/"))
    real = repo.changed_since

    async def failing(revision: int, batch: int = 2000):  # type: ignore[no-untyped-def]
        async for page in real(revision, batch=2):
            yield page
            raise StoreError("the database went away")

    monkeypatch.setattr(index.repo, "changed_since", failing)
    with pytest.raises(StoreError, match="went away"):
        await index.get()
    assert len(DiskIndex.open(index.path).snapshot()) == 5  # nothing half applied
    monkeypatch.undo()
    assert len(await index.get()) == 10  # and the writer is free again
    assert index.applied == 5


async def test_an_unusable_index_folder_is_a_store_error(db: Database, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the index folder should be")
    index = _index(db, tmp_path / "taken")
    with pytest.raises(StoreError, match="library index"):
        await index.get()


def test_another_process_applies_what_it_sees_and_this_one_reloads(
    tmp_path: Path,
) -> None:
    """Two processes on one database: each sees the other's ingest; whoever gets there
    first applies it, the other reloads."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from nomosx.search.library_index import LibraryIndex\n"
        "from nomosx.store.db import Database\n"
        "from nomosx.store.repositories import SourceRepository\n"
        "from tests.factories import make_source\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    repo = SourceRepository(db)\n"
        "    await repo.upsert_many([make_source('doi:10.9/z', title='Zeppelin airships',"
        " abstract=None, authors=[])])\n"
        "    index = LibraryIndex(repo, Path(sys.argv[2]), namespace=sys.argv[1])\n"
        "    hits = (await index.get()).search('zeppelin', 5)\n"
        "    print([h.key for h in hits], index.builds, index.applied)\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )

    async def scenario() -> None:
        db = Database(url)
        await db.migrate()
        try:
            repo = SourceRepository(db)
            await repo.upsert_many(_sources())
            index = LibraryIndex(repo, tmp_path / "index", namespace=url)
            assert len(await index.get()) == 5
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", script, url, str(tmp_path / "index")],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            assert done.stdout.split("]")[1].split() == ["0", "1"]
            assert "doi:10.9/z" in done.stdout
            assert await _keys(index, "zeppelin") == ["doi:10.9/z"]
            assert (index.builds, index.applied) == (1, 0)  # reloaded, not re-applied
        finally:
            await db.dispose()

    asyncio.run(scenario())

"""What the contract tests do not show of the faiss store: the switch from an exact index
to IVF and back, retraining, filters on an IVF index, the snapshot and log on disk across
reopening (and a crash), locking, and the factory."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from nomosx.errors import VectorStoreError, VectorStoreLocked
from nomosx.sources.base import SearchFilters
from nomosx.vectors import VectorPoint, open_vector_store
from nomosx.vectors import faiss as faiss_module
from nomosx.vectors.faiss import FaissVectorStore, nlist_for
from tests.vectors.points import PROVIDERS, TYPES, expected, keys, make_points, unit

DIM = 32
ROOT = Path(__file__).resolve().parents[2]


def clustered(n: int, *, seed: int = 3, start: int = 0, centres: int = 40) -> list[VectorPoint]:
    """Points around ``centres`` directions (as embeddings are, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    middle = unit(np.random.default_rng(99).standard_normal((centres, DIM)))
    which = rng.integers(0, centres, n)
    vectors = unit(middle[which] + 0.1 * rng.standard_normal((n, DIM)))
    return [
        VectorPoint(
            key=f"openalex:W{start + i}",
            vector=vectors[i],
            year=None if i % 17 == 0 else 1995 + i % 30,
            provider=PROVIDERS[i % 4],
            type=TYPES[(i // 4) % 4],
            open_access=(True, False, None)[i % 3],
            revision=i % 5,
        )
        for i in range(n)
    ]


def queries(count: int, seed: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = unit(np.random.default_rng(99).standard_normal((40, DIM)))
    return unit(middle[rng.integers(0, 40, count)] + 0.1 * rng.standard_normal((count, DIM)))


async def recall(
    store: FaissVectorStore,
    points: list[VectorPoint],
    k: int = 10,
    filters: SearchFilters | None = None,
) -> float:
    found = 0
    total = 0
    for q in queries(20):
        truth = set(expected(points, q, k, filters))
        got = keys(await store.search(q, k, filters))
        assert len(got) == len(truth)  # as many as pass, up to k
        found += len(truth & set(got))
        total += len(truth)
    return found / total if total else 1.0


def test_nlist_rule() -> None:
    assert nlist_for(1_000_000) == 4000
    assert nlist_for(50_000) == 894
    assert nlist_for(2000) == 51  # at least 39 points per list
    assert nlist_for(10) == 1


async def test_flat_to_ivf_keeps_the_results() -> None:
    points = clustered(3000)
    async with FaissVectorStore.memory("c", train_at=2000, nprobe=6) as store:
        await store.ensure(DIM)
        await store.upsert(points[:1999])
        assert (store.kind, store.nlist) == ("flat", 0)
        assert await recall(store, points[:1999]) == 1.0
        await store.upsert(points[1999:])
        assert store.kind == "ivf"
        assert store.nlist == nlist_for(3000) == 76
        assert store.reorganisations == 1
        assert await store.count() == 3000
        assert await recall(store, points) >= 0.95
        hits = await store.search(points[7].vector, 3)
        assert hits[0].key == points[7].key
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        store.nprobe = 1 << 20  # every list: exact
        assert await recall(store, points) == 1.0
        assert await store.revisions([points[5].key]) == {points[5].key: points[5].revision}


async def test_ivf_retrains_as_it_grows_and_turns_flat_when_small() -> None:
    points = clustered(4200)
    async with FaissVectorStore.memory("c", train_at=1000, nprobe=8) as store:
        await store.ensure(DIM)
        await store.upsert(points[:1000])
        assert (store.kind, store.nlist, store.reorganisations) == ("ivf", 25, 1)
        await store.upsert(points[1000:4000])
        assert store.reorganisations == 1  # 4,000 = 4 times 1,000: not yet
        await store.upsert(points[4000:])
        assert (store.kind, store.nlist, store.reorganisations) == ("ivf", 107, 2)
        assert await recall(store, points) >= 0.95
        # replacing and deleting by key on an IVF index
        moved = VectorPoint(points[1].key, points[2].vector, 2001, "arxiv", None, True, 7)
        await store.upsert([moved])
        assert set(keys(await store.search(points[2].vector, 2))) == {points[1].key, points[2].key}
        await store.delete([p.key for p in points[:3200]])  # 1,000 left: a quarter of 4,200
        assert (store.kind, store.nlist, store.reorganisations) == ("ivf", 25, 3)
        assert await recall(store, points[3200:]) >= 0.95
        await store.delete([p.key for p in points[3200:3800]])  # 400 < 1000 / 2: flat
        assert (store.kind, store.reorganisations) == ("flat", 4)
        assert await store.count() == 400
        assert await recall(store, points[3800:]) == 1.0
        await store.upsert(points[:10])  # new keys into the renumbered slots
        assert await recall(store, points[3800:] + points[:10]) == 1.0


FILTERS = [
    SearchFilters(year_from=2010),
    SearchFilters(year_from=2005, year_to=2007),
    SearchFilters(providers=("arxiv",)),
    SearchFilters(types=("",)),
    SearchFilters(types=("article", "review")),
    SearchFilters(open_access=True),
    SearchFilters(open_access=False),
    SearchFilters(year_from=2000, providers=("openalex", "crossref"), open_access=True),
    SearchFilters(year_from=2019, year_to=2019, providers=("crossref",), types=("review",)),
    SearchFilters(providers=("nobody",)),
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
async def test_filters_on_an_ivf_index(filters: SearchFilters) -> None:
    points = clustered(4000)
    async with FaissVectorStore.memory("c", train_at=1000, nprobe=6) as store:
        await store.ensure(DIM)
        await store.upsert(points)
        assert store.kind == "ivf"
        assert await recall(store, points, 10, filters) >= 0.95
        by_key = {p.key: p for p in points}
        for hit in await store.search(queries(1)[0], 50, filters):
            p = by_key[hit.key]
            assert filters.accepts(
                year=p.year, provider=p.provider, type=p.type, open_access=p.open_access
            )


async def test_a_rare_filter_on_ivf_scans_every_list_and_is_exact() -> None:
    points = [
        VectorPoint(p.key, p.vector, p.year, "rare" if i % 97 == 0 else p.provider, p.type, None)
        for i, p in enumerate(clustered(4000))
    ]
    rare = SearchFilters(providers=("rare",))
    async with FaissVectorStore.memory("c", train_at=1000, nprobe=1) as store:
        await store.ensure(DIM)
        await store.upsert(points)
        assert await recall(store, points, 10, rare) == 1.0
        assert len(await store.search(queries(1)[0], 1000, rare)) == 42


async def test_k_beyond_the_lists_probed_still_gives_k() -> None:
    points = clustered(3000)
    async with FaissVectorStore.memory("c", train_at=1000, nprobe=1) as store:
        await store.ensure(DIM)
        await store.upsert(points)
        assert len(await store.search(queries(1)[0], 2500)) == 2500
        assert len(await store.search(queries(1)[0], 5000)) == 3000


# --- on disk ------------------------------------------------------------------------------


async def test_reopen_after_close(tmp_path: Path) -> None:
    points = clustered(2500)
    store = await FaissVectorStore.open(tmp_path, "c", train_at=1000, nprobe=8)
    await store.ensure(DIM)
    await store.upsert(points)
    await store.delete([points[0].key])
    assert store.kind == "ivf"
    before = [keys(await store.search(q, 10)) for q in queries(5)]
    filters = SearchFilters(year_from=2000, open_access=True)
    before_filtered = keys(await store.search(queries(1)[0], 10, filters))
    await store.flush()  # else the delete stays in the log, replayed at the next open
    await store.aclose()

    async with await FaissVectorStore.open(tmp_path, "c", train_at=1000, nprobe=8) as reopened:
        state = reopened._state
        assert state is not None
        assert not state.writable  # memory-mapped until the first change
        assert (reopened.kind, reopened.nlist) == ("ivf", nlist_for(2500))
        await reopened.ensure(DIM)
        assert await reopened.count() == 2499
        assert [keys(await reopened.search(q, 10)) for q in queries(5)] == before
        assert keys(await reopened.search(queries(1)[0], 10, filters)) == before_filtered
        assert await reopened.revisions([points[7].key, points[0].key]) == {
            points[7].key: points[7].revision
        }
        with pytest.raises(VectorStoreError, match=r"holds 32-dimensional.*makes 8"):
            await reopened.ensure(8)
        await reopened.upsert([points[0]])  # loads the index into memory first
        assert state.writable
        assert keys(await reopened.search(points[0].vector, 1)) == [points[0].key]
        assert (await reopened.health()).detail == (
            f"faiss at {tmp_path / 'c'}, collection c: 2,500 vectors (IVF, {nlist_for(2500)} lists)"
        )


async def test_changes_survive_a_crash_through_the_log(tmp_path: Path) -> None:
    """A process killed after upserts: the next opener replays the log (and drops a torn
    last record)."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from nomosx.vectors.faiss import FaissVectorStore
        from tests.vectors.points import make_points

        async def main():
            store = await FaissVectorStore.open({str(tmp_path)!r}, "c", batch_size=100)
            await store.ensure(16)
            points = make_points(450)
            await store.upsert(points)
            await store.delete([points[1].key])
            os._exit(0)  # no aclose: nothing folded, the lock dies with the process

        asyncio.run(main())
        """
    )
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], check=True, timeout=120)
    folder = tmp_path / "c"
    assert (folder / "CURRENT").read_text().strip() == "1"
    log_file = folder / "log-000001"
    assert log_file.stat().st_size > 450 * 16 * 4
    with log_file.open("ab") as handle:
        handle.write(b"NXFL\x10\x00")  # a record torn as it was written
    torn = log_file.stat().st_size

    points = make_points(450)
    async with await FaissVectorStore.open(tmp_path, "c") as store:
        assert await store.count() == 449
        q = points[3].vector
        assert keys(await store.search(q, 5)) == expected(points[:1] + points[2:], q, 5)
        assert log_file.stat().st_size == torn - 6
    # closed: a flat index is folded into a new snapshot, the old one removed
    assert (folder / "CURRENT").read_text().strip() == "2"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "CURRENT",
        "log-000002",
        "snap-000002",
    ]
    assert (folder / "log-000002").stat().st_size == 0
    async with await FaissVectorStore.open(tmp_path, "c") as store:
        assert await store.count() == 449


async def test_the_log_is_folded_when_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faiss_module, "FOLD_MIN", 100)
    monkeypatch.setattr(faiss_module, "CLOSE_FOLD_SHARE", 10.0)
    points = clustered(1500)
    store = await FaissVectorStore.open(tmp_path, "c", train_at=1000, batch_size=50)
    await store.ensure(DIM)
    await store.upsert(points[:99])
    assert store._generation == 1
    await store.upsert(points[99:120])  # 120 logged >= 100
    assert (store._generation, store._log_points) == (2, 0)
    await store.upsert(points[120:200])  # 80 < max(100, half of 120)
    assert store._generation == 2
    await store.upsert(points[200:1000])  # IVF now: folded at once
    assert (store._generation, store.kind) == (3, "ivf")
    await store.upsert(points[1000:1010])
    await store.aclose()  # 10 logged, under 10 times the snapshot: left in the log
    meta = json.loads((tmp_path / "c" / "snap-000003" / "meta.json").read_text())
    assert (meta["kind"], meta["count"], meta["trained"]) == ("ivf", 1000, 1000)
    async with await FaissVectorStore.open(tmp_path, "c", train_at=1000) as reopened:
        assert await reopened.count() == 1010
        assert reopened._log_points == 10
        await reopened.flush()
        assert (reopened._generation, reopened._log_points) == (4, 0)
        assert await reopened.count() == 1010


async def test_an_interrupted_fold_is_cleaned_up(tmp_path: Path) -> None:
    async with await FaissVectorStore.open(tmp_path, "c") as store:
        await store.ensure(16)
        await store.upsert(make_points(5))
    folder = tmp_path / "c"
    (folder / ".snap-000009").mkdir()
    (folder / "snap-000001").mkdir()
    (folder / "log-000007").write_bytes(b"x")
    async with await FaissVectorStore.open(tmp_path, "c") as store:
        assert await store.count() == 5
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "CURRENT",
        "log-000002",
        "snap-000002",
    ]


async def test_second_writer_is_refused_a_reader_is_not(tmp_path: Path) -> None:
    first = await FaissVectorStore.open(tmp_path, "c")
    await first.ensure(16)
    await first.upsert(make_points(30))
    with pytest.raises(VectorStoreLocked) as caught:
        await FaissVectorStore.open(tmp_path, "c")
    assert caught.value.path == str(tmp_path / "c")
    assert isinstance(caught.value, VectorStoreError)
    async with await FaissVectorStore.open(tmp_path, "other") as other:  # another collection
        await other.ensure(16)

    reader = await FaissVectorStore.open(tmp_path, "c", read_only=True)
    assert await reader.count() == 30  # the snapshot and the log as they were
    with pytest.raises(VectorStoreError, match="read-only"):
        await reader.upsert(make_points(1))
    with pytest.raises(VectorStoreError, match="read-only"):
        await reader.delete(["x"])
    await first.upsert(make_points(40))
    assert await reader.count() == 30  # not seen
    await reader.aclose()
    health = await reader.health()
    assert health.status == "unhealthy"

    await first.aclose()
    async with await FaissVectorStore.open(tmp_path, "c") as second:
        assert await second.count() == 40
    (tmp_path / "empty").mkdir()
    async with await FaissVectorStore.open(tmp_path, "empty", read_only=True) as reader:
        with pytest.raises(VectorStoreError, match="read-only"):
            await reader.ensure(16)
    with pytest.raises(VectorStoreError, match="no such folder"):
        await FaissVectorStore.open(tmp_path / "nowhere", "c", read_only=True)


async def test_lock_in_another_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import fcntl, sys, time
        handle = open({str(tmp_path / "c" / ".lock")!r}, "ab")
        fcntl.flock(handle, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    (tmp_path / "c").mkdir()
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert (await holder.stdout.readline()).strip() == b"locked"
        with pytest.raises(VectorStoreLocked):
            await FaissVectorStore.open(tmp_path, "c")
    finally:
        holder.stdin.close()
        await asyncio.wait_for(holder.wait(), 30)
    async with await FaissVectorStore.open(tmp_path, "c") as store:
        await store.ensure(4)


async def test_unusable_folders_and_names(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(VectorStoreError, match="could not be opened"):
        await FaissVectorStore.open(blocker, "a")
    for name in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(VectorStoreError, match="collection names"):
            await FaissVectorStore.open(tmp_path, name)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "CURRENT").write_text("1\n")
    with pytest.raises(VectorStoreError, match="could not be opened"):
        await FaissVectorStore.open(tmp_path, "broken")
    # the failed opener let go of the lock
    (tmp_path / "broken" / "CURRENT").unlink()
    async with await FaissVectorStore.open(tmp_path, "broken") as store:
        await store.ensure(4)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        FaissVectorStore.memory(batch_size=0)
    with pytest.raises(ValueError, match="train_at"):
        FaissVectorStore.memory(train_at=10)
    with pytest.raises(ValueError, match="nprobe"):
        FaissVectorStore.memory(nprobe=0)
    with pytest.raises(ValueError, match="search_threads"):
        FaissVectorStore.memory(search_threads=0)


async def test_repeated_key_in_one_batch_keeps_the_last() -> None:
    a, b = make_points(2)
    async with FaissVectorStore.memory() as store:
        await store.ensure(16)
        await store.upsert([a, VectorPoint(a.key, b.vector, 2000, "x", None, None, 3)])
        assert await store.count() == 1
        assert await store.revisions([a.key]) == {a.key: 3}
        (hit,) = await store.search(b.vector, 5)
        assert hit.key == a.key
        assert hit.score == pytest.approx(1.0, abs=1e-5)


async def test_searches_run_during_a_reorganisation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Training the IVF index runs off the lock searches take: they go on meanwhile."""
    points = clustered(4000)
    searched = 0
    during: list[int] = []
    build = faiss_module._build_ivf

    def slow_build(*args: object) -> object:
        before = searched
        index = build(*args)  # type: ignore[arg-type]
        time.sleep(0.5)
        during.append(searched - before)
        return index

    monkeypatch.setattr(faiss_module, "_build_ivf", slow_build)
    async with FaissVectorStore.memory("c", train_at=3000) as store:
        await store.ensure(DIM)
        await store.upsert(points[:2000])
        done = asyncio.Event()

        async def searcher() -> None:
            nonlocal searched
            while not done.is_set():
                await store.search(points[searched % 100].vector, 5)
                searched += 1

        task = asyncio.create_task(searcher())
        with caplog.at_level(logging.INFO, logger="nomosx.vectors.faiss"):
            await store.upsert(points[2000:])
        done.set()
        await task
    assert store.kind is None  # closed
    assert during[0] >= 5
    assert f"4,000 points, index exact -> IVF, {nlist_for(4000)} lists" in caplog.text


async def test_factory(tmp_path: Path) -> None:
    store = await open_vector_store(None, None, tmp_path / "v", "c", backend="faiss")
    assert store.name == "faiss-local"
    await store.ensure(4)
    await store.aclose()
    assert (tmp_path / "v" / "c" / "CURRENT").is_file()
    qdrant = await open_vector_store(None, None, tmp_path / "q", "c")
    assert qdrant.name == "qdrant-local"
    await qdrant.aclose()
    with pytest.raises(ValueError, match="unknown vector store backend"):
        await open_vector_store(None, None, tmp_path, "c", backend="chroma")  # type: ignore[arg-type]


async def test_a_failed_log_write_leaves_no_torn_record(tmp_path: Path) -> None:
    points = make_points(40)
    store = await FaissVectorStore.open(tmp_path, "c")
    await store.ensure(16)
    await store.upsert(points[:10])
    assert store._log_handle is not None
    real = store._log_handle
    size = real.tell()

    class Full:
        def __init__(self) -> None:
            self.tell = real.tell
            self.truncate = real.truncate
            self.flush = real.flush

        def write(self, data: bytes) -> int:
            real.write(data[: len(data) // 2])
            real.flush()
            raise OSError(28, "No space left on device")

    store._log_handle = Full()  # type: ignore[assignment]
    with pytest.raises(VectorStoreError, match="No space left"):
        await store.upsert(points[10:20])
    assert (tmp_path / "c" / "log-000001").stat().st_size == size
    store._log_handle = real
    await store.upsert(points[20:40])
    store._release()  # as if killed: nothing folded
    async with await FaissVectorStore.open(tmp_path, "c") as reopened:
        assert await reopened.count() == 30
        assert await reopened.revisions([points[15].key, points[25].key]) == {
            points[25].key: points[25].revision
        }


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"XXXX" + data[4:],  # not a record
        lambda data: data[:30],  # header cut short
        lambda data: data[:-5],  # vectors cut short
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # a flipped bit: CRC mismatch
    ],
    ids=["magic", "header", "body", "crc"],
)
async def test_a_damaged_log_record_and_what_follows_are_dropped(
    tmp_path: Path, damage: object
) -> None:
    points = make_points(20)
    store = await FaissVectorStore.open(tmp_path, "c")
    await store.ensure(16)
    await store.upsert(points[:10])
    log_file = tmp_path / "c" / "log-000001"
    good = log_file.stat().st_size
    await store.upsert(points[10:])
    store._release()  # as if killed
    data = log_file.read_bytes()
    log_file.write_bytes(data[:good] + damage(data[good:]))  # type: ignore[operator]
    async with await FaissVectorStore.open(tmp_path, "c") as reopened:
        assert await reopened.count() == 10
        assert log_file.stat().st_size == good


async def test_snapshots_of_another_format_are_refused(tmp_path: Path) -> None:
    async with await FaissVectorStore.open(tmp_path, "c") as store:
        await store.ensure(16)
    meta_file = tmp_path / "c" / "snap-000001" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps(meta | {"format": 99}))
    with pytest.raises(VectorStoreError, match="format 99"):
        await FaissVectorStore.open(tmp_path, "c")
    meta_file.write_text(json.dumps(meta | {"dim": 8}))
    with pytest.raises(VectorStoreError, match="16-dimensional vectors, meta says 8"):
        await FaissVectorStore.open(tmp_path, "c")


async def test_a_failing_fold_on_close_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await FaissVectorStore.open(tmp_path, "c")
    await store.ensure(16)
    await store.upsert(make_points(5))

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", full)
    with pytest.raises(VectorStoreError, match=r"close: .*No space left"):
        await store.aclose()
    monkeypatch.undo()
    assert (await store.health()).status == "unhealthy"
    async with await FaissVectorStore.open(tmp_path, "c") as reopened:  # lock let go
        assert await reopened.count() == 5  # from the log

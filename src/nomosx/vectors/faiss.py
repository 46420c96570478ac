"""The vector store on faiss: in a folder on this machine (or in memory), for libraries
too large for Qdrant's local mode when no Qdrant server is at hand.

Design
    Index       Inner product on vectors normalised here on the way in (stored and query),
                so the score is the cosine. While the collection is small (fewer than
                ``train_at`` points, 50,000 by default) an exact ``IndexFlatIP``; from
                there an ``IndexIVFFlat`` with ``nlist = 4·sqrt(n)`` lists (at most
                ``n / 39``, faiss's floor of training points per list), its spherical
                k-means trained on a sample of 40 points per list. The IVF index is
                trained again, from its own contents, when the collection grows to 4
                times the size it was trained at or shrinks to a quarter of it (``nlist``
                is then 2 times off ``4·sqrt(n)``); below ``train_at / 2`` points it
                becomes flat again. This reorganisation runs at the end of the ``upsert``
                or ``delete`` call that crossed the line: searches go on meanwhile on the
                old index, other changes wait (at 1 million points of 384 dimensions on 2
                cores, some 2 to 3 minutes).
    Search      ``nprobe`` lists (``NPROBE``: 384, tuned on ``bench/search_scale.py`` at a
                million points, 4,000 lists: recall@10 against the exact answer 0.97,
                0.95 at 256; its synthetic vectors are harder for IVF than real MiniLM
                ones, see there). A filter passing a share ``s`` of the points probes
                ``nprobe / sqrt(s)`` lists, and at least enough lists to hold 4·k points
                that pass (on the bench, a year filter passing 29 % or 2.9 %: recall@10
                0.99 and 1.00, against 0.97 and 0.93 with ``nprobe`` lists); a filter
                passing few points scans every list, which is exact. A search returning
                fewer than ``k`` of the points that pass is done again over every list.
                The flat index is always exact.
    Points      Each key has a slot, an int64: the id of its vector in faiss and its row
                in the payload columns, numpy arrays (year, provider and type as codes,
                open access, revision) that filters read vectorised into a boolean mask,
                handed to faiss as an ``IDSelectorBitmap``. In the flat index the slot is
                the row: a replaced vector is overwritten in place, a deleted one zeroed
                and its slot reused by the next new key (the mask then leaves out empty
                slots). The IVF index removes and adds by id.
    On disk     ``<folder>/<collection>/``: ``CURRENT`` names the live snapshot
                ``snap-N/`` (``index.faiss``, ``meta.json``, ``keys.json``, one ``.npy``
                per column), and ``log-N`` holds every change since, appended (a
                length, a CRC and the batch) and flushed to the OS before the call
                returns, so a change survives the process being killed (a power cut may
                lose the last ones: vectors are derived data, re-embedded from the
                library). Opening replays the log; a torn last record is dropped. The log
                is folded into a new snapshot (files fsynced in a hidden folder, renamed,
                then ``CURRENT`` replaced: a reader sees the old or the new) when it holds
                ``max(50,000, half the snapshot)`` points, after a reorganisation, on
                ``flush``, and on ``aclose`` when it holds a tenth of the snapshot or the
                index is flat (cheap to write). Searches go on during a fold.
    Opening     A snapshot's index is memory-mapped (``IO_FLAG_MMAP_IFC``: faiss reads the
                vectors in place, so opening takes milliseconds and the pages come in as
                searches touch them); the first change loads it into memory (a few
                seconds at a million points), since faiss cannot change a mapped index.
    Locking     One process changes a collection: the writer holds an exclusive ``flock``
                on ``.lock`` in the collection's folder, and a second opener (of this
                process too) gets ``VectorStoreLocked``. ``open(..., read_only=True)``
                takes no lock: it reads the snapshot and log as they are when opened
                (later changes of the writer are not seen) and refuses changes.
    Threads     Every call runs in ``asyncio.to_thread``. Changes run one at a time (a
                mutex); they touch the index and columns under the write side of a
                readers-writer lock, searches under its read side, so searches run side
                by side and wait only for the brief in-place edits. A search uses
                ``search_threads`` OpenMP threads (1 by default; OpenMP's setting is per
                calling thread): on a machine where other work runs, threads of one
                search wait on each other at every barrier (a flat search of 100,000
                points took 43 ms on 2 busy cores, 7 ms on one). Training and adding use
                every core (``OMP_NUM_THREADS``).
    Errors      Whatever faiss, numpy or the file system raise becomes a
                ``VectorStoreError`` naming the store and the operation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import shutil
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, TypeVar

import faiss
import numpy as np
import numpy.typing as npt

from nomosx.embed.base import Vectors
from nomosx.errors import NomosXError, VectorStoreError, VectorStoreLocked
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.vectors.base import VectorHit, VectorPoint

__all__ = ["NPROBE", "TRAIN_AT", "FaissVectorStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Mode = Literal["local", "memory"]
Kind = Literal["flat", "ivf"]
Ids = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

BATCH_SIZE: Final = 4096
#: Points from which the index is an IVF index rather than exact.
TRAIN_AT: Final = 50_000
#: IVF lists searched (of 4·sqrt(n)): recall@10 0.97 at 1M points on the bench.
NPROBE: Final = 384
GROWTH: Final = 4  # retrain when n leaves [trained / GROWTH, trained * GROWTH]
LIST_FACTOR: Final = 4.0  # nlist = LIST_FACTOR * sqrt(n) ...
MIN_PER_LIST: Final = 39  # ... with at least this many points per list (faiss's floor)
TRAIN_PER_LIST: Final = 40  # training sample per list
FOLD_MIN: Final = 50_000  # log points that fold the log into a snapshot ...
FOLD_SHARE: Final = 0.5  # ... or this share of the snapshot, whichever is larger
CLOSE_FOLD_SHARE: Final = 0.1  # on close, fold a log this large (always when flat)
CHUNK: Final = 65_536  # rows per add when an index is built

FORMAT: Final = 1
NO_YEAR: Final = np.iinfo(np.int32).min
_SEED: Final = 20_240_601
_LOG_MAGIC: Final = b"NXFL"
_LOG_HEAD: Final = struct.Struct("<4sIQI")  # magic, header bytes, body bytes, crc32
_COLLECTION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_COLUMNS: Final = ("year", "provider", "type", "open_access", "revision")
_ERRORS: Final = (RuntimeError, OSError, ValueError, MemoryError, KeyError, TypeError)
_BUILD_THREADS: Final = faiss.omp_get_max_threads()  # OMP_NUM_THREADS, else every core


# --- locks ------------------------------------------------------------------------------------


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# --- the collection in memory -----------------------------------------------------------------


@dataclass
class _Columns:
    """The payload of each slot; ``keys[slot] is None`` for an empty slot. ``slot_of`` is
    built when first needed (a change, ``revisions``): at a million keys it takes half a
    second, which a process that only searches never spends."""

    year: npt.NDArray[np.int32]
    provider: npt.NDArray[np.int32]
    type: npt.NDArray[np.int32]
    open_access: npt.NDArray[np.int8]
    revision: npt.NDArray[np.int64]
    alive: Mask
    keys: list[str | None]
    providers: list[str]
    types: list[str]  # code 0 is "no type"
    count: int = 0
    free: list[int] = field(default_factory=list)  # empty slots, lowest last
    _slot_of: dict[str, int] | None = None

    @classmethod
    def empty(cls) -> _Columns:
        return cls.load({c: np.zeros(0) for c in _COLUMNS}, [], [], [""])

    @classmethod
    def load(
        cls,
        columns: dict[str, npt.NDArray[Any]],
        keys: list[str | None],
        providers: list[str],
        types: list[str],
    ) -> _Columns:
        alive = np.fromiter((k is not None for k in keys), dtype=np.bool_, count=len(keys))
        out = cls(
            year=columns["year"].astype(np.int32),
            provider=columns["provider"].astype(np.int32),
            type=columns["type"].astype(np.int32),
            open_access=columns["open_access"].astype(np.int8),
            revision=columns["revision"].astype(np.int64),
            alive=alive,
            keys=keys,
            providers=providers,
            types=types,
        )
        out.count = int(np.count_nonzero(alive))
        out.free = np.flatnonzero(~alive)[::-1].tolist()
        return out

    @property
    def slot_of(self) -> dict[str, int]:
        if self._slot_of is None:
            slot_of: dict[Any, int] = dict(zip(self.keys, range(len(self.keys)), strict=True))
            slot_of.pop(None, None)
            self._slot_of = slot_of
        return self._slot_of

    @property
    def slots(self) -> int:
        return len(self.keys)

    def code(self, vocabulary: list[str], value: str) -> int:
        try:
            return vocabulary.index(value)
        except ValueError:
            vocabulary.append(value)
            return len(vocabulary) - 1

    def grow(self, slots: int) -> None:
        """Room in the arrays for ``slots`` slots."""
        have = self.year.shape[0]
        if slots <= have:
            return
        size = max(slots, 2 * have, 1024)
        for name in (*_COLUMNS, "alive"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[:have] = old
            setattr(self, name, new)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name)[: self.slots] for name in _COLUMNS}

    def mask(self, filters: SearchFilters | None) -> Mask | None:
        """Slots holding a point that passes ``filters``; ``None`` for every point."""
        n = self.slots
        conditions: list[Mask] = []
        if filters is not None:
            if filters.year_from is not None:
                conditions.append(self.year[:n] >= filters.year_from)  # NO_YEAR fails
            if filters.year_to is not None:
                year = self.year[:n]
                conditions.append((year <= filters.year_to) & (year != NO_YEAR))
            if filters.providers:
                codes = [i for i, p in enumerate(self.providers) if p in filters.providers]
                conditions.append(np.isin(self.provider[:n], codes))
            if filters.types:
                codes = [i for i, t in enumerate(self.types) if t in filters.types]
                conditions.append(np.isin(self.type[:n], codes))
            if filters.open_access is not None:
                is_open = self.open_access[:n] == 1  # unknown counts as closed
                conditions.append(is_open if filters.open_access else ~is_open)
        if not conditions:
            return None
        out = self.alive[:n].copy()
        for condition in conditions:
            out &= condition
        return out


@dataclass
class _State:
    dim: int
    kind: Kind
    index: Any  # faiss.IndexFlatIP or faiss.IndexIVFFlat
    columns: _Columns
    trained: int = 0  # points the IVF index was trained on
    writable: bool = True  # False while the index is a memory-mapped snapshot
    source: Path | None = None  # the snapshot file of a mapped index

    @property
    def nlist(self) -> int:
        return int(self.index.nlist) if self.kind == "ivf" else 0

    def describe(self) -> str:
        if self.kind == "flat":
            return "exact"
        return f"IVF, {self.nlist:,} lists"


def _flat(dim: int) -> Any:
    return faiss.IndexFlatIP(dim)


def _flat_rows(index: Any, dim: int) -> Vectors:
    """The vectors of a flat index, a writable view (row = slot)."""
    n = int(index.ntotal)
    if not n:
        return np.zeros((0, dim), dtype=np.float32)
    rows: Vectors = faiss.rev_swig_ptr(index.get_xb(), n * dim).reshape(n, dim)
    return rows


def nlist_for(n: int) -> int:
    """The IVF lists for ``n`` points: ``4·sqrt(n)``, at most ``n / 39``, at least 1."""
    return max(1, min(round(LIST_FACTOR * math.sqrt(n)), n // MIN_PER_LIST))


def _contents(state: _State) -> Iterator[tuple[Ids, Vectors]]:
    """Every point's slot and vector, in chunks of about ``CHUNK`` rows."""
    if state.kind == "flat":
        alive = np.flatnonzero(state.columns.alive[: state.columns.slots]).astype(np.int64)
        rows = _flat_rows(state.index, state.dim)
        for start in range(0, alive.size, CHUNK):
            ids = alive[start : start + CHUNK]
            yield ids, rows[ids]
        return
    index = state.index
    invlists = index.invlists
    code_size = int(index.code_size)
    ids_parts: list[Ids] = []
    rows_parts: list[Vectors] = []
    held = 0
    for number in range(int(index.nlist)):
        size = int(invlists.list_size(number))
        if not size:
            continue
        ids_ptr = invlists.get_ids(number)
        codes_ptr = invlists.get_codes(number)
        try:
            ids_parts.append(np.array(faiss.rev_swig_ptr(ids_ptr, size), dtype=np.int64))
            codes = faiss.rev_swig_ptr(codes_ptr, size * code_size)
            rows_parts.append(np.array(codes).view(np.float32).reshape(size, state.dim))
        finally:
            invlists.release_ids(number, ids_ptr)
            invlists.release_codes(number, codes_ptr)
        held += size
        if held >= CHUNK:
            yield np.concatenate(ids_parts), np.concatenate(rows_parts)
            ids_parts, rows_parts, held = [], [], 0
    if held:
        yield np.concatenate(ids_parts), np.concatenate(rows_parts)


def _build_ivf(state: _State, n: int) -> Any:
    """A new IVF index of the points of ``state`` (``n`` of them), trained on a sample."""
    nlist = nlist_for(n)
    share = min(1.0, TRAIN_PER_LIST * nlist / max(n, 1))
    rng = np.random.default_rng(_SEED)
    sample = [rows[rng.random(len(rows)) < share] for _, rows in _contents(state)]
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(state.dim), state.dim, nlist, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = _SEED
    index.cp.max_points_per_centroid = 1 << 20  # the sample is drawn here
    index.train(np.ascontiguousarray(np.concatenate(sample)))
    del sample
    for ids, rows in _contents(state):
        index.add_with_ids(np.ascontiguousarray(rows), ids)
    return index


# --- the log of changes -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    """One batch: an upsert (with vectors and payload) or a delete (keys only)."""

    op: Literal["upsert", "delete"]
    keys: list[str]
    vectors: Vectors | None = None
    year: list[int | None] | None = None
    provider: list[str] | None = None
    type: list[str | None] | None = None
    open_access: list[bool | None] | None = None
    revision: list[int] | None = None

    def encode(self) -> bytes:
        header = json.dumps(
            {
                "op": self.op,
                "keys": self.keys,
                "year": self.year,
                "provider": self.provider,
                "type": self.type,
                "open_access": self.open_access,
                "revision": self.revision,
                "shape": None if self.vectors is None else list(self.vectors.shape),
            },
            separators=(",", ":"),
        ).encode()
        body = b"" if self.vectors is None else np.ascontiguousarray(self.vectors).tobytes()
        crc = zlib.crc32(body, zlib.crc32(header))
        return _LOG_HEAD.pack(_LOG_MAGIC, len(header), len(body), crc) + header + body

    @classmethod
    def decode(cls, header: bytes, body: bytes) -> _Change:
        data = json.loads(header)
        vectors = None
        if data["shape"] is not None:
            vectors = np.frombuffer(body, dtype=np.float32).reshape(data["shape"])
        return cls(
            op=data["op"],
            keys=data["keys"],
            vectors=vectors,
            year=data["year"],
            provider=data["provider"],
            type=data["type"],
            open_access=data["open_access"],
            revision=data["revision"],
        )


def _read_log(path: Path) -> tuple[list[_Change], int]:
    """The complete records of the log at ``path`` and the length they span (a torn or
    damaged record and what follows it are left out)."""
    changes: list[_Change] = []
    good = 0
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return changes, 0
    with handle:
        while True:
            head = handle.read(_LOG_HEAD.size)
            if len(head) < _LOG_HEAD.size:
                break
            magic, header_len, body_len, crc = _LOG_HEAD.unpack(head)
            if magic != _LOG_MAGIC:
                break
            header = handle.read(header_len)
            body = handle.read(body_len)
            if len(header) < header_len or len(body) < body_len:
                break
            if zlib.crc32(body, zlib.crc32(header)) != crc:
                break
            try:
                changes.append(_Change.decode(header, body))
            except (ValueError, KeyError, TypeError):
                break
            good = handle.tell()
    return changes, good


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _generation(folder: Path) -> int | None:
    try:
        return int((folder / "CURRENT").read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return None


def _snap(folder: Path, generation: int) -> Path:
    return folder / f"snap-{generation:06d}"


def _log(folder: Path, generation: int) -> Path:
    return folder / f"log-{generation:06d}"


def _load_snapshot(folder: Path, generation: int) -> _State:
    snap = _snap(folder, generation)
    meta = json.loads((snap / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{snap} is of format {meta.get('format')}, this NomosX reads {FORMAT}")
    keys = json.loads((snap / "keys.json").read_text(encoding="utf-8"))
    columns = {name: np.load(snap / f"{name}.npy") for name in _COLUMNS}
    index = faiss.read_index(str(snap / "index.faiss"), faiss.IO_FLAG_MMAP_IFC)
    dim = int(meta["dim"])
    if int(index.d) != dim:
        raise ValueError(f"{snap}: the index holds {index.d}-dimensional vectors, meta says {dim}")
    return _State(
        dim=dim,
        kind=meta["kind"],
        index=index,
        columns=_Columns.load(columns, keys, meta["providers"], meta["types"]),
        trained=int(meta["trained"]),
        writable=False,
        source=snap / "index.faiss",
    )


# --- the store --------------------------------------------------------------------------------


class FaissVectorStore:
    """``VectorStore`` on a faiss index: ``await FaissVectorStore.open(folder, collection)``
    (on disk) or ``FaissVectorStore.memory(collection)``.

    ``train_at``: points from which the index is IVF; ``nprobe``: IVF lists searched and
    ``search_threads``: OpenMP threads of a search (both settable); ``batch_size``: points
    per change appended to the log."""

    def __init__(
        self,
        collection: str,
        *,
        folder: Path | None = None,
        read_only: bool = False,
        train_at: int = TRAIN_AT,
        nprobe: int = NPROBE,
        batch_size: int = BATCH_SIZE,
        search_threads: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if train_at < 2 * MIN_PER_LIST:
            raise ValueError(f"train_at must be at least {2 * MIN_PER_LIST}, got {train_at}")
        if nprobe < 1:
            raise ValueError(f"nprobe must be positive, got {nprobe}")
        if search_threads < 1:
            raise ValueError(f"search_threads must be positive, got {search_threads}")
        self.search_threads = search_threads
        self._collection = collection
        self._folder = folder
        self._read_only = read_only
        self._mode: Mode = "memory" if folder is None else "local"
        self.train_at = train_at
        self.nprobe = nprobe
        self._batch_size = batch_size
        self._where = (
            f"in-memory faiss, collection {collection}"
            if folder is None
            else f"faiss at {folder}, collection {collection}"
        )
        self._state: _State | None = None
        self._rw = _ReadWriteLock()
        self._mutex = threading.Lock()  # one change (or fold) at a time
        self._lock_handle: IO[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._generation = 0
        self._snapshot_points = 0
        self._log_points = 0
        self._closed = False
        self.reorganisations = 0  # how many times the index was rebuilt (tests, bench)

    # --- opening ------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path,
        collection: str,
        *,
        read_only: bool = False,
        train_at: int = TRAIN_AT,
        nprobe: int = NPROBE,
        batch_size: int = BATCH_SIZE,
        search_threads: int = 1,
    ) -> FaissVectorStore:
        """The collection ``collection`` in the folder ``path`` (created if missing, unless
        ``read_only``). Raises ``VectorStoreLocked`` when another store, of this process or
        another, has it open for writing."""
        if not _COLLECTION.fullmatch(collection):
            raise VectorStoreError(
                f"faiss collection names are letters, digits, '.', '_' and '-': {collection!r}"
            )
        store = cls(
            collection,
            folder=Path(path) / collection,
            read_only=read_only,
            train_at=train_at,
            nprobe=nprobe,
            batch_size=batch_size,
            search_threads=search_threads,
        )
        try:
            await asyncio.to_thread(store._open_folder)
        except NomosXError:
            store._release()
            raise
        except _ERRORS as exc:
            store._release()
            raise VectorStoreError(
                f"the vector folder {store._folder} could not be opened: {exc}"
            ) from exc
        return store

    @classmethod
    def memory(
        cls,
        collection: str = "sources",
        *,
        train_at: int = TRAIN_AT,
        nprobe: int = NPROBE,
        batch_size: int = BATCH_SIZE,
        search_threads: int = 1,
    ) -> FaissVectorStore:
        """A store in memory: nothing kept after ``aclose``."""
        return cls(
            collection,
            train_at=train_at,
            nprobe=nprobe,
            batch_size=batch_size,
            search_threads=search_threads,
        )

    async def __aenter__(self) -> FaissVectorStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the VectorStore interface --------------------------------------------------------

    @property
    def name(self) -> str:
        """``faiss-local`` (a folder) or ``faiss-memory``."""
        return f"faiss-{self._mode}"

    @property
    def collection(self) -> str:
        return self._collection

    @property
    def kind(self) -> Kind | None:
        """``flat`` (exact) or ``ivf``; ``None`` before ``ensure``."""
        return None if self._state is None else self._state.kind

    @property
    def nlist(self) -> int:
        return 0 if self._state is None else self._state.nlist

    async def ensure(self, dim: int) -> None:
        if dim < 1:
            raise VectorStoreError(f"{self._where}: dimension must be positive, got {dim}")
        await self._call("ensure", partial(self._ensure, dim))

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        for start in range(0, len(points), self._batch_size):
            batch = points[start : start + self._batch_size]
            matrix = self._matrix([p.vector for p in batch], [p.key for p in batch])
            await self._upsert_batch([p.key for p in batch], matrix, list(batch))
        if points:
            await self._call("upsert", self._settle)

    async def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), self._batch_size):
            change = _Change("delete", [*keys[start : start + self._batch_size]])
            await self._call("delete", partial(self._change, change))
        if keys:
            await self._call("delete", self._settle)

    async def search(
        self, vector: Vectors, k: int, filters: SearchFilters | None = None
    ) -> list[VectorHit]:
        if k <= 0:
            return []
        query = self._matrix([vector], ["the query"])
        return await self._call("search", partial(self._search, query, k, filters))

    async def revisions(self, keys: Sequence[str]) -> dict[str, int]:
        return await self._call("revisions", partial(self._revisions, [*keys]))

    async def count(self) -> int:
        return await self._call("count", lambda: self._live("count").columns.count)

    async def flush(self) -> None:
        """Fold the log of changes into a new snapshot now (on disk; a no-op in memory)."""
        await self._call("flush", partial(self._fold_if, lambda: self._log_points > 0))

    async def health(self) -> SourceHealth:
        started = time.perf_counter()

        def done(status: Literal["healthy", "degraded", "unhealthy"], detail: str) -> SourceHealth:
            latency = (time.perf_counter() - started) * 1000
            return SourceHealth(self.name, status, latency_ms=latency, detail=detail)

        if self._closed:
            return done("unhealthy", f"{self._where}: the store is closed")
        state = self._state
        if state is None:
            return done("degraded", f"{self._where}: the collection is not created yet")
        detail = f"{self._where}: {state.columns.count:,} vectors ({state.describe()})"
        return done("healthy", detail + (", read-only" if self._read_only else ""))

    async def aclose(self) -> None:
        if self._closed:
            return
        try:
            await asyncio.to_thread(self._fold_if, self._fold_on_close)
        except _ERRORS as exc:
            raise VectorStoreError(f"{self._where}: close: {exc}") from exc
        finally:
            self._closed = True
            self._release()

    # --- calls ------------------------------------------------------------------------------

    async def _call(self, operation: str, job: Callable[[], T]) -> T:
        """Run ``job`` on a worker thread; any failure becomes a ``VectorStoreError``."""
        if self._closed:
            raise VectorStoreError(f"{self._where}: {operation} on a closed vector store")
        try:
            return await asyncio.to_thread(job)
        except NomosXError:
            raise
        except _ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            raise VectorStoreError(f"{self._where}: {operation}: {reason}") from exc

    async def _upsert_batch(
        self, keys: list[str], matrix: Vectors, points: list[VectorPoint]
    ) -> None:
        change = _Change(
            "upsert",
            keys,
            vectors=matrix,
            year=[None if p.year is None else int(p.year) for p in points],
            provider=[p.provider for p in points],
            type=[p.type or None for p in points],
            open_access=[None if p.open_access is None else bool(p.open_access) for p in points],
            revision=[int(p.revision) for p in points],
        )
        await self._call("upsert", partial(self._change, change))

    def _live(self, operation: str) -> _State:
        if self._state is None:
            raise VectorStoreError(
                f"{self._where}: {operation}: the collection does not exist yet (ensure creates it)"
            )
        return self._state

    def _writable_store(self, operation: str) -> None:
        if self._read_only:
            raise VectorStoreError(f"{self._where}: {operation}: the store is open read-only")

    def _matrix(self, vectors: Sequence[Vectors], keys: Sequence[str]) -> Vectors:
        """The vectors as normalised float32 rows, checked: 1-D, finite, of the dimension."""
        rows = [np.asarray(v, dtype=np.float32) for v in vectors]
        state = self._state
        dim = state.dim if state is not None else (rows[0].size if rows else 0)
        for row, key in zip(rows, keys, strict=True):
            if row.ndim != 1 or row.size != dim:
                raise VectorStoreError(
                    f"{self._where}: the vector of {key} has shape {row.shape}, expected ({dim},)"
                )
        matrix = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        if not np.isfinite(matrix).all():
            bad = [key for row, key in zip(rows, keys, strict=True) if not np.isfinite(row).all()]
            raise VectorStoreError(f"{self._where}: the vector of {bad[0]} is not finite")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised: Vectors = np.ascontiguousarray(
            (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
        )
        return normalised

    # --- on disk ----------------------------------------------------------------------------

    def _open_folder(self) -> None:
        faiss.omp_set_num_threads(_BUILD_THREADS)  # a log to replay
        folder = self._folder
        assert folder is not None
        if not self._read_only:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock_folder(folder)
        for attempt in range(5):  # a read-only opener may race a fold of the writer
            generation = _generation(folder)
            if generation is None:
                if self._read_only and not folder.is_dir():
                    raise VectorStoreError(f"{self._where}: no such folder")
                break
            try:
                self._load(folder, generation)
                break
            except FileNotFoundError:
                if not self._read_only or attempt == 4:
                    raise
        if not self._read_only:
            self._tidy(folder)

    def _lock_folder(self, folder: Path) -> None:
        if sys.platform == "win32":  # pragma: no cover - NomosX runs on POSIX
            return
        import fcntl

        handle = (folder / ".lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise VectorStoreLocked(str(folder)) from None
        self._lock_handle = handle

    def _load(self, folder: Path, generation: int) -> None:
        state = _load_snapshot(folder, generation)
        changes, good = _read_log(_log(folder, generation))
        self._state = state
        self._generation = generation
        self._snapshot_points = state.columns.count
        for change in changes:
            self._apply(change)
        self._log_points = sum(len(c.keys) for c in changes)
        if changes:
            self._reorganise_if_due()
        if self._read_only:
            return
        log_path = _log(folder, generation)
        with log_path.open("ab") as handle:
            if handle.tell() > good:
                log.warning("%s: dropped a torn last change of %s", self._where, log_path)
                handle.truncate(good)
        self._log_handle = log_path.open("ab")

    def _tidy(self, folder: Path) -> None:
        """Remove what an interrupted fold or an older snapshot left."""
        keep = {_snap(folder, self._generation).name, _log(folder, self._generation).name}
        for path in folder.iterdir():
            if path.name.startswith((".snap-", "snap-", "log-")) and path.name not in keep:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def _release(self) -> None:
        for handle in (self._log_handle, self._lock_handle):
            if handle is not None:
                with suppress(OSError):
                    handle.close()
        self._log_handle = self._lock_handle = None
        self._state = None

    def _fold_on_close(self) -> bool:
        if not self._log_points or self._state is None:
            return False
        return (
            self._state.kind == "flat"
            or self._log_points >= CLOSE_FOLD_SHARE * self._snapshot_points
        )

    def _fold_if(self, due: Callable[[], bool]) -> None:
        if self._folder is None or self._read_only:
            return
        with self._mutex:
            if self._state is not None and due():
                self._fold()

    def _fold(self) -> None:
        """Write the collection as a new snapshot with an empty log, and make it current
        (the caller holds the mutex: no change runs meanwhile; searches do)."""
        folder, state = self._folder, self._state
        assert folder is not None
        assert state is not None
        generation = self._generation + 1
        tmp = folder / f".snap-{generation:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        columns = state.columns
        faiss.write_index(state.index, str(tmp / "index.faiss"))
        for name, values in columns.arrays().items():
            np.save(tmp / f"{name}.npy", values)
        (tmp / "keys.json").write_text(json.dumps(columns.keys), encoding="utf-8")
        meta = {
            "format": FORMAT,
            "collection": self._collection,
            "dim": state.dim,
            "kind": state.kind,
            "nlist": state.nlist,
            "trained": state.trained,
            "count": columns.count,
            "providers": columns.providers,
            "types": columns.types,
        }
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
        tmp.rename(_snap(folder, generation))
        _log(folder, generation).touch()
        current = folder / ".CURRENT.tmp"
        current.write_text(f"{generation}\n", encoding="ascii")
        _fsync(current)
        os.replace(current, folder / "CURRENT")
        _fsync(folder)
        if self._log_handle is not None:
            self._log_handle.close()
        self._log_handle = _log(folder, generation).open("ab")
        self._generation = generation
        self._snapshot_points = columns.count
        self._log_points = 0
        self._tidy(folder)

    # --- changes ----------------------------------------------------------------------------

    def _ensure(self, dim: int) -> None:
        with self._mutex:
            state = self._state
            if state is not None:
                if state.dim != dim:
                    raise VectorStoreError(
                        f"{self._where}: the collection holds {state.dim}-dimensional vectors,"
                        f" the embedder makes {dim}. Collection names include the model and"
                        " the dimension, so another program made this one: delete its folder"
                        " or choose another name"
                    )
                return
            self._writable_store("ensure")
            self._state = _State(dim=dim, kind="flat", index=_flat(dim), columns=_Columns.empty())
            if self._folder is not None:
                self._fold()

    def _change(self, change: _Change) -> None:
        """Log ``change`` (on disk), then apply it."""
        self._writable_store(change.op)
        faiss.omp_set_num_threads(_BUILD_THREADS)
        with self._mutex:
            self._live(change.op)
            handle = self._log_handle
            if handle is not None:
                end = handle.tell()
                try:
                    handle.write(change.encode())
                    handle.flush()
                except OSError:  # a full disk: no torn record before the next ones
                    with suppress(OSError):
                        handle.truncate(end)
                    raise
            self._log_points += len(change.keys)
            self._apply(change)

    def _settle(self) -> None:
        """After a call's changes: reorganise the index if due, fold the log if due."""
        faiss.omp_set_num_threads(_BUILD_THREADS)
        with self._mutex:
            reorganised = self._reorganise_if_due()
            log_full = self._log_points >= max(FOLD_MIN, FOLD_SHARE * self._snapshot_points)
            if self._folder is not None and (reorganised or log_full):
                self._fold()

    def _writable(self, state: _State) -> None:
        """Load a memory-mapped index into memory: faiss cannot change a mapped one."""
        if state.writable:
            return
        assert state.source is not None
        index = faiss.read_index(str(state.source))
        with self._rw.writing():
            state.index = index
            state.writable = True
            state.source = None

    def _apply(self, change: _Change) -> None:
        state = self._live(change.op)
        if change.op == "delete":
            self._apply_delete(state, change.keys)
        else:
            self._apply_upsert(state, change)

    def _apply_upsert(self, state: _State, change: _Change) -> None:
        assert change.vectors is not None
        assert change.year is not None
        assert change.provider is not None
        assert change.type is not None
        assert change.open_access is not None
        assert change.revision is not None
        last = {key: i for i, key in enumerate(change.keys)}  # a repeated key: the last wins
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        vectors = np.ascontiguousarray(change.vectors[rows])
        self._writable(state)
        columns = state.columns
        slot_of = columns.slot_of
        old = [slot_of.get(change.keys[i], -1) for i in rows]
        with self._rw.writing():
            slots = np.empty(len(rows), dtype=np.int64)
            appended: list[int] = []
            for j, slot in enumerate(old):
                if slot < 0:
                    if columns.free:
                        slot = columns.free.pop()
                    else:
                        slot = columns.slots
                        columns.keys.append(None)
                        appended.append(j)
                slots[j] = slot
            columns.grow(columns.slots)
            columns.count += old.count(-1)
            if state.kind == "flat":
                if appended:
                    state.index.add(vectors[appended])
                view = _flat_rows(state.index, state.dim)
                view[slots] = vectors
            else:
                replaced = np.array([s for s in old if s >= 0], dtype=np.int64)
                if replaced.size:
                    state.index.remove_ids(replaced)
                state.index.add_with_ids(vectors, slots)
            for j, i in enumerate(rows.tolist()):
                slot = int(slots[j])
                key = change.keys[i]
                year = change.year[i]
                columns.keys[slot] = key
                slot_of[key] = slot
                columns.alive[slot] = True
                columns.year[slot] = NO_YEAR if year is None else year
                columns.provider[slot] = columns.code(columns.providers, change.provider[i])
                kind = change.type[i]
                columns.type[slot] = 0 if not kind else columns.code(columns.types, kind)
                open_access = change.open_access[i]
                columns.open_access[slot] = -1 if open_access is None else int(open_access)
                columns.revision[slot] = change.revision[i]

    def _apply_delete(self, state: _State, keys: list[str]) -> None:
        columns = state.columns
        slot_of = columns.slot_of
        slots = sorted({slot_of[k] for k in keys if k in slot_of})
        if not slots:
            return
        self._writable(state)
        ids = np.array(slots, dtype=np.int64)
        with self._rw.writing():
            if state.kind == "flat":
                _flat_rows(state.index, state.dim)[ids] = 0.0
            else:
                state.index.remove_ids(ids)
            for slot in slots:
                key = columns.keys[slot]
                assert key is not None
                del slot_of[key]
                columns.keys[slot] = None
                columns.alive[slot] = False
                columns.free.append(slot)
            columns.free.sort(reverse=True)  # lowest slot reused first
            columns.count -= len(slots)

    def _reorganise_if_due(self) -> bool:
        """Flat to IVF, IVF retrained, or IVF to flat, by the rule of the module; whether
        it happened. Runs under the mutex: searches go on over the old index."""
        state = self._state
        if state is None:
            return False
        n = state.columns.count
        if state.kind == "flat" and n >= self.train_at:
            target: Kind = "ivf"
        elif state.kind == "ivf" and n < self.train_at // 2:
            target = "flat"
        elif state.kind == "ivf" and not state.trained / GROWTH <= n <= state.trained * GROWTH:
            target = "ivf"
        else:
            return False
        started = time.perf_counter()
        before = state.describe()
        if target == "ivf":
            index = _build_ivf(state, n)
            with self._rw.writing():
                state.index, state.kind, state.trained = index, "ivf", n
                state.writable, state.source = True, None
        else:
            self._to_flat(state)
        self.reorganisations += 1
        log.info(
            "%s: %s points, index %s -> %s in %.1f s",
            self._where,
            f"{n:,}",
            before,
            state.describe(),
            time.perf_counter() - started,
        )
        return True

    def _to_flat(self, state: _State) -> None:
        """An exact index again, its slots renumbered without gaps."""
        old = state.columns
        ids_parts: list[Ids] = []
        rows_parts: list[Vectors] = []
        for ids, rows in _contents(state):
            ids_parts.append(ids)
            rows_parts.append(rows)
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, dtype=np.int64)
        order = np.argsort(ids)
        ids = ids[order]
        matrix = (
            np.concatenate(rows_parts)[order]
            if rows_parts
            else np.zeros((0, state.dim), dtype=np.float32)
        )
        columns = _Columns.load(
            {name: values[ids] for name, values in old.arrays().items()},
            [old.keys[i] for i in ids.tolist()],
            old.providers,
            old.types,
        )
        index = _flat(state.dim)
        index.add(np.ascontiguousarray(matrix))
        with self._rw.writing():
            state.index, state.kind, state.columns, state.trained = index, "flat", columns, 0
            state.writable, state.source = True, None

    # --- reads ------------------------------------------------------------------------------

    def _revisions(self, keys: list[str]) -> dict[str, int]:
        with self._rw.reading():
            columns = self._live("revisions").columns
            out: dict[str, int] = {}
            for key in keys:
                slot = columns.slot_of.get(key)
                if slot is not None:
                    out[key] = int(columns.revision[slot])
            return out

    def _search(self, query: Vectors, k: int, filters: SearchFilters | None) -> list[VectorHit]:
        faiss.omp_set_num_threads(self.search_threads)  # for this thread only
        with self._rw.reading():
            state = self._live("search")
            columns = state.columns
            mask = columns.mask(filters)
            if mask is None and state.kind == "flat" and columns.free:
                mask = columns.alive[: columns.slots]  # leave the zeroed slots out
            passing = columns.count if mask is None else int(np.count_nonzero(mask))
            want = min(k, passing)
            if not want:
                return []
            bitmap = None if mask is None else np.packbits(mask, bitorder="little")
            selector = (
                None
                if bitmap is None
                else faiss.IDSelectorBitmap(bitmap.size, faiss.swig_ptr(bitmap))
            )
            if state.kind == "flat":
                params = None
                if selector is not None:
                    params = faiss.SearchParameters()
                    params.sel = selector
                scores, slots = state.index.search(query, want, params=params)
            else:
                nlist = state.nlist
                per_list = passing / nlist
                share = passing / max(columns.count, 1)
                deep = max(self.nprobe / math.sqrt(share), 4 * want / per_list)
                nprobe = min(nlist, math.ceil(deep))
                scores, slots = self._ivf_search(state.index, query, want, nprobe, selector)
                if np.count_nonzero(slots[0] >= 0) < want and nprobe < nlist:
                    scores, slots = self._ivf_search(state.index, query, want, nlist, selector)
            keys = columns.keys
            return [
                VectorHit(key=keys[slot] or "", score=float(score))
                for score, slot in zip(scores[0].tolist(), slots[0].tolist(), strict=True)
                if slot >= 0
            ]

    @staticmethod
    def _ivf_search(
        index: Any, query: Vectors, k: int, nprobe: int, selector: Any
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        if selector is not None:
            params.sel = selector
        scores, slots = index.search(query, k, params=params)
        return scores, slots

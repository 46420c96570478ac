"""The vector store on Qdrant: its local mode (a folder, or memory) or a Qdrant server.

Design
    Collection  One per embedding model and dimension (``collection_name``), with one
                unnamed dense vector per point and the ``Dot`` distance: vectors are
                normalised here on the way in (stored and query), so the score is the
                cosine, and local mode skips the re-normalisation of every stored vector
                that ``Cosine`` costs it on each search.
    Points      Id: the UUID5 of the source key (Qdrant wants an unsigned integer or a UUID).
                Payload: ``key``, ``year``, ``provider``, ``type`` (``None`` for none or
                ``""``), ``open_access`` and ``revision``. Upserts and deletes go in batches
                of ``batch_size`` (512) and wait until applied.
    Filters     ``SearchFilters`` become one ``Filter`` (``qdrant_filter``) with the rule of
                ``SearchFilters.accepts``: a year range, ``MatchAny`` of providers and of
                types (``""`` also matches a point without a type), and open access as
                ``must`` true or ``must_not`` true (so unknown counts as closed). A server
                gets payload indexes on these fields; local mode has no use for them.
    Local mode  qdrant-client's local mode searches by brute force in numpy and checks a
                filter on every point in Python (some 10 µs a point). So a filtered local
                search first asks for the unfiltered top ``max(8k, 64)`` with their payloads
                and keeps those that pass, then enough more for twice ``k`` at the share
                that passed, and asks Qdrant to filter only when that would reach a quarter
                of the collection: exact either way. The client runs on a thread of its
                own with its own event loop, so that a search or an upsert never blocks the
                caller's loop; the thread also serialises the calls. qdrant-client commits
                each point on its own: the SQLite file of an on-disk collection is switched
                to WAL with ``synchronous=NORMAL`` so that a commit waits for no ``fsync``
                (upserts 5 to 40 times faster; vectors are derived data, rebuilt from the
                database if a power cut loses the last writes).
    Locking     Local mode lets one process open a folder (an exclusive ``flock`` on its
                ``.lock``). A second opener gets ``VectorStoreLocked``, before the folder is
                loaded.
    Errors      Whatever qdrant-client, httpx, gRPC or SQLite raise becomes a
                ``VectorStoreError`` naming the store and the operation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeVar

import grpc  # type: ignore[import-untyped]
import httpx
import numpy as np
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.common.client_exceptions import QdrantException
from qdrant_client.http.exceptions import (
    ApiException,
    ResponseHandlingException,
    UnexpectedResponse,
)
from qdrant_client.local.async_qdrant_local import AsyncQdrantLocal

from nomosx.embed.base import Vectors
from nomosx.errors import ConfigError, NomosXError, VectorStoreError, VectorStoreLocked
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.vectors.base import VectorHit, VectorPoint

__all__ = ["QdrantVectorStore", "point_id", "qdrant_filter"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Mode = Literal["local", "memory", "server"]

BATCH_SIZE: Final = 512
#: Above this many points local mode is slow (Qdrant's own threshold): health says degraded.
LOCAL_MODE_COMFORT: Final = 20_000
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "nomosx:vectors")
_FILTER_FIELDS: Final = ("key", "year", "provider", "type", "open_access")
_INDEXES: Final[Mapping[str, models.PayloadSchemaType]] = {
    "year": models.PayloadSchemaType.INTEGER,
    "provider": models.PayloadSchemaType.KEYWORD,
    "type": models.PayloadSchemaType.KEYWORD,
    "open_access": models.PayloadSchemaType.BOOL,
}
_LOCKED_MESSAGE: Final = "is already accessed by another instance"
_LARGE_LOCAL_WARNING: Final = r"Local mode is not recommended for collections with more than"
_ERRORS: Final = (
    ApiException,
    QdrantException,
    httpx.HTTPError,
    grpc.RpcError,
    sqlite3.Error,
    ValueError,
    RuntimeError,
    OSError,
)


def point_id(key: str) -> str:
    """The Qdrant point id of a source key: its UUID5 (stable across processes)."""
    return str(uuid.uuid5(_NAMESPACE, key))


def qdrant_filter(filters: SearchFilters | None) -> models.Filter | None:
    """``filters`` as a Qdrant filter with the rule of ``SearchFilters.accepts``; ``None``
    when nothing is filtered."""
    if filters is None:
        return None
    must: list[models.Condition] = []
    must_not: list[models.Condition] = []
    if filters.year_from is not None or filters.year_to is not None:
        must.append(
            models.FieldCondition(
                key="year", range=models.Range(gte=filters.year_from, lte=filters.year_to)
            )
        )
    if filters.providers:
        must.append(
            models.FieldCondition(key="provider", match=models.MatchAny(any=[*filters.providers]))
        )
    if filters.types:
        named = [t for t in dict.fromkeys(filters.types) if t]
        options: list[models.Condition] = []
        if named:
            options.append(models.FieldCondition(key="type", match=models.MatchAny(any=named)))
        if "" in filters.types:
            options.append(models.IsEmptyCondition(is_empty=models.PayloadField(key="type")))
        must.append(options[0] if len(options) == 1 else models.Filter(should=options))
    if filters.open_access is not None:
        has_oa = models.FieldCondition(key="open_access", match=models.MatchValue(value=True))
        (must if filters.open_access else must_not).append(has_oa)
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


class _Worker:
    """A thread running an event loop of its own, where a local-mode client lives: its
    numpy and SQLite work never blocks the caller's loop, and its calls run one at a time
    (local-mode coroutines never suspend)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="nomosx-vectors", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def run(self, job: Callable[[], Awaitable[T]]) -> T:
        async def start() -> T:
            return await job()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(start(), self._loop))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class QdrantVectorStore:
    """``VectorStore`` on one Qdrant collection. Open with ``local``, ``memory`` or
    ``server``; or wrap a client of your own (its calls then run on your loop).

    ``post_filter``: filter searches by over-fetching (the module's "Local mode"); by
    default in local mode only, where Qdrant's own filtering is slow."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        collection: str,
        *,
        batch_size: int = BATCH_SIZE,
        where: str | None = None,
        post_filter: bool | None = None,
        _worker: _Worker | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._client = client
        self._collection = collection
        self._batch_size = batch_size
        self._worker = _worker
        backend = getattr(client, "_client", None)
        self._local = isinstance(backend, AsyncQdrantLocal)
        self._post_filter = self._local if post_filter is None else post_filter
        self._mode: Mode = "server"
        if isinstance(backend, AsyncQdrantLocal):
            self._mode = "local" if backend.persistent else "memory"
        self._where = where or f"{self.name} collection {collection}"
        self._dim: int | None = None
        self._closed = False

    # --- opening ------------------------------------------------------------------------

    @classmethod
    async def local(
        cls, path: Path, collection: str, *, batch_size: int = BATCH_SIZE
    ) -> QdrantVectorStore:
        """Qdrant local mode on the folder ``path`` (created if missing). Raises
        ``VectorStoreLocked`` when another process (or store) has the folder open."""
        folder = Path(path)
        _refuse_if_locked(folder)
        _quiet_large_local_warning()
        worker = _Worker()
        try:
            client = await worker.run(partial(_open_local, folder))
        except BaseException:
            worker.stop()
            raise
        store = cls(
            client,
            collection,
            batch_size=batch_size,
            where=f"local Qdrant at {folder}, collection {collection}",
            _worker=worker,
        )
        await store._warn_if_large()
        return store

    @classmethod
    async def memory(
        cls, collection: str = "sources", *, batch_size: int = BATCH_SIZE
    ) -> QdrantVectorStore:
        """Qdrant local mode in memory: nothing kept after ``aclose``."""
        _quiet_large_local_warning()
        worker = _Worker()
        try:
            client = await worker.run(_open_memory)
        except BaseException:
            worker.stop()
            raise
        return cls(
            client,
            collection,
            batch_size=batch_size,
            where=f"in-memory Qdrant, collection {collection}",
            _worker=worker,
        )

    @classmethod
    async def server(
        cls,
        url: str,
        collection: str,
        *,
        api_key: str | None = None,
        request_timeout: int = 10,
        batch_size: int = BATCH_SIZE,
    ) -> QdrantVectorStore:
        """A Qdrant server over its REST API. Nothing is sent until the first call."""
        try:
            with warnings.catch_warnings():
                # said once below, in NomosX's log, rather than as a Python warning
                warnings.filterwarnings(
                    "ignore", message="Api key is used with an insecure connection"
                )
                client = AsyncQdrantClient(
                    url=url,
                    api_key=api_key,
                    timeout=request_timeout,
                    prefer_grpc=False,
                    check_compatibility=False,
                )
        except ValueError as exc:
            raise ConfigError(f"QDRANT_URL {url!r} is not a usable Qdrant URL: {exc}") from exc
        if api_key is not None and url.startswith("http://"):
            log.warning("the Qdrant API key is sent over plain HTTP to %s", url)
        return cls(
            client,
            collection,
            batch_size=batch_size,
            where=f"Qdrant at {url}, collection {collection}",
        )

    async def __aenter__(self) -> QdrantVectorStore:
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
        """``qdrant-local``, ``qdrant-memory`` or ``qdrant`` (a server)."""
        return "qdrant" if self._mode == "server" else f"qdrant-{self._mode}"

    @property
    def collection(self) -> str:
        return self._collection

    async def ensure(self, dim: int) -> None:
        if dim < 1:
            raise VectorStoreError(f"{self._where}: dimension must be positive, got {dim}")
        await self._call("ensure", partial(self._ensure, dim))
        self._dim = dim

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        for start in range(0, len(points), self._batch_size):
            batch = points[start : start + self._batch_size]
            matrix = self._matrix([p.vector for p in batch], [p.key for p in batch])
            ids = [point_id(p.key) for p in batch]
            payloads = [_payload(p) for p in batch]
            await self._call("upsert", partial(self._upsert_batch, ids, matrix, payloads))

    async def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), self._batch_size):
            ids: list[models.ExtendedPointId] = [
                point_id(k) for k in keys[start : start + self._batch_size]
            ]
            selector = models.PointIdsList(points=ids)
            await self._call(
                "delete",
                partial(self._client.delete, self._collection, selector, wait=True),
            )

    async def search(
        self, vector: Vectors, k: int, filters: SearchFilters | None = None
    ) -> list[VectorHit]:
        if k <= 0:
            return []
        query = self._matrix([vector], ["the query"])[0].tolist()
        condition = qdrant_filter(filters)
        job: Callable[[], Awaitable[list[models.ScoredPoint]]]
        if condition is not None and filters is not None and self._post_filter:
            job = partial(self._search_post_filtered, query, k, filters, condition)
        else:
            job = partial(self._query, query, k, condition, ["key"])
        found = await self._call("search", job)
        return [VectorHit(key=str((p.payload or {})["key"]), score=p.score) for p in found]

    async def revisions(self, keys: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for start in range(0, len(keys), self._batch_size):
            ids = [point_id(k) for k in keys[start : start + self._batch_size]]
            records = await self._call(
                "revisions",
                partial(
                    self._client.retrieve,
                    self._collection,
                    ids,
                    with_payload=["key", "revision"],
                    with_vectors=False,
                ),
            )
            for record in records:
                payload = record.payload or {}
                out[str(payload["key"])] = int(payload.get("revision") or 0)
        return out

    async def count(self) -> int:
        result = await self._call(
            "count", partial(self._client.count, self._collection, exact=True)
        )
        return result.count

    async def health(self) -> SourceHealth:
        started = time.perf_counter()

        def done(status: Literal["healthy", "degraded", "unhealthy"], detail: str) -> SourceHealth:
            latency = (time.perf_counter() - started) * 1000
            return SourceHealth(self.name, status, latency_ms=latency, detail=detail)

        try:
            exists = await self._call(
                "health", partial(self._client.collection_exists, self._collection)
            )
            if not exists:
                return done("degraded", f"{self._where}: the collection is not created yet")
            n = await self.count()
        except NomosXError as exc:
            return done("unhealthy", str(exc))
        if self._local and n > LOCAL_MODE_COMFORT:
            return done(
                "degraded",
                f"{self._where}: {n:,} vectors searched by brute force in local mode;"
                " set QDRANT_URL to use a Qdrant server",
            )
        return done("healthy", f"{self._where}: {n:,} vectors")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._worker is not None:
                await self._worker.run(self._client.close)
            else:
                await self._client.close()
        except _ERRORS as exc:
            log.warning("%s: closing failed: %s", self._where, exc)
        finally:
            if self._worker is not None:
                self._worker.stop()

    # --- calls ------------------------------------------------------------------------------

    async def _call(self, operation: str, job: Callable[[], Awaitable[T]]) -> T:
        """Run ``job`` where the client lives; any failure becomes a ``VectorStoreError``."""
        if self._closed:
            raise VectorStoreError(f"{self._where}: {operation} on a closed vector store")
        try:
            if self._worker is not None:
                return await self._worker.run(job)
            return await job()
        except NomosXError:
            raise
        except _ERRORS as exc:
            raise _converted(exc, f"{self._where}: {operation}") from exc

    async def _ensure(self, dim: int) -> None:
        client, name = self._client, self._collection
        if not await client.collection_exists(name):
            params = models.VectorParams(size=dim, distance=models.Distance.DOT)
            try:
                await client.create_collection(name, vectors_config=params)
            except UnexpectedResponse:
                if not await client.collection_exists(name):  # else: created meanwhile
                    raise
        info = await client.get_collection(name)
        vectors = info.config.params.vectors
        if not isinstance(vectors, models.VectorParams):
            raise VectorStoreError(
                f"{self._where}: the collection has named vectors; NomosX makes one unnamed"
                " vector per point. Delete the collection or choose another name"
            )
        if vectors.size != dim:
            raise VectorStoreError(
                f"{self._where}: the collection holds {vectors.size}-dimensional vectors,"
                f" the embedder makes {dim}. Collection names include the model and the"
                " dimension, so another program made this one: delete it or choose another"
                " name"
            )
        if vectors.distance not in (models.Distance.DOT, models.Distance.COSINE):
            raise VectorStoreError(
                f"{self._where}: the collection ranks by {vectors.distance.value} distance,"
                " not by cosine. Delete it or choose another name"
            )
        if self._local:
            _tune_local(client)
            return
        for field, schema in _INDEXES.items():
            if field not in info.payload_schema:
                await client.create_payload_index(name, field, field_schema=schema, wait=True)

    async def _upsert_batch(
        self, ids: list[str], matrix: Vectors, payloads: list[dict[str, Any]]
    ) -> None:
        batch = models.Batch(
            ids=[*ids],
            vectors=matrix.tolist(),
            payloads=payloads,
        )
        await self._client.upsert(self._collection, batch, wait=True)

    async def _query(
        self,
        query: list[float],
        limit: int,
        condition: models.Filter | None,
        fields: list[str],
    ) -> list[models.ScoredPoint]:
        response = await self._client.query_points(
            self._collection,
            query=query,
            limit=limit,
            query_filter=condition,
            with_payload=fields,
            with_vectors=False,
        )
        return response.points

    async def _search_post_filtered(
        self,
        query: list[float],
        k: int,
        filters: SearchFilters,
        condition: models.Filter,
    ) -> list[models.ScoredPoint]:
        """Local mode: the unfiltered top ``limit``, kept if they pass; exact, since any
        passing point outside the top ``limit`` scores below all of them. The next
        ``limit`` is planned for twice ``k`` at the share of points that passed so far;
        past a quarter of the collection, Qdrant filters instead (its filter costs about
        what fetching every point would)."""
        total = (await self._client.count(self._collection, exact=True)).count
        limit = min(total, max(8 * k, 64))
        while 0 < limit <= max(total // 4, min(total, 64)):
            found = await self._query(query, limit, None, [*_FILTER_FIELDS])
            passed = [p for p in found if _passes(filters, p.payload)]
            if len(passed) >= k or limit >= total:
                return passed[:k]
            share = max(len(passed), 1) / limit
            limit = min(total, max(2 * limit, math.ceil(2 * k / share)))
        return await self._query(query, k, condition, ["key"])

    def _matrix(self, vectors: Sequence[Vectors], keys: Sequence[str]) -> Vectors:
        """The vectors as normalised float32 rows, checked: 1-D, finite, of the dimension."""
        rows = [np.asarray(v, dtype=np.float32) for v in vectors]
        dim = self._dim if self._dim is not None else (rows[0].size if rows else 0)
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
        normalised: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
        return normalised

    async def _warn_if_large(self) -> None:
        try:
            exists = await self._call(
                "open", partial(self._client.collection_exists, self._collection)
            )
            n = await self.count() if exists else 0
        except VectorStoreError:
            return
        if n > LOCAL_MODE_COMFORT:
            log.warning(
                "%s holds %s vectors: local mode searches them by brute force; set QDRANT_URL"
                " to use a Qdrant server",
                self._where,
                f"{n:,}",
            )


def _payload(point: VectorPoint) -> dict[str, Any]:
    return {
        "key": point.key,
        "year": None if point.year is None else int(point.year),
        "provider": point.provider,
        "type": point.type or None,
        "open_access": None if point.open_access is None else bool(point.open_access),
        "revision": int(point.revision),
    }


def _passes(filters: SearchFilters, payload: Mapping[str, Any] | None) -> bool:
    payload = payload or {}
    year = payload.get("year")
    return filters.accepts(
        year=year if isinstance(year, int) else None,
        provider=str(payload.get("provider") or ""),
        type=payload.get("type"),
        open_access=payload.get("open_access"),
    )


def _converted(exc: BaseException, where: str) -> VectorStoreError:
    if isinstance(exc, UnexpectedResponse):
        detail = exc.content.decode(errors="replace")[:300]
        with suppress(ValueError, KeyError, TypeError, AttributeError):
            detail = str(exc.structured()["status"]["error"])
        return VectorStoreError(f"{where}: Qdrant answered {exc.status_code}: {detail}")
    if isinstance(exc, ResponseHandlingException):
        source = exc.source
        reason = f"{type(source).__name__}: {source}" if str(source) else type(source).__name__
        return VectorStoreError(f"{where}: Qdrant could not be reached ({reason})")
    reason = str(exc) or type(exc).__name__
    return VectorStoreError(f"{where}: {reason}")


def _refuse_if_locked(folder: Path) -> None:
    """``VectorStoreLocked`` when another open file holds the lock of Qdrant local mode on
    ``folder`` (an exclusive ``flock`` on ``.lock``, per open file, so a second store of
    the same process is refused as well), before qdrant-client loads the whole folder."""
    lock = folder / ".lock"
    if sys.platform == "win32" or not lock.is_file():
        return
    import fcntl

    try:
        with lock.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise VectorStoreLocked(str(folder)) from None
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return  # unreadable: opening the folder will say why


async def _open_local(folder: Path) -> AsyncQdrantClient:
    try:
        client = AsyncQdrantClient(path=str(folder))
    except RuntimeError as exc:
        if _LOCKED_MESSAGE in str(exc):  # another opener won the race past _refuse_if_locked
            await _close_partly_opened(exc)
            raise VectorStoreLocked(str(folder)) from exc
        raise VectorStoreError(f"the vector folder {folder} could not be opened: {exc}") from exc
    except Exception as exc:  # anything wrong with the folder is the store's
        raise VectorStoreError(f"the vector folder {folder} could not be opened: {exc}") from exc
    _tune_local(client)
    return client


async def _close_partly_opened(exc: BaseException) -> None:
    """Close what qdrant-client opened before it found the folder locked (the SQLite files
    of the collections, the lock file): the half-built client is only in the traceback."""
    tb = exc.__traceback__
    while tb is not None:
        backend = tb.tb_frame.f_locals.get("self")
        if isinstance(backend, AsyncQdrantLocal):
            with suppress(*_ERRORS, TypeError, AttributeError):
                await backend.close()
            return
        tb = tb.tb_next


async def _open_memory() -> AsyncQdrantClient:
    return AsyncQdrantClient(location=":memory:")


def _tune_local(client: AsyncQdrantClient) -> None:
    """WAL and ``synchronous=NORMAL`` on the SQLite file of each on-disk local collection:
    qdrant-client commits every point on its own, and a commit then costs no ``fsync``.
    Best effort: qdrant-client internals, skipped if they change."""
    backend = getattr(client, "_client", None)
    collections = getattr(backend, "collections", None)
    if not isinstance(collections, dict):
        return
    for collection in collections.values():
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            with suppress(sqlite3.Error):
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")


def _quiet_large_local_warning() -> None:
    """qdrant-client warns (a Python ``UserWarning``) on every open and first write of a
    local collection over 20,000 points; NomosX says it once in its log and in health."""
    warnings.filterwarnings("ignore", message=_LARGE_LOCAL_WARNING, category=UserWarning)

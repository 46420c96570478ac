"""Both cache backends behind one fixture: the real Redis (its own database number per
test worker, flushed before and after) and the embedded SQLite file."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from nomosx.cache.base import Cache

REDIS_HOST = os.environ.get("NOMOSX_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("NOMOSX_TEST_REDIS_PORT", "6379"))


def contract_db(worker_id: str) -> int:
    """Databases 12-15 are the contract suite's (the Redis backend's own tests use 8-11)."""
    index = int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0
    return 12 + index % 4


async def _flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.fixture(params=["redis", "embedded"])
async def cache(
    request: pytest.FixtureRequest, tmp_path: Path, worker_id: str
) -> AsyncIterator[Cache]:
    if request.param == "redis":
        from nomosx.cache.redis import RedisCache

        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{contract_db(worker_id)}"
        await _flush(url)
        backend: Cache = RedisCache(url)
    else:
        from nomosx.cache.embedded import EmbeddedCache

        backend = EmbeddedCache(tmp_path / "cache.sqlite3")
    try:
        yield backend
    finally:
        await backend.aclose()
        if request.param == "redis":
            await _flush(url)

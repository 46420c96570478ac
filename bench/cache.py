"""Benchmark: the cache backends, and a repeated brief through the brief cache.

    .venv/bin/python bench/cache.py [--ops 5000] [--redis redis://127.0.0.1:6379/7]

For Redis (the database given, flushed before and after) and the embedded SQLite file:
get/set latency p50/p99 and sequential throughput for an LLM-sized value (4 KB) and an
embedding (384 float32, packed), with raw ``redis-py`` GET/SET measured in the same run as
the peer (what the wrapper adds: stats counters, breaker, timeouts); then 32 concurrent
tasks. Last, a brief end to end: written fresh, then asked again (answered by the brief
cache), median of 5 each, on both backends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from nomosx.app import NomosX
from nomosx.cache.base import Cache, Namespace
from nomosx.cache.codec import encode_vector
from nomosx.cache.embedded import EmbeddedCache
from nomosx.cache.keys import make_key
from nomosx.cache.redis import RedisCache
from nomosx.config import Settings

QUESTION = "Does vitamin D supplementation reduce the risk of fractures?"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def time_each(n: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await op(i)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def row(label: str, samples: list[float]) -> str:
    total_s = sum(samples) / 1e6
    return (
        f"{label:34} p50 {pct(samples, 0.5):8.1f} µs  p99 {pct(samples, 0.99):8.1f} µs"
        f"  {len(samples) / total_s:9,.0f} ops/s"
    )


async def bench_value(
    cache: Cache, raw: aioredis.Redis | None, label: str, value: bytes, ops: int
) -> None:
    keys = [make_key({"bench": label, "i": i}) for i in range(ops)]
    sets = await time_each(ops, lambda i: cache.set(Namespace.LLM, keys[i], value))
    gets = await time_each(ops, lambda i: cache.get(Namespace.LLM, keys[i]))
    print(row(f"set {label}", sets))
    print(row(f"get {label} (hit)", gets))
    if raw is not None:
        raw_sets = await time_each(ops, lambda i: raw.set(f"raw:{keys[i]}", value, px=3_600_000))
        raw_gets = await time_each(ops, lambda i: raw.get(f"raw:{keys[i]}"))
        print(row(f"  peer redis-py SET {label}", raw_sets))
        print(row(f"  peer redis-py GET {label}", raw_gets))
        print(
            f"  get wrapper/peer p50 ratio {pct(gets, 0.5) / pct(raw_gets, 0.5):.2f}x, "
            f"set {pct(sets, 0.5) / pct(raw_sets, 0.5):.2f}x"
        )

    async def worker(first: int) -> None:
        for j in range(first, ops, 32):
            await cache.get(Namespace.LLM, keys[j])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(t) for t in range(32)))
    elapsed = time.perf_counter() - t0
    print(f"{'get ' + label + ', 32 tasks':34} {ops / elapsed:>40,.0f} ops/s")


async def bench_backend(name: str, cache: Cache, ops: int, raw: aioredis.Redis | None) -> None:
    values = {
        "4 KB value": os.urandom(4096),
        "384 x float32": encode_vector(np.random.default_rng(0).standard_normal(384)),
    }
    print(f"\n== {name}")
    for label, value in values.items():
        await bench_value(cache, raw, label, value, ops)
    await cache.clear()


async def bench_brief(settings: Settings, label: str) -> None:
    app = await NomosX.open(settings)
    try:
        await app.ensure_library()
        await app.brief(QUESTION, fresh=True)  # warm: index loaded
        fresh, cached = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            await app.brief(QUESTION, fresh=True)
            fresh.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            result = await app.brief(QUESTION)
            cached.append((time.perf_counter() - t0) * 1000)
            assert result.cached
        f, c = statistics.median(fresh), statistics.median(cached)
        speedup = f / c
        print(f"brief on {label:9}: fresh {f:7.1f} ms, from the brief cache {c:6.2f} ms", end="")
        print(f" ({speedup:,.0f}x)")
    finally:
        if app.cache is not None:
            await app.cache.clear()
        await app.close()


async def main(ops: int, redis_url: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    await raw.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        redis_cache = RedisCache(redis_url)
        await bench_backend("redis (127.0.0.1, loopback)", redis_cache, ops, raw)
        await redis_cache.aclose()
        embedded = EmbeddedCache(Path(tmp) / "cache.sqlite3")
        await bench_backend("embedded (SQLite file)", embedded, ops, None)
        await embedded.aclose()
        print()
        await bench_brief(Settings(data_dir=Path(tmp) / "a"), "embedded")
        await bench_brief(Settings(data_dir=Path(tmp) / "b", redis_url=redis_url), "redis")
    await raw.flushdb()
    await raw.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.redis))

"""The token bucket under concurrency, alone and through ``ProviderHttp``, on fake time."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from nomosx.sources import arxiv, semanticscholar
from nomosx.sources.http import HttpPolicy, ProviderHttp
from nomosx.sources.ratelimit import TokenBucket
from tests.llm.clock import FakeClock

EPS = 1e-9


def gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


async def test_fifty_concurrent_acquisitions_respect_the_rate() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def call() -> None:
        await bucket.acquire()
        granted.append(clock())

    await asyncio.gather(*(call() for _ in range(50)))

    assert len(granted) == 50
    assert all(gap >= 0.1 - EPS for gap in gaps(granted))
    assert max(granted) - min(granted) == pytest.approx(4.9)
    assert granted[0] == 0.0  # the first token is there at once


async def test_acquire_reports_the_wait() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(rate=4, burst=1, clock=clock, sleep=clock.sleep)
    assert await bucket.acquire() == 0.0
    assert await bucket.acquire() == pytest.approx(0.25)
    clock.advance(10)  # idle time refills at most ``burst`` tokens
    assert await bucket.acquire() == 0.0
    assert await bucket.acquire() == pytest.approx(0.25)


async def test_burst_then_the_rate() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(rate=2, burst=5, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def call() -> None:
        await bucket.acquire()
        granted.append(clock())

    await asyncio.gather(*(call() for _ in range(9)))
    assert granted[:5] == [0.0] * 5
    assert gaps(granted)[4:] == pytest.approx([0.5] * 4)


def test_invalid_settings_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1, burst=0)


async def _concurrent_requests(rate: float, calls: int) -> list[float]:
    """The fake time at which the server saw each of ``calls`` concurrent requests."""
    clock = FakeClock(start=0.0)
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(clock())
        return httpx.Response(200, json={"n": request.url.params["n"]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        http = ProviderHttp(
            "test",
            "https://api.example.org",
            policy=HttpPolicy(rate=rate),
            client=client,
            clock=clock,
            sleep=clock.sleep,
        )
        replies = await asyncio.gather(*(http.get_json("/q", {"n": i}) for i in range(calls)))
        await http.aclose()
    assert sorted(int(r["n"]) for r in replies) == list(range(calls))
    assert http.requests_sent == calls
    return seen


async def test_fifty_concurrent_requests_through_provider_http_respect_the_rate() -> None:
    seen = await _concurrent_requests(rate=10, calls=50)
    assert len(seen) == 50
    assert all(gap >= 0.1 - EPS for gap in gaps(seen))
    assert max(seen) - min(seen) == pytest.approx(4.9)


async def test_arxiv_rate_spaces_requests_three_seconds_apart() -> None:
    seen = await _concurrent_requests(rate=arxiv.RATE, calls=5)
    assert all(gap >= 3.0 - EPS for gap in gaps(seen))
    assert max(seen) - min(seen) == pytest.approx(12.0)


async def test_semantic_scholar_rate_is_one_request_a_second() -> None:
    seen = await _concurrent_requests(rate=semanticscholar.RATE, calls=5)
    assert all(gap >= 1.0 - EPS for gap in gaps(seen))
    assert max(seen) - min(seen) == pytest.approx(4.0)

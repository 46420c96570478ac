"""A scripted ``httpx.MockTransport`` for provider tests: recorded fixtures, recorded requests.

``Scripted`` answers each request with the next scripted reply (a ``Response`` to return or an
exception to raise), or with ``default`` once the script is used up, and keeps every request so
that a test can assert what was sent. ``FakeClock`` makes retry and rate-limit waits instant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from nomosx.cache.base import Cache
from nomosx.sources.http import HttpPolicy, ProviderHttp

FIXTURES = Path(__file__).parent / "fixtures"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def json_reply(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=fixture_text(name).encode(), headers={"content-type": "application/json"}
    )


def status_reply(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": f"status {status}"}, headers=headers)


HTML_ERROR = httpx.Response(
    200,
    content=b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1></body></html>",
    headers={"content-type": "text/html; charset=utf-8"},
)
MALFORMED = httpx.Response(
    200,
    content=b'{"meta": {"count": 3}, "results": [',
    headers={"content-type": "application/json"},
)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted:
    def __init__(self, *script: Reply, default: Reply | None = None) -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.script.pop(0) if self.script else self.default
        if reply is None:
            raise AssertionError(f"unexpected request {request.url}")
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        # a fresh copy each time: one scripted reply may answer several requests
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

    @property
    def params(self) -> list[dict[str, str]]:
        return [dict(request.url.params) for request in self.requests]


def provider_http(
    name: str,
    base_url: str,
    handler: Scripted,
    *,
    clock: FakeClock | None = None,
    cache: Cache | None = None,
    attempts: int = 3,
) -> ProviderHttp:
    """A ``ProviderHttp`` on a mock transport; the rate limiter never waits (high rate)."""
    clock = clock or FakeClock()
    policy = HttpPolicy(rate=1000.0, burst=100, attempts=attempts, jitter=lambda: 0.5)
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    http = ProviderHttp(
        name, base_url, policy=policy, client=client, cache=cache, clock=clock, sleep=clock.sleep
    )
    http._own_client = True  # the provider's aclose() closes the test's client too
    return http

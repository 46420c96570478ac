"""HTTP for source providers: one shared ``httpx`` client, politeness and resilience.

``ProviderHttp.get_json``/``get_text`` do, in order: the ``api`` cache (24 h; a hit makes
no request), the provider's circuit breaker, its rate limiter (a token bucket with the
provider's published limit), the request with a timeout, and retries with exponential
backoff and full jitter on 429/5xx/timeouts, honouring ``Retry-After``. Every failure
ends as a ``SourceError`` naming the provider; nothing from httpx leaks out.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from nomosx.breaker import CircuitBreaker
from nomosx.cache.adapters import cached_json
from nomosx.cache.base import Cache, Namespace
from nomosx.errors import SourceError
from nomosx.sources.ratelimit import TokenBucket

USER_AGENT = "NomosX/0.1 (research briefs; https://github.com/nomosx)"


class SourceHTTPError(SourceError):
    """A provider answered with an error status (``status``) or not at all."""

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status


class RetryableSourceError(SourceHTTPError):
    """429, 5xx, a timeout or a dropped connection: worth another try."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    rate: float = 1.0  # requests per second, the provider's published limit
    burst: int = 1
    timeout: float = 15.0
    attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 30.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 60.0
    jitter: Callable[[], float] = field(default=random.random, repr=False)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class ProviderHttp:
    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        policy: HttpPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        cache: Cache | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.policy = policy or HttpPolicy()
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=self.policy.timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
        )
        self.cache = cache
        self.headers = dict(headers or {})
        self.bucket = TokenBucket(
            self.policy.rate, burst=self.policy.burst, clock=clock, sleep=sleep
        )
        self.breaker = CircuitBreaker(
            threshold=self.policy.breaker_threshold,
            cooldown=self.policy.breaker_cooldown,
            clock=clock,
        )
        self._sleep = sleep
        self.requests_sent = 0

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        async def fetch() -> Any:
            text = await self._get(path, params)
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise SourceHTTPError(
                    f"malformed JSON reply ({exc.msg} at {exc.pos})", provider=self.provider
                ) from None

        return await self._cached(path, params, "json", fetch)

    async def probe(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """A real request that bypasses the cache (health checks): breaker, rate limit and
        retries still apply."""
        return await self._get(path, params)

    async def get_text(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        async def fetch() -> str:
            return await self._get(path, params)

        result = await self._cached(path, params, "text", fetch)
        return str(result)

    async def _cached(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        kind: str,
        fetch: Callable[[], Awaitable[Any]],
    ) -> Any:
        if self.cache is None:
            return await fetch()
        payload = {
            "provider": self.provider,
            "url": f"{self.base_url}{path}",
            "params": {k: str(v) for k, v in sorted((params or {}).items())},
            "kind": kind,
        }
        return await cached_json(self.cache, Namespace.API, payload, fetch)

    async def _get(self, path: str, params: Mapping[str, Any] | None) -> str:
        last: SourceHTTPError | None = None
        for attempt in range(1, self.policy.attempts + 1):
            if not self.breaker.allow():
                wait = self.breaker.retry_in()
                raise SourceHTTPError(
                    f"circuit open after repeated failures; retry in {wait:.0f} s",
                    provider=self.provider,
                )
            await self.bucket.acquire()
            try:
                text = await self._once(path, params)
            except RetryableSourceError as exc:
                self.breaker.record_failure()
                last = exc
                delay = self._delay(attempt, exc)
                if delay is None or attempt == self.policy.attempts:
                    break
                await self._sleep(delay)
                continue
            except SourceHTTPError:
                self.breaker.record_success()  # it answered: the request was the problem
                raise
            except BaseException:
                self.breaker.release()
                raise
            self.breaker.record_success()
            return text
        assert last is not None
        raise last

    def _delay(self, attempt: int, error: RetryableSourceError) -> float | None:
        if error.retry_after is not None:
            if error.retry_after > self.policy.max_retry_after:
                return None
            return error.retry_after
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2.0 ** (attempt - 1))
        return self.policy.jitter() * ceiling

    async def _once(self, path: str, params: Mapping[str, Any] | None) -> str:
        self.requests_sent += 1
        try:
            response = await self.client.get(
                f"{self.base_url}{path}", params=params, headers=self.headers
            )
        except httpx.TimeoutException:
            raise RetryableSourceError(
                f"no answer within {self.policy.timeout:g} s", provider=self.provider
            ) from None
        except httpx.HTTPError as exc:
            raise RetryableSourceError(
                f"connection failed ({type(exc).__name__})", provider=self.provider
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableSourceError(
                f"HTTP {status}",
                provider=self.provider,
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 400:
            raise SourceHTTPError(
                f"HTTP {status}: {_snippet(response)}", provider=self.provider, status=status
            )
        content_type = response.headers.get("content-type", "")
        if "html" in content_type and "xml" not in content_type:
            raise SourceHTTPError(
                "an HTML page instead of the API's reply (an error page or a proxy)",
                provider=self.provider,
                status=status,
            )
        return response.text


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:200] or "(empty body)"

"""The ``Cache`` protocol, its namespaces and the stats it reports.

A cache stores bytes under ``(namespace, key)``; the storage key is
``nomosx:{namespace}:{key}`` where ``key`` comes from ``nomosx.cache.keys.make_key``
(``v{schema}:{sha256}``). Each namespace has its own TTL.

Failure semantics — the cache must never fail a request: when the backend is down or
slow, ``get``/``get_many`` answer a miss and ``set``/``set_many``/``delete`` do nothing,
within a bounded time; ``stats`` and ``health`` report the state. Only the administrative
``invalidate`` and ``clear`` raise ``CacheError`` when the backend cannot be reached, so
that an operator knows the invalidation did not happen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

KEY_PREFIX = "nomosx"


class Namespace(StrEnum):
    EMB = "emb"  # embeddings: 30 days
    LLM = "llm"  # LLM responses: 7 days
    API = "api"  # external API responses: 24 hours
    BRIEF = "brief"  # finished briefs: 7 days


NAMESPACES: tuple[str, ...] = tuple(n.value for n in Namespace)

DEFAULT_TTLS: dict[str, float] = {
    Namespace.EMB: 30 * 24 * 3600.0,
    Namespace.LLM: 7 * 24 * 3600.0,
    Namespace.API: 24 * 3600.0,
    Namespace.BRIEF: 7 * 24 * 3600.0,
}

Status = Literal["up", "degraded", "down"]


def storage_key(namespace: str, key: str) -> str:
    return f"{KEY_PREFIX}:{namespace}:{key}"


@dataclass(frozen=True, slots=True)
class NamespaceStats:
    namespace: str
    hits: int = 0
    misses: int = 0
    keys: int = 0

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return None if total == 0 else self.hits / total


@dataclass(frozen=True, slots=True)
class CacheStats:
    backend: str  # "redis" or "embedded"
    status: Status
    namespaces: dict[str, NamespaceStats] = field(default_factory=dict)
    evictions: int = 0
    expired: int = 0
    memory_bytes: int | None = None
    detail: str | None = None

    @property
    def hits(self) -> int:
        return sum(n.hits for n in self.namespaces.values())

    @property
    def misses(self) -> int:
        return sum(n.misses for n in self.namespaces.values())

    @property
    def keys(self) -> int:
        return sum(n.keys for n in self.namespaces.values())

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return None if total == 0 else self.hits / total


@dataclass(frozen=True, slots=True)
class CacheHealth:
    backend: str
    status: Status
    latency_ms: float | None = None
    detail: str | None = None


Compute = Callable[[], Awaitable[bytes]]


class Cache(Protocol):
    @property
    def backend(self) -> str: ...

    async def get(self, namespace: str, key: str) -> bytes | None: ...

    async def set(
        self, namespace: str, key: str, value: bytes, ttl: float | None = None
    ) -> None: ...

    async def delete(self, namespace: str, key: str) -> bool: ...

    async def get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]: ...

    async def set_many(
        self, namespace: str, items: Mapping[str, bytes], ttl: float | None = None
    ) -> None: ...

    async def ttl(self, namespace: str, key: str) -> float | None:
        """Seconds left before ``key`` expires; ``None`` when it is absent."""
        ...

    async def get_or_compute(
        self, namespace: str, key: str, compute: Compute, ttl: float | None = None
    ) -> bytes:
        """The cached value, or ``compute()``'s, computed once however many callers miss
        at the same time (in this process, and across processes where the backend can)."""
        ...

    async def invalidate(self, namespace: str, pattern: str = "*") -> int:
        """Remove the keys of ``namespace`` whose key part matches the glob ``pattern``."""
        ...

    async def clear(self) -> int: ...

    async def stats(self) -> CacheStats: ...

    async def health(self) -> CacheHealth: ...

    async def aclose(self) -> None: ...

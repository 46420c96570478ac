"""Prometheus metrics of NomosX.

The cache's counters live in the backend (Redis hashes, or the SQLite file) so that every
process shares them; ``CacheCollector`` exports the last snapshot taken by
``refresh(cache)``, which the ``/metrics`` handler (or ``nomosx cache stats --format
prometheus``) awaits before rendering.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nomosx.cache.base import Cache, CacheStats


class CacheCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: CacheStats | None = None

    async def refresh(self, cache: Cache) -> CacheStats:
        self.snapshot = await cache.stats()
        return self.snapshot

    def collect(self) -> Iterator[Metric]:
        stats = self.snapshot
        if stats is None:
            return
        backend = stats.backend
        up = GaugeMetricFamily(
            "nomosx_cache_up",
            "1 when the cache backend answers, 0.5 degraded, 0 down",
            labels=["backend"],
        )
        up.add_metric([backend], {"up": 1.0, "degraded": 0.5, "down": 0.0}[stats.status])
        yield up
        hits = CounterMetricFamily(
            "nomosx_cache_hits", "cache hits, all processes", labels=["backend", "namespace"]
        )
        misses = CounterMetricFamily(
            "nomosx_cache_misses", "cache misses, all processes", labels=["backend", "namespace"]
        )
        keys = GaugeMetricFamily(
            "nomosx_cache_keys", "keys stored", labels=["backend", "namespace"]
        )
        rate = GaugeMetricFamily(
            "nomosx_cache_hit_rate", "hits / (hits + misses)", labels=["backend", "namespace"]
        )
        for name, ns in sorted(stats.namespaces.items()):
            hits.add_metric([backend, name], ns.hits)
            misses.add_metric([backend, name], ns.misses)
            keys.add_metric([backend, name], ns.keys)
            if ns.hit_rate is not None:
                rate.add_metric([backend, name], ns.hit_rate)
        yield from (hits, misses, keys, rate)
        evictions = CounterMetricFamily(
            "nomosx_cache_evictions", "keys evicted", labels=["backend"]
        )
        evictions.add_metric([backend], stats.evictions)
        expired = CounterMetricFamily("nomosx_cache_expired", "keys expired", labels=["backend"])
        expired.add_metric([backend], stats.expired)
        yield from (evictions, expired)
        if stats.memory_bytes is not None:
            memory = GaugeMetricFamily(
                "nomosx_cache_memory_bytes",
                "memory (Redis) or value bytes (embedded) used",
                labels=["backend"],
            )
            memory.add_metric([backend], stats.memory_bytes)
            yield memory


class Metrics:
    """The process's metrics registry and its collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cache = CacheCollector()
        self.registry.register(self.cache)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics of NomosX.

The cache's counters live in the backend (Redis hashes, or the SQLite file) so that every
process shares them; ``CacheCollector`` exports the last snapshot taken by
``refresh(cache)``, which the ``/metrics`` handler (or ``nomosx cache stats --format
prometheus``) awaits before rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nomosx.cache.base import Cache, CacheStats
from nomosx.llm.ledger import CallLedger
from nomosx.models import LLMCall

if TYPE_CHECKING:
    from nomosx.jobs.base import QueueCounts


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
        self.requests = Counter(
            "nomosx_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "nomosx_http_request_duration_seconds",
            "HTTP request latency (streams: until the response starts)",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "nomosx_llm_tokens",
            "LLM tokens by provider, model, agent and direction",
            ["provider", "model", "agent", "direction"],
            registry=self.registry,
        )
        self.llm_cost = Counter(
            "nomosx_llm_cost_usd",
            "LLM cost in USD (calls of unknown price are counted in nomosx_llm_unpriced_calls)",
            ["provider", "model", "agent"],
            registry=self.registry,
        )
        self.llm_unpriced = Counter(
            "nomosx_llm_unpriced_calls",
            "LLM calls whose price is unknown",
            ["provider", "model", "agent"],
            registry=self.registry,
        )
        self.llm_calls = Counter(
            "nomosx_llm_calls",
            "LLM call attempts by outcome",
            ["provider", "model", "agent", "outcome"],
            registry=self.registry,
        )
        self.llm_seconds = Histogram(
            "nomosx_llm_call_duration_seconds",
            "LLM call latency",
            ["provider", "model", "agent"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
            registry=self.registry,
        )
        self.jobs = Gauge(
            "nomosx_jobs",
            "brief jobs by state (pending = queue depth)",
            ["state"],
            registry=self.registry,
        )
        # the queue as a whole (shared by every API process on Redis): autoscaling inputs
        self.queue_depth = Gauge(
            "nomosx_jobs_queue_depth",
            "brief jobs waiting for a worker (scale workers on this; docs/autoscaling.md)",
            registry=self.registry,
        )
        self.queue_oldest = Gauge(
            "nomosx_jobs_oldest_pending_seconds",
            "age of the oldest brief job waiting for a worker (0: none waits)",
            registry=self.registry,
        )
        self.queue_running = Gauge(
            "nomosx_jobs_running", "brief jobs running on a worker", registry=self.registry
        )
        self.queue_workers = Gauge(
            "nomosx_jobs_workers",
            "live worker processes (a heartbeat within 15 s; the API process itself when "
            "jobs run in-process)",
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "nomosx_pipeline_stage_duration_seconds",
            "pipeline stage durations",
            ["stage"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )

    def observe_llm_call(self, call: LLMCall) -> None:
        labels = (call.provider, call.model, call.agent)
        self.llm_calls.labels(*labels, call.outcome).inc()
        self.llm_tokens.labels(*labels, "in").inc(call.tokens_in)
        self.llm_tokens.labels(*labels, "out").inc(call.tokens_out)
        if call.cost_usd is None:
            self.llm_unpriced.labels(*labels).inc()
        else:
            self.llm_cost.labels(*labels).inc(call.cost_usd)
        if not call.cached:
            self.llm_seconds.labels(*labels).observe(call.latency_ms / 1000)

    def observe_stage(self, stage: str, duration_ms: float) -> None:
        self.stage_seconds.labels(stage).observe(duration_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def set_jobs(self, counts: dict[str, int]) -> None:
        for state, value in counts.items():
            self.jobs.labels(state).set(value)

    def set_queue(self, counts: QueueCounts) -> None:
        """Export the queue's counts: ``nomosx_jobs{state}`` for every state, and the
        depth, oldest-wait, running and workers gauges."""
        self.set_jobs(
            {
                "pending": counts.pending,
                "running": counts.running,
                "failed": counts.failed,
                "succeeded": counts.succeeded,
                "cancelled": counts.cancelled,
            }
        )
        self.queue_depth.set(counts.pending)
        self.queue_oldest.set(counts.oldest_pending_seconds)
        self.queue_running.set(counts.running)
        if counts.workers is not None:
            self.queue_workers.set(counts.workers)


class MeteredLedger:
    """A ``CallLedger`` that also counts each call in Prometheus, then forwards it."""

    def __init__(self, inner: CallLedger, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def record(self, call: LLMCall) -> None:
        self.metrics.observe_llm_call(call)
        await self.inner.record(call)

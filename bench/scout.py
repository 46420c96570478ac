"""Benchmark: SCOUT's fan-out over the four remote providers, cold and with a warm cache.

    .venv/bin/python bench/scout.py [--rounds 5]

Each provider is served from its recorded fixture (``tests/sources/fixtures``) through an
``httpx.MockTransport`` that waits a realistic latency first (OpenAlex 250 ms, Crossref
400 ms, Semantic Scholar 350 ms, arXiv 600 ms). Measured, median of ``--rounds``: each
provider alone, the four fanned out together (should be about the slowest, not the sum),
and the fan-out again with a warm ``api`` cache (embedded SQLite backend).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from nomosx.cache.embedded import EmbeddedCache
from nomosx.pipeline.scout import ProviderScout
from nomosx.sources.arxiv import ArxivProvider
from nomosx.sources.base import SourceProvider
from nomosx.sources.crossref import CrossrefProvider
from nomosx.sources.http import HttpPolicy, ProviderHttp
from nomosx.sources.openalex import OpenAlexProvider
from nomosx.sources.semanticscholar import SemanticScholarProvider

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "sources" / "fixtures"
LATENCY = {"openalex": 0.25, "crossref": 0.40, "semanticscholar": 0.35, "arxiv": 0.60}
FILES = {
    "openalex": ("openalex_works_page1.json", "application/json"),
    "crossref": ("crossref_works_page1.json", "application/json"),
    "semanticscholar": ("semanticscholar_search_page1.json", "application/json"),
    "arxiv": ("arxiv_search.xml", "application/atom+xml"),
}
QUERY = "carbon tax emissions"


async def handler(request: httpx.Request) -> httpx.Response:
    name = request.url.host.split(".")[0]
    await asyncio.sleep(LATENCY[name])
    file, content_type = FILES[name]
    return httpx.Response(
        200, content=(FIXTURES / file).read_bytes(), headers={"content-type": content_type}
    )


def providers(client: httpx.AsyncClient, cache: EmbeddedCache | None) -> list[SourceProvider]:
    def http(name: str) -> ProviderHttp:
        policy = HttpPolicy(rate=1000.0, burst=1000)  # politeness is not what is measured
        return ProviderHttp(name, f"http://{name}.test", policy=policy, client=client, cache=cache)

    return [
        OpenAlexProvider(http("openalex"), mailto="bench@example.org"),
        CrossrefProvider(http("crossref"), mailto="bench@example.org"),
        SemanticScholarProvider(http("semanticscholar"), api_key=None),
        ArxivProvider(http("arxiv")),
    ]


async def timed(scout: ProviderScout) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = await scout.scout(QUERY)
    assert not result.failures, result.failures
    return (time.perf_counter() - t0) * 1000, len(result.sources)


async def main(rounds: int) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        print(f"{'what':36} {'median ms':>10} {'sources':>8}")
        alone = {}
        for provider in providers(client, None):
            runs = [await timed(ProviderScout([provider], limit=10)) for _ in range(rounds)]
            alone[provider.name] = statistics.median(r[0] for r in runs)
            print(f"{provider.name + ' alone':36} {alone[provider.name]:10.1f} {runs[0][1]:8d}")
        fan = [await timed(ProviderScout(providers(client, None), limit=10)) for _ in range(rounds)]
        fan_ms = statistics.median(r[0] for r in fan)
        print(f"{'all four, fanned out':36} {fan_ms:10.1f} {fan[0][1]:8d}")
        with tempfile.TemporaryDirectory() as tmp:
            cache = EmbeddedCache(Path(tmp) / "cache.sqlite3")
            scout = ProviderScout(providers(client, cache), limit=10)
            await timed(scout)  # fills the api cache
            warm = [await timed(scout) for _ in range(rounds)]
            warm_ms = statistics.median(r[0] for r in warm)
            await cache.aclose()
        print(f"{'all four, warm api cache':36} {warm_ms:10.1f} {warm[0][1]:8d}")
        slowest, total = max(alone.values()), sum(alone.values())
        print()
        print(f"fan-out / slowest provider: {fan_ms / slowest:.2f}x", end="   ")
        print(f"fan-out / sum of providers: {fan_ms / total:.2f}x")
        print(f"warm cache / cold fan-out: {warm_ms / fan_ms:.3f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))

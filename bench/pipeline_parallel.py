"""Benchmark: one brief's wall time with the pipeline's concurrency at 1 and at its defaults.

    .venv/bin/python bench/pipeline_parallel.py [--runs 5] [--latency 0.25]

Every configuration runs the same code; only settings differ:

- ``sequential``: one LLM reading at a time (``llm.read_concurrency=1``) and one search at
  a time per remote provider (``pipeline.query_concurrency=1``);
- ``old defaults``: readings 4 at a time, searches one at a time (the defaults before
  searches ran concurrently);
- ``defaults``: the settings' defaults.

What no setting turns off is in every row: the library and the question's own searches
start while the model expands the question, so ``sequential`` is a little faster than the
code before that change was (its SCOUT waited for the expansion first).

The language model is the loopback fake OpenAI server (``nomosx.testing.fake_llm``) behind
the real SDK and gateway; every call is answered after ``--latency`` seconds: the query
expansion (three keyword queries), one reading per ranked source (quoting its abstract's
first sentences) and the brief (one cited sentence per section). The remote providers
(``--providers``, default OpenAlex and Crossref) are built by the real factory at their
published rates and answered from the recorded fixtures of ``tests/sources/fixtures``
through an ``httpx.MockTransport`` after ``--provider-latency`` seconds per request
(OpenAlex follows its cursor: three requests per query, one after another). The library
is the bundled SciFact one with the MiniLM embedder. LLM replies are never reused (their
cache TTL is a microsecond) and provider replies are not cached; the embedding cache is
warm, as in a running deployment.

The configurations run one after another (a local vector store admits one application at
a time), after one warm-up run each. Printed: the median wall time of ``--runs`` runs per
configuration, the median of each stage, the calls made per run (the same work in every
configuration) and the speed-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.pipeline.llm_analyse import brief_schema
from nomosx.pipeline.scout import ProviderScout
from nomosx.sources.factory import build_remote
from nomosx.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, Step

QUESTION = "Does vitamin D supplementation reduce the risk of fractures?"
QUERIES = ["vitamin D fracture risk", "cholecalciferol bone fractures", "vitamin D falls elderly"]
STAGES = ("scout", "index", "rank", "read", "analyse", "guard", "edit")
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "sources" / "fixtures"
REMOTE = ("openalex", "crossref", "semanticscholar", "arxiv")
OPENALEX_SECOND_PAGE = json.loads((FIXTURES / "openalex_works_page1.json").read_text())["meta"][
    "next_cursor"
]
CONFIGS = {  # name: (llm.read_concurrency, pipeline.query_concurrency or None: the default)
    "sequential": (1, 1),
    "old defaults": (4, 1),
    "defaults": (None, None),
}
_ABSTRACT = re.compile(r"Abstract: (.*?)\n</source>", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[a-z0-9%)])\. (?=[A-Z])")


def first_sentences(abstract: str, count: int) -> list[str]:
    """Whole sentences from the start of ``abstract``, as the model would quote them."""
    return [s if s.endswith(".") else s + "." for s in _SENTENCE_END.split(abstract)[:count]]


def answer(latency: float) -> Callable[[RecordedRequest], Step]:
    """The fake model: each request answered by what it asks (its JSON schema's name)."""

    def respond(request: RecordedRequest) -> Step:
        body = request.body or {}
        name = (body.get("response_format") or {}).get("json_schema", {}).get("name")
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        abstracts = [a for a in _ABSTRACT.findall(prompt) if a != "(no abstract)"]
        data: dict[str, Any]
        if name == "queries":
            data = {"queries": QUERIES}
        elif name == "findings":
            quotes = first_sentences(abstracts[0], 2) if abstracts else []
            data = {"findings": [{"kind": "result", "quote": q} for q in quotes]}
        else:
            data = {key: [] for key in brief_schema()["required"]}
            data["title"] = "Vitamin D and fractures"
            sentences = [
                f"{first_sentences(a, 1)[0]} [SRC-{i}]" for i, a in enumerate(abstracts, 1)
            ]
            for key in data:
                if key != "title":
                    data[key] = sentences[:2]
        return Reply(json.dumps(data), delay=latency)

    return respond


@dataclass
class FakeAcademia:
    """OpenAlex, Crossref, Semantic Scholar and arXiv from their recorded fixtures, each
    request answered after ``latency`` seconds; counts the requests."""

    latency: float
    requests: int = 0

    def page(self, request: httpx.Request) -> tuple[str, str]:
        provider = request.url.host.split(".")[0]
        params = request.url.params
        if provider == "openalex":
            cursor = params.get("cursor")
            if cursor == "*":
                return "openalex_works_page1.json", "application/json"
            if cursor == OPENALEX_SECOND_PAGE:
                return "openalex_works_page2.json", "application/json"
            return "openalex_works_empty.json", "application/json"
        if provider == "crossref":
            return "crossref_works_page1.json", "application/json"
        if provider == "semanticscholar":
            later = params.get("offset", "0") != "0"
            name = "page2" if later else "page1"
            return f"semanticscholar_search_{name}.json", "application/json"
        later = params.get("start", "0") != "0"
        return ("arxiv_search_page2.xml" if later else "arxiv_search.xml"), "application/atom+xml"

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await asyncio.sleep(self.latency)
        file, content_type = self.page(request)
        return httpx.Response(
            200, content=(FIXTURES / file).read_bytes(), headers={"content-type": content_type}
        )


@dataclass
class Measured:
    wall: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    llm_calls: list[int] = field(default_factory=list)
    provider_calls: list[int] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)


def settings_for(
    data: Path, server: FakeLLMServer, read: int | None, queries: int | None
) -> Settings:
    llm: dict[str, Any] = {"openai_base_url": server.openai_base_url}
    pipeline: dict[str, Any] = {"providers": ["library"]}
    if read is not None:
        llm["read_concurrency"] = read
    if queries is not None:
        pipeline["query_concurrency"] = queries
    return Settings(
        data_dir=data,
        openai_api_key="sk-bench",
        llm_chain="openai:gpt-4o-mini",
        llm=llm,
        pipeline=pipeline,
        cache={"ttl_llm": 1e-6},  # every model call reaches the fake server
        sources={
            "mailto": "bench@example.org",
            **{f"{name}_url": f"http://{name}.test" for name in REMOTE},
        },
    )


async def open_app(settings: Settings, client: httpx.AsyncClient, providers: list[str]) -> NomosX:
    """The application with the remote providers answered by the fake transport."""
    app = await NomosX.open(settings)
    scout = app.pipeline.scout
    assert isinstance(scout, ProviderScout)
    scout.providers.extend(build_remote(providers, settings, client=client, cache=None))
    return app


async def one_run(
    app: NomosX, server: FakeLLMServer, academia: FakeAcademia, into: Measured | None
) -> None:
    llm_before, remote_before = len(server.completion_requests), academia.requests
    t0 = time.perf_counter()
    result = await app.pipeline.run(QUESTION)
    wall = time.perf_counter() - t0
    assert result.brief.mode == "llm", result.brief.mode
    if into is None:
        return
    into.wall.append(wall)
    for stage in result.run.stages:
        into.stages[stage.name].append(stage.duration_ms)
    into.llm_calls.append(len(server.completion_requests) - llm_before)
    into.provider_calls.append(academia.requests - remote_before)
    into.sources.append(len(result.brief.sources))


def report(measured: dict[str, Measured]) -> None:
    header = f"{'configuration':14} {'read':>4} {'queries':>7} {'median s':>9}"
    header += "".join(f" {s:>8}" for s in STAGES) + f" {'LLM':>4} {'HTTP':>5} {'srcs':>4}"
    print(header)
    print(f"{'':37}" + "".join(f" {'ms':>8}" for _ in STAGES) + f" {'calls':>4}")
    for name, m in measured.items():
        read, queries = CONFIGS[name]
        row = f"{name:14} {read or 'def':>4} {queries or 'def':>7} "
        row += f"{statistics.median(m.wall):9.2f}"
        row += "".join(f" {statistics.median(m.stages[s]):8.0f}" for s in STAGES)
        row += f" {statistics.median(m.llm_calls):4.0f} {statistics.median(m.provider_calls):5.0f}"
        row += f" {statistics.median(m.sources):4.0f}"
        print(row)
    fastest = statistics.median(measured["defaults"].wall)
    print()
    for name in ("sequential", "old defaults"):
        ratio = statistics.median(measured[name].wall) / fastest
        print(f"speed-up of defaults over {name}: {ratio:.2f}x")


async def measure(
    name: str,
    data: Path,
    server: FakeLLMServer,
    client: httpx.AsyncClient,
    academia: FakeAcademia,
    args: argparse.Namespace,
) -> Measured:
    """One configuration: its own application on the shared data directory (a local
    vector store admits one application at a time), a warm-up run, then ``--runs``."""
    read, queries = CONFIGS[name]
    app = await open_app(settings_for(data, server, read, queries), client, args.providers)
    try:
        if name == "defaults":
            print(
                f"defaults: read_concurrency={app.settings.llm.read_concurrency}, "
                f"query_concurrency={app.settings.pipeline.query_concurrency}"
            )
        await one_run(app, server, academia, None)  # model weights, index, embedding cache
        measured = Measured()
        for _ in range(args.runs):
            await one_run(app, server, academia, measured)
        return measured
    finally:
        await app.close()


async def main(args: argparse.Namespace) -> None:
    academia = FakeAcademia(args.provider_latency)
    print(
        f"LLM latency {args.latency * 1000:.0f} ms, provider latency "
        f"{args.provider_latency * 1000:.0f} ms, providers: {', '.join(args.providers)}; "
        f"median of {args.runs} runs"
    )
    async with (
        FakeLLMServer(models=("gpt-4o-mini",), responder=answer(args.latency)) as server,
        httpx.AsyncClient(transport=httpx.MockTransport(academia)) as client,
    ):
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            app = await NomosX.open(settings_for(data, server, None, None))
            try:
                t0 = time.perf_counter()
                await app.ensure_library()
                print(f"bundled library loaded in {time.perf_counter() - t0:.1f} s")
            finally:
                await app.close()
            measured = {
                name: await measure(name, data, server, client, academia, args) for name in CONFIGS
            }
    print()
    report(measured)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per LLM call")
    parser.add_argument(
        "--provider-latency", type=float, default=0.3, help="seconds per provider request"
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=["openalex", "crossref"],
        choices=REMOTE,
        help="remote providers (Semantic Scholar and arXiv: 1 and 1/3 requests a second)",
    )
    asyncio.run(main(parser.parse_args()))

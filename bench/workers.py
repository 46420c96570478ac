"""Brief throughput with 1, 2 and 4 ``nomosx worker`` processes, and the pipeline's wall
time before and after parallelisation.

Workers: one PostgreSQL database and one Redis (both real, as in production), a loopback
fake OpenAI server answering every model call after ``--latency`` seconds (the reader and
the analyst get valid JSON, so every brief is an LLM brief), the bundled library with no
embedder (dense retrieval needs one vector store per process; it adds CPU work that the
2-core machine would serialise, hiding the scaling being measured). For each worker count,
the workers are started and registered first (their start-up is not timed), then
``--briefs`` distinct questions are submitted at once through the same queue the API uses,
and the clock stops when the last brief is stored. Figures: briefs per minute, the speed-up
over one worker, and its efficiency (speed-up / workers).

Pipeline: bench/pipeline_parallel.py's measurement (same process, same fake server), the
sequential configuration against the parallel defaults.

    .venv/bin/python bench/workers.py [--briefs 24] [--workers 1 2 4] [--latency 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.jobs.base import TERMINAL, BriefJobRequest, JobStatus
from nomosx.jobs.redis_queue import RedisJobQueue
from nomosx.testing.fake_llm import FakeLLMServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline_parallel

POSTGRES = os.environ.get("NOMOSX_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("NOMOSX_BENCH_REDIS", "redis://127.0.0.1:6379/5")
DATABASE = "nomosx_bench_workers"
TOPICS = [
    "vitamin D supplementation and fractures",
    "statins and cardiovascular mortality",
    "exercise and depression",
    "smoking cessation and lung cancer risk",
    "aspirin and colorectal cancer",
    "obesity and type 2 diabetes",
    "sleep duration and cognitive decline",
    "air pollution and asthma",
    "breastfeeding and childhood infections",
    "alcohol consumption and liver disease",
    "hypertension and stroke",
    "folic acid and neural tube defects",
]


def questions(count: int) -> list[str]:
    """Distinct questions (no brief cache or LLM cache hit between them)."""
    forms = ("Does {} matter?", "What is known about {}?", "What does the evidence say on {}?")
    out = [f.format(t) for f in forms for t in TOPICS]
    return [f"{out[i % len(out)]} (run {i // len(out)})" for i in range(count)]


async def fresh_database() -> str:
    admin = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return f"{POSTGRES}/{DATABASE}"


def environment(database: str, llm_url: str, queue: str, concurrency: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMOSX_")}
    env.update(
        DATABASE_URL=database,
        REDIS_URL=REDIS,
        OPENAI_API_KEY="sk-bench",
        NOMOSX_LLM_CHAIN="openai:gpt-4o-mini",
        NOMOSX_LLM__OPENAI_BASE_URL=llm_url,
        NOMOSX_CACHE__ENABLED="false",
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
        NOMOSX_JOBS__QUEUE=queue,
        NOMOSX_JOBS__CONCURRENCY=str(concurrency),
        NOMOSX_LOG_LEVEL="WARNING",
    )
    return env


def settings_of(env: dict[str, str], data: Path) -> Settings:
    """The settings the workers read from ``env``, for this process (no env change)."""
    return Settings(
        data_dir=data,
        database_url=env["DATABASE_URL"],
        redis_url=env["REDIS_URL"],
        openai_api_key=env["OPENAI_API_KEY"],
        llm_chain=env["NOMOSX_LLM_CHAIN"],
        llm={"openai_base_url": env["NOMOSX_LLM__OPENAI_BASE_URL"]},
        cache={"enabled": False},
        bundled_library=False,
        retrieval={"embedder": "none"},
        jobs={
            "queue": env["NOMOSX_JOBS__QUEUE"],
            "concurrency": int(env["NOMOSX_JOBS__CONCURRENCY"]),
        },
    )


async def load_library(settings: Settings) -> None:
    t0 = time.perf_counter()
    app = await NomosX.open(settings.model_copy(update={"bundled_library": True}))
    try:
        await app.ensure_library()
    finally:
        await app.close()
    print(f"bundled library loaded into PostgreSQL in {time.perf_counter() - t0:.1f} s")


async def round_with(
    workers: int, env: dict[str, str], settings: Settings, tmp: Path, briefs: int
) -> tuple[float, int]:
    """Start ``workers`` processes, wait until they are registered, submit the briefs
    at once, wait for all; the wall seconds and the number that failed."""
    queue = RedisJobQueue(REDIS, settings.jobs)
    processes = []
    try:
        for i in range(workers):
            data = tmp / f"worker{i}"
            with (tmp / f"worker{i}.log").open("wb") as log:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "nomosx",
                        "worker",
                        env={**env, "NOMOSX_DATA_DIR": str(data)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 120
        while (await queue.counts()).workers != workers:
            if time.monotonic() > deadline or any(p.returncode is not None for p in processes):
                raise RuntimeError(f"workers did not start: see {tmp}/worker*.log")
            await asyncio.sleep(0.2)
        ids = [str(uuid.uuid4()) for _ in range(briefs)]
        t0 = time.perf_counter()
        for brief_id, question in zip(ids, questions(briefs), strict=True):
            await queue.submit(BriefJobRequest(brief_id=brief_id, question=question))
        pending = set(ids)
        failed = 0
        while pending:
            for brief_id in list(pending):
                info = await queue.info(brief_id)
                if info is not None and info.status in TERMINAL:
                    pending.discard(brief_id)
                    failed += info.status is not JobStatus.SUCCEEDED
            await asyncio.sleep(0.05)
        return time.perf_counter() - t0, failed
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
        await queue.stop()


async def measure_workers(args: argparse.Namespace) -> None:
    database = await fresh_database()
    async with FakeLLMServer(
        models=("gpt-4o-mini",), responder=pipeline_parallel.answer(args.latency)
    ) as server:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            results: dict[int, tuple[float, int]] = {}
            for workers in args.workers:
                queue = f"bench:{uuid.uuid4().hex[:8]}"
                env = environment(database, server.openai_base_url, queue, args.concurrency)
                settings = settings_of(env, tmp / "main")
                if not results:
                    await load_library(settings)
                results[workers] = await round_with(workers, env, settings, tmp, args.briefs)
                wall, failed = results[workers]
                print(
                    f"{workers} worker(s): {args.briefs} briefs in {wall:.2f} s ({failed} failed)",
                    flush=True,
                )
    print()
    print(
        f"LLM latency {args.latency * 1000:.0f} ms per call, {args.concurrency} briefs at "
        f"once per worker, {args.briefs} briefs per round, PostgreSQL + Redis"
    )
    print(f"{'workers':>7} {'wall s':>7} {'briefs/min':>10} {'speed-up':>8} {'efficiency':>10}")
    base = args.briefs / results[args.workers[0]][0] * 60
    for workers, (wall, _) in results.items():
        rate = args.briefs / wall * 60
        speedup = rate / base
        print(
            f"{workers:7d} {wall:7.2f} {rate:10.1f} {speedup:7.2f}x "
            f"{speedup / (workers / args.workers[0]):10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--briefs", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=2, help="briefs at once per worker")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per LLM call")
    parser.add_argument("--pipeline-runs", type=int, default=3)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure_workers(args))
    if not args.skip_pipeline:
        print("\npipeline wall time, before and after parallelisation (bench/pipeline_parallel.py)")
        asyncio.run(
            pipeline_parallel.main(
                argparse.Namespace(
                    runs=args.pipeline_runs,
                    latency=args.latency,
                    provider_latency=0.3,
                    providers=["openalex", "crossref"],
                )
            )
        )


if __name__ == "__main__":
    main()

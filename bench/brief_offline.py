"""Benchmark: an offline brief on the bundled library, end to end.

    .venv/bin/python bench/brief_offline.py [--runs 5] [--database-url URL]

Opens NomosX on a fresh data directory, loads the bundled library (timed: the first run a
user sees), then writes a brief for each of 10 fixed questions ``--runs`` times (warm: the
store open, the index loaded) and prints the median and p95 per question, the median per
stage, and the process's peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from nomosx.app import NomosX
from nomosx.config import Settings

QUESTIONS = (
    "Does vitamin D supplementation reduce the risk of fractures?",
    "Is obesity associated with an increased risk of cancer?",
    "Do statins reduce cardiovascular mortality?",
    "Does smoking increase the risk of lung cancer?",
    "Is physical activity associated with lower mortality?",
    "Does aspirin prevent colorectal cancer?",
    "Do antibiotics alter the gut microbiome?",
    "Is the BRCA1 mutation associated with breast cancer?",
    "Does insulin resistance cause type 2 diabetes?",
    "Does HIV infection increase the risk of tuberculosis?",
)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(runs: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=database_url)
        t0 = time.perf_counter()
        app = await NomosX.open(settings)
        report = await app.ensure_library()
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await app.index.get()
        index_s = time.perf_counter() - t0
        rss_before = max_rss_mb()
        print(f"store: {settings.resolved_database_url.split(':', 1)[0]}")
        print(
            f"bundled library load: {load_s:.2f} s ({report.inserted if report else 0:,} sources)"
        )
        print(f"index build (first brief only): {index_s:.2f} s")
        print()
        print(f"{'question':62} {'median ms':>10} {'p95 ms':>8} {'sources':>8} {'citations':>9}")
        medians = []
        stages: dict[str, list[float]] = defaultdict(list)
        for question in QUESTIONS:
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                result = await app.brief(question, fresh=True)  # the pipeline, not the cache
                times.append((time.perf_counter() - t0) * 1000)
                for stage in result.run.stages:
                    stages[stage.name].append(stage.duration_ms)
            median = statistics.median(times)
            p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
            medians.append(median)
            print(
                f"{question[:62]:62} {median:10.1f} {p95:8.1f} "
                f"{len(result.brief.sources):8d} {len(result.brief.guard.citations):9d}"
            )
        await app.close()
    print()
    print(
        "median per stage (ms): "
        + ", ".join(f"{name} {statistics.median(values):.1f}" for name, values in stages.items())
    )
    print(
        f"all questions: median {statistics.median(medians):.1f} ms, "
        f"worst question median {max(medians):.1f} ms (target < 2000 ms)"
    )
    print(f"peak memory (max RSS): {max_rss_mb():.0f} MB (after library load {rss_before:.0f} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.database_url))
    sys.exit(0)

"""Benchmark: start-up time of ``nomosx --help``, with Python's own start-up as the peer.

    .venv/bin/python bench/cli_startup.py [--runs 20]

Prints the median and p95 wall time of each command over ``--runs`` runs, and the ratio of
``nomosx --help`` to ``python -c pass`` (the floor no Python CLI can beat) and to
``python -c "import typer"`` (the framework's own cost).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    "nomosx --help": [sys.executable, "-m", "nomosx", "--help"],
}


def measure(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main(runs: int) -> None:
    results = {}
    for name, argv in COMMANDS.items():
        measure(argv, 2)  # warm the file cache
        results[name] = measure(argv, runs)
    print(f"{'command':28} {'median ms':>10} {'p95 ms':>8}")
    for name, times in results.items():
        p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
        print(f"{name:28} {statistics.median(times):10.1f} {p95:8.1f}")
    ours = statistics.median(results["nomosx --help"])
    print()
    floor = statistics.median(results["python -c pass"])
    framework = statistics.median(results["python -c 'import typer'"])
    print(f"nomosx --help / python -c pass: {ours / floor:.2f}x")
    print(f"nomosx --help / import typer:   {ours / framework:.2f}x")
    print(f"target: < 300 ms; measured median {ours:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    main(parser.parse_args().runs)

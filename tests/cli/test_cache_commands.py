from __future__ import annotations

import json

from tests.cli.conftest import Runner

QUESTION = "Does aspirin prevent colorectal cancer?"


def test_cache_commands_and_the_brief_cache(cli: Runner) -> None:
    first = cli("brief", QUESTION)
    assert first.returncode == 0, first.stderr
    second = cli("brief", QUESTION)
    assert second.returncode == 0, second.stderr
    assert "from the brief cache" in second.stderr
    assert second.stdout == first.stdout
    assert "Scout sources" not in second.stderr  # no stage ran

    stats = cli("cache", "stats", "--format", "json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["backend"] == "embedded" and data["status"] == "up"
    assert data["namespaces"]["brief"]["hits"] >= 1
    assert data["namespaces"]["brief"]["keys"] == 1

    table = cli("cache", "stats")
    assert "brief" in table.stdout and "hit rate" in table.stdout

    prom = cli("cache", "stats", "--format", "prometheus")
    assert 'nomosx_cache_hits_total{backend="embedded",namespace="brief"}' in prom.stdout
    assert "nomosx_cache_up" in prom.stdout

    removed = cli("cache", "invalidate", "brief")
    assert removed.returncode == 0
    assert "removed 1 keys from brief" in removed.stderr
    third = cli("brief", QUESTION, "--fresh")
    assert "from the brief cache" not in third.stderr

    bad = cli("cache", "invalidate", "nonsense")
    assert bad.returncode == 2

    cleared = cli("cache", "clear", "--yes")
    assert cleared.returncode == 0 and "removed" in cleared.stderr

"""The CLI is tested as users run it: a real ``nomosx`` process, its output and exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Runner = Callable[..., subprocess.CompletedProcess[str]]


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOMOSX_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(NOMOSX_DATA_DIR=str(data_dir), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return env


def run_cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nomosx", *args],
        capture_output=True,
        text=True,
        env=_env(data_dir),
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the bundled library loaded and indexed (made once)."""
    data = tmp_path_factory.mktemp("prepared") / "data"
    result = run_cli(data, "sources", "search", "vitamin", "--limit", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture
def cli(prepared_data: Path, tmp_path: Path) -> Runner:
    """Run ``nomosx`` on a private copy of the prepared data directory."""
    data = tmp_path / "cli-data"
    shutil.copytree(prepared_data, data)

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(data, *args, timeout=timeout)

    return run

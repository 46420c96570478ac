"""The README's quickstart is two commands, and they work as written.

``make test`` is what CI runs (``.ci/run``); ``make demo`` is run here, on a fresh data
directory, exactly as the README gives it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quickstart_is_two_commands_and_ci_runs_the_test_one() -> None:
    commands = quickstart_commands()
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\nmake test\n" in ci


@pytest.mark.timeout(600)
def test_make_demo_writes_an_offline_brief(tmp_path: Path) -> None:
    if shutil.which("make") is None:  # pragma: no cover - make is part of the toolchain
        pytest.fail("make is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMOSX_")}
    env.pop("DATABASE_URL", None)
    env.update(NOMOSX_DATA_DIR=str(tmp_path / "data"), NO_COLOR="1")
    result = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[SRC-1]" in result.stdout
    assert "extractive" in result.stdout.lower()
    assert "cost $0.0000" in result.stderr

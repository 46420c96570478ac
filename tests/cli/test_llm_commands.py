"""``nomosx llm`` as users run it, against a loopback fake OpenAI server in a thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nomosx.testing.fake_llm import Fail, FakeLLMServer, Reply


def _run(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NOMOSX_")}
    base.update(NOMOSX_DATA_DIR=str(data), COLUMNS="200", NO_COLOR="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "nomosx", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
        check=False,
    )


def test_ask_health_and_costs(tmp_path: Path) -> None:
    server = FakeLLMServer(models=("gpt-4o-mini",))
    with server.in_thread():
        env = {
            "OPENAI_API_KEY": "sk-cli-test-secret",
            "NOMOSX_LLM__OPENAI_BASE_URL": server.openai_base_url,
            "NOMOSX_LLM__ATTEMPTS": "1",
        }
        server.script(Reply("Carbon taxes cut emissions.", input_tokens=12, output_tokens=5))
        asked = _run(tmp_path, env, "llm", "ask", "Do carbon taxes work?")
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.strip() == "Carbon taxes cut emissions."
        assert "openai:gpt-4o-mini · 12 in, 5 out · cost $0.0000" in asked.stderr

        health = _run(tmp_path, env, "llm", "health")
        assert health.returncode == 0, health.stderr
        assert "openai" in health.stdout and "healthy" in health.stdout

        costs = _run(tmp_path, env, "llm", "costs", "--by", "agent")
        assert costs.returncode == 0
        assert "cli" in costs.stdout and "1" in costs.stdout

        server.script(Fail(503), Fail(503))
        failed = _run(tmp_path, env, "llm", "ask", "Again?", "--temperature", "0.5")
        assert failed.returncode == 1
        assert "error: all_providers_failed" in failed.stderr
        assert "sk-cli-test-secret" not in failed.stderr + failed.stdout


def test_without_a_key_the_error_names_the_fix(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, "llm", "ask", "Hello?")
    assert result.returncode == 1
    assert "no language model is configured: set OPENAI_API_KEY" in result.stderr
    empty = _run(tmp_path, {}, "llm", "costs")
    assert empty.returncode == 0
    assert "no language-model call recorded yet" in empty.stderr

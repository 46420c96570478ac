from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import Runner, run_cli

QUESTION = "Does vitamin D supplementation reduce the risk of fractures?"


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "d", "--help")
    assert result.returncode == 0
    for command in ("brief", "ingest", "sources", "briefs"):
        assert command in result.stdout
    version = run_cli(tmp_path / "d", "--version")
    assert version.stdout.strip().startswith("nomosx ")


def test_brief_markdown_then_list_and_show(cli: Runner) -> None:
    result = cli("brief", QUESTION, "--sources", "6")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# ")
    assert "[SRC-1]" in result.stdout
    assert "## Sources" in result.stdout
    # progress on stderr, ending with the closing line
    for stage in ("Scout sources", "Rank by relevance", "Check citations"):
        assert stage in result.stderr
    closing = result.stderr.strip().splitlines()[-1]
    assert re.search(r"6 sources · [\d.]+ s · cost \$0\.0000 \(extractive analyst", closing)
    brief_id = closing.rsplit("brief ", 1)[1].strip()

    listed = cli("briefs", "list")
    assert listed.returncode == 0
    assert brief_id in listed.stdout and "vitamin D" in listed.stdout

    shown = cli("briefs", "show", brief_id, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["question"] == QUESTION
    assert len(data["sources"]) == 6


def test_brief_to_html_file(cli: Runner, tmp_path: Path) -> None:
    target = tmp_path / "brief.html"
    result = cli("brief", QUESTION, "--format", "html", "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    html = target.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert 'href="#src-1"' in html


def test_errors_are_one_clear_line(cli: Runner, tmp_path: Path) -> None:
    unrelated = cli("brief", "zxqv blorptastic frumious bandersnatch?")
    assert unrelated.returncode == 1
    assert unrelated.stderr.strip().splitlines()[-1].startswith("error: no source in the library")
    assert "Traceback" not in unrelated.stderr

    missing = cli("briefs", "show", "deadbeef")
    assert missing.returncode == 1
    assert "error: no brief with id 'deadbeef'" in missing.stderr

    bad_format = cli("brief", QUESTION, "--format", "pdf")
    assert bad_format.returncode == 2
    assert "pdf" in bad_format.stderr

    to_dir = cli("brief", QUESTION, "--out", str(tmp_path))
    assert to_dir.returncode == 1
    assert "is a directory" in to_dir.stderr


def test_invalid_setting_names_what_to_set(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, NOMOSX_DATA_DIR=str(tmp_path), DATABASE_URL="mysql://x@y/z")
    result = subprocess.run(
        [sys.executable, "-m", "nomosx", "briefs", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "DATABASE_URL must be a PostgreSQL URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_sources_search(cli: Runner) -> None:
    result = cli("sources", "search", "vitamin D fractures", "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("scifact:") == 3
    nothing = cli("sources", "search", "zxqvblorp")
    assert nothing.returncode == 1
    assert "no source matches" in nothing.stderr


def test_ingest_reports_and_is_idempotent(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "refs.jsonl"
    good = {
        "id": "https://openalex.org/W2741809807",
        "doi": "https://doi.org/10.7717/PEERJ.4375",
        "display_name": "The state of OA: a large-scale analysis of open access articles",
        "publication_year": 2018,
        "abstract_inverted_index": {"Open": [0], "access": [1], "is": [2], "growing.": [3]},
    }
    path.write_bytes(
        (
            json.dumps(good)
            + "\n{not json\n"
            + json.dumps({"doc_id": 1, "title": "", "abstract": ["x"]})
            + "\n"
        ).encode()
    )
    first = cli("ingest", str(path))
    assert first.returncode == 0, first.stderr
    assert "1 new" in first.stderr and "2 skipped" in first.stderr
    assert f"skipped {path}:2:" in first.stderr  # names the line
    assert "[yellow]" not in first.stderr
    second = cli("ingest", str(path))
    assert "0 new, 0 updated, 1 unchanged" in second.stderr
    found = cli("sources", "search", "open access growing", "--limit", "1")
    assert "doi:10.7717/peerj.4375" in found.stdout

    missing = cli("ingest", str(tmp_path / "nope.bib"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_an_unusable_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    result = run_cli(blocker, "briefs", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot create the database folder")
    assert "NOMOSX_DATA_DIR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""The evaluation harness on a small BEIR-format benchmark written here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from nomosx.errors import InputError
from nomosx.evaluation.beir import load
from nomosx.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from nomosx.evaluation.retrieval import CONFIGS, evaluate
from nomosx.testing.embedders import HashingEmbedder
from nomosx.vectors.qdrant import QdrantVectorStore


def test_metrics_by_hand() -> None:
    relevant = {"a": 1, "c": 2}
    ranked = ["b", "c", "a", "d"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["c", "a"], relevant, 10) == pytest.approx(1.0)
    assert recall_at_k(ranked, relevant, 2) == 0.5
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert mrr_at_k(["x"], relevant, 10) == 0.0
    assert ndcg_at_k(ranked, {}, 10) == 0.0 and recall_at_k(ranked, {}, 10) == 0.0


def _write_beir(folder: Path) -> None:
    docs = {
        "d1": ("Carbon tax and emissions", "A carbon tax reduced emissions in British Columbia."),
        "d2": ("Vitamin D and fractures", "Vitamin D supplements did not reduce hip fractures."),
        "d3": ("Statins and mortality", "Statins reduced cardiovascular mortality."),
        "d4": ("Emissions trading", "Cap and trade schemes and carbon prices."),
    }
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in docs.items())
    )
    queries = {"q1": "carbon tax emissions", "q2": "vitamin D hip fractures", "q3": "unjudged"}
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td4\t1\nq2\td2\t1\n"
    )


async def test_evaluate_a_beir_benchmark(tmp_path: Path) -> None:
    _write_beir(tmp_path / "tiny")
    bench = load(tmp_path / "tiny", "test")
    assert set(bench.qrels) == {"q1", "q2"}
    results = {r.config: r for r in await evaluate(bench)}
    bm25 = results["bm25"]
    assert bm25.queries == 2
    assert bm25.mrr_10 == 1.0  # each query's best document comes first
    assert bm25.recall_100 == 1.0
    assert 0.9 < bm25.ndcg_10 <= 1.0
    assert results["bm25+rank"].mrr_10 == 1.0
    with pytest.raises(ValueError, match="unknown configuration"):
        await evaluate(bench, ["nope"])
    with pytest.raises(ValueError, match="need an embedder and a vector store"):
        await evaluate(bench, ["dense"])


async def test_every_configuration_end_to_end(tmp_path: Path) -> None:
    _write_beir(tmp_path / "tiny")
    bench = load(tmp_path / "tiny", "test")
    store = await QdrantVectorStore.memory("eval-test")
    embedder = HashingEmbedder(128)
    stages: list[tuple[str, int, int]] = []
    try:
        results = {
            r.config: r
            for r in await evaluate(
                bench,
                CONFIGS,
                embedder=embedder,
                vector_store=store,
                on_stage=lambda *a: stages.append(a),
            )
        }
    finally:
        await store.aclose()
    assert set(results) == set(CONFIGS)
    assert stages[-1] == ("embedding the corpus", 4, 4)
    assert await_count(embedder) >= 4
    for config in ("dense", "hybrid", "hybrid+rerank", "hybrid+rerank+rank"):
        assert results[config].mrr_10 == 1.0, config
        assert results[config].recall_100 == 1.0, config
        assert results[config].build_s >= results["bm25"].build_s
    assert all(r.rss_mb > 0 and r.p50_ms >= 0 for r in results.values())


def await_count(embedder: HashingEmbedder) -> int:
    return embedder.calls


def test_missing_pieces_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        load(tmp_path / "nope")
    _write_beir(tmp_path / "tiny")
    with pytest.raises(InputError, match=r"no qrels/dev\.tsv"):
        load(tmp_path / "tiny", "dev")


def test_the_cli_prints_the_table(tmp_path: Path) -> None:
    _write_beir(tmp_path / "tiny")
    result = subprocess.run(
        [sys.executable, "-m", "nomosx", "eval", "retrieval", "--dataset", str(tmp_path / "tiny")],
        capture_output=True,
        text=True,
        env={"NOMOSX_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200", "PATH": ""},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nDCG@10" in result.stdout and "hybrid+rerank+rank" in result.stdout
    assert "dense" in result.stdout
    assert "2 judged queries" in result.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "nomosx",
            "eval",
            "retrieval",
            "--dataset",
            str(tmp_path),
            "-c",
            "x",
        ],
        capture_output=True,
        text=True,
        env={"NOMOSX_DATA_DIR": str(tmp_path / "data"), "PATH": ""},
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1 and "unknown --config x" in bad.stderr

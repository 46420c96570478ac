"""Loading a retrieval benchmark: BEIR's layout, or SciFact's own.

BEIR: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``), ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header).
SciFact's release: ``corpus.jsonl`` (``doc_id``, ``title``, ``abstract`` as sentences) and
``claims_<split>.jsonl`` (``id``, ``claim``) beside the same qrels; its claims are the
queries.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from nomosx.errors import InputError


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


def load(folder: Path, split: str = "test") -> Benchmark:
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder with a benchmark in BEIR format")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise InputError(f"no qrels/{split}.tsv in {folder} (splits here: {available or 'none'})")
    corpus = _corpus(folder / "corpus.jsonl")
    queries = _queries(folder, split)
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels[row["query-id"]][row["corpus-id"]] = int(row["score"])
    judged = {q: rels for q, rels in qrels.items() if q in queries}
    if not judged:
        raise InputError(f"none of the queries of {qrels_path} is in the queries file")
    return Benchmark(name=folder.name, corpus=corpus, queries=queries, qrels=dict(judged))


def _corpus(path: Path) -> dict[str, tuple[str, str]]:
    if not path.is_file():
        raise InputError(f"{path} is missing")
    corpus: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if "_id" in record:
                corpus[str(record["_id"])] = (record.get("title", ""), record.get("text", ""))
            else:
                sentences = record.get("abstract", [])
                text = (
                    " ".join(s.strip() for s in sentences)
                    if isinstance(sentences, list)
                    else str(sentences)
                )
                corpus[str(record["doc_id"])] = (record.get("title", ""), text)
    return corpus


def _queries(folder: Path, split: str) -> dict[str, str]:
    beir = folder / "queries.jsonl"
    if beir.is_file():
        with beir.open(encoding="utf-8") as handle:
            return {str(r["_id"]): r["text"] for r in (json.loads(x) for x in handle if x.strip())}
    claims = folder / f"claims_{split}.jsonl"
    if claims.is_file():
        with claims.open(encoding="utf-8") as handle:
            return {str(r["id"]): r["claim"] for r in (json.loads(x) for x in handle if x.strip())}
    raise InputError(f"no queries.jsonl (BEIR) or claims_{split}.jsonl (SciFact) in {folder}")

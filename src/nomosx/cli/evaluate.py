"""``nomosx eval``: measure retrieval on a benchmark in BEIR format."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nomosx.cli.common import err, fail, handle_errors, out, run_async

if TYPE_CHECKING:
    from nomosx.evaluation.beir import Benchmark
    from nomosx.evaluation.retrieval import Result

eval_app = typer.Typer(help="Measure NomosX on public benchmarks.", no_args_is_help=True)

DEFAULT_CONFIGS = "bm25,dense,hybrid,hybrid+rerank,hybrid+rerank+rank"


@eval_app.command("retrieval")
@handle_errors
def retrieval(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="A BEIR-format folder.")],
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv to judge by.")] = "test",
    config: Annotated[
        str,
        typer.Option(
            "--config",
            "-c",
            help="Comma-separated: bm25, dense, hybrid, hybrid+rerank, hybrid+rerank+rank, "
            "bm25+rank.",
        ),
    ] = DEFAULT_CONFIGS,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of each retrieval configuration, with latency,
    index build time and memory. Embeddings go through the cache: a second run on the
    same corpus does not embed it again."""
    from nomosx.evaluation.beir import load
    from nomosx.evaluation.retrieval import CONFIGS

    configs = [c.strip() for c in config.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    if bad:
        raise fail(f"unknown --config {', '.join(bad)} (known: {', '.join(CONFIGS)})")
    bench = load(dataset, split)
    sizes = f"{len(bench.corpus):,} documents, {len(bench.qrels):,} judged queries"
    err.print(f"{bench.name}/{split}: {sizes}", highlight=False)
    results = run_async(_evaluate(bench, configs))
    _print(bench.name, split, results)


async def _evaluate(bench: Benchmark, configs: list[str]) -> list[Result]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nomosx.cache.factory import build_cache
    from nomosx.config import load_settings
    from nomosx.embed.factory import build_embedder
    from nomosx.evaluation.retrieval import LEXICAL_ONLY, evaluate
    from nomosx.vectors.qdrant import QdrantVectorStore

    settings = load_settings()
    dense = any(c not in LEXICAL_ONLY for c in configs)
    cache = build_cache(settings) if dense else None
    embedder = build_embedder(settings, cache) if dense else None
    if dense and embedder is None:
        raise fail("dense configurations need an embedder: NOMOSX_RETRIEVAL__EMBEDDER=local")
    store = await QdrantVectorStore.memory(f"eval-{bench.name}") if dense else None
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("evaluating", total=len(bench.qrels) * len(configs))
            stage = progress.add_task("indexing", total=None, visible=dense)

            def on_stage(label: str, done: int, total: int) -> None:
                progress.update(stage, description=label, completed=done, total=total)

            return await evaluate(
                bench,
                configs,
                embedder=embedder,
                vector_store=store,
                retrieval=settings.retrieval,
                on_query=lambda: progress.advance(task),
                on_stage=on_stage,
            )
    finally:
        if store is not None:
            await store.aclose()
        if cache is not None:
            await cache.aclose()


def _print(name: str, split: str, results: list[Result]) -> None:
    from rich.table import Table

    table = Table(title=f"{name} ({split})")
    columns = ("config", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms", "index s", "RSS MB")
    for column in columns:
        table.add_column(column, justify="left" if column == "config" else "right")
    for r in results:
        table.add_row(
            r.config,
            f"{r.ndcg_10:.3f}",
            f"{r.recall_100:.3f}",
            f"{r.mrr_10:.3f}",
            f"{r.p50_ms:.2f}",
            f"{r.p95_ms:.2f}",
            f"{r.build_s:.2f}",
            f"{r.rss_mb:.0f}",
        )
    out.print(table)

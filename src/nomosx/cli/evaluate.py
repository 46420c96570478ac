"""``nomosx eval``: measure retrieval on a benchmark in BEIR format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nomosx.cli.common import err, fail, handle_errors, out, run_async

eval_app = typer.Typer(help="Measure NomosX on public benchmarks.", no_args_is_help=True)


@eval_app.command("retrieval")
@handle_errors
def retrieval(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="A BEIR-format folder.")],
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv to judge by.")] = "test",
    config: Annotated[
        str, typer.Option("--config", "-c", help="Comma-separated: bm25, bm25+rank.")
    ] = "bm25,bm25+rank",
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of each ranking configuration, with latency."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nomosx.evaluation.beir import load
    from nomosx.evaluation.retrieval import CONFIGS, evaluate

    configs = [c.strip() for c in config.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    if bad:
        raise fail(f"unknown --config {', '.join(bad)} (known: {', '.join(CONFIGS)})")
    bench = load(dataset, split)
    sizes = f"{len(bench.corpus):,} documents, {len(bench.qrels):,} judged queries"
    err.print(f"{bench.name}/{split}: {sizes}", highlight=False)
    with Progress(
        TextColumn("[bold]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("eval", total=len(bench.qrels) * len(configs))
        results = run_async(evaluate(bench, configs, on_query=lambda: progress.advance(task)))
    from rich.table import Table

    table = Table(title=f"{bench.name} ({split})")
    for column in ("config", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms", "index s"):
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
        )
    out.print(table)

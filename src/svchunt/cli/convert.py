"""`svchunt convert PATH... --parquet DIR` — normalised events to a partitioned Parquet dataset (docs/spark.md)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_target(out_dir: str, paths: tuple[str, ...], append: bool) -> None:
    target = Path(out_dir).resolve()
    if target.exists() and not target.is_dir():
        raise click.UsageError(f"--parquet {out_dir}: exists and is not a folder")
    for p in paths:
        given = Path(p).resolve()
        # Reading a folder while writing into it would read our own output back (and may never end).
        if _inside(target, given) or _inside(given, target):
            raise click.UsageError(f"--parquet {out_dir} overlaps the input {p}: write the dataset elsewhere")
    if target.is_dir() and any(target.iterdir()) and not append:
        raise click.UsageError(f"--parquet {out_dir} is not empty: pass --append to add these events to it")


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--parquet", "out_dir", required=True, help="Folder of the Parquet dataset to write.")
@click.option("--append", is_flag=True, help="Add to an existing dataset (new files; nothing is overwritten).")
@click.option("--summary-json", "summary_path", help="Write the counts and every problem as JSON to FILE.")
@click.option("--max-rows", type=int, default=30, show_default=True, help="Rows of the problems table.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on the terminal.")
def convert(
    paths: tuple[str, ...], out_dir: str, append: bool, summary_path: str | None, max_rows: int, quiet: bool
) -> None:
    """Convert EVTX / JSON logs (files, folders, .gz, .zip) to Parquet, partitioned by date and channel.

    The events are exactly those `svchunt hunt` reads (Sigma field names, derived fields, provenance,
    UTC timestamps), so `svchunt hunt DIR` — embedded or `--engine spark` — gives the same alerts as on
    the original logs. Unreadable records and files are counted and listed, never dropped silently.
    """
    from rich.console import Console

    from svchunt.spark.dataset import WriteStats, iter_input_events, write_events

    _check_target(out_dir, paths, append)
    os.makedirs(out_dir, exist_ok=True)
    started = time.perf_counter()
    stats = WriteStats()
    write_events(iter_input_events(list(paths), stats), out_dir, stats)
    seconds = time.perf_counter() - started
    if summary_path:
        _write_summary(stats, out_dir, seconds, summary_path)
    if not quiet:
        _render(stats, out_dir, seconds, Console(), max_rows)
    if stats.records_read == 0:
        Console(stderr=True).print("[red]nothing could be read from the given paths[/red]")
        sys.exit(1)


def _counts(stats, seconds: float) -> dict[str, float | int]:
    return {
        "files": stats.files_read,
        "records_read": stats.records_read,
        "records_written": stats.records_written,
        "records_skipped": stats.records_skipped,
        "files_skipped": stats.files_skipped,
        "partitions": len(stats.partitions),
        "parquet_files_written": stats.files_written,
        "row_groups": stats.row_groups,
        "seconds": round(seconds, 3),
    }


def _write_summary(stats, out_dir: str, seconds: float, path: str) -> None:
    import orjson

    data = {
        "dataset": out_dir,
        **_counts(stats, seconds),
        "problems": [{"source": p.source, "position": p.position, "reason": p.reason} for p in stats.problems],
    }
    with open(path, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _render(stats, out_dir: str, seconds: float, console, max_rows: int) -> None:
    from rich import box
    from rich.table import Table

    from svchunt.outputs.sanitize import terminal_text
    from svchunt.outputs.summary import group_problems

    table = Table(title=f"Converted to {terminal_text(out_dir)}", box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in _counts(stats, seconds).items():
        table.add_row(name.replace("_", " "), f"{value:.2f}" if isinstance(value, float) else str(value))
    table.add_row("problems reported", str(len(stats.problems)))
    console.print(table)
    if not stats.problems:
        return
    groups = group_problems(stats.problems)
    problems = Table(title="Not written (problems by reason)", box=box.SIMPLE_HEAD)
    problems.add_column("reason")
    problems.add_column("count", justify="right")
    problems.add_column("examples")
    for g in groups[:max_rows]:
        examples = "\n".join(f"{terminal_text(src)} ({terminal_text(pos)})" for src, pos in g.examples)
        problems.add_row(terminal_text(g.reason), str(g.count), examples)
    if len(groups) > max_rows:
        problems.add_row(f"[dim]… {len(groups) - max_rows} more[/]", "", "")
    console.print(problems)

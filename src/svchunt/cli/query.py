"""`svchunt query CASE "SQL"`: run SQL on a case file (read-only) and print the result as a table."""

from __future__ import annotations

import click
import duckdb
from rich.console import Console
from rich.table import Table

from svchunt.outputs.sanitize import terminal_text


def _text(value: object) -> str:
    return "" if value is None else terminal_text(str(value))


@click.command()
@click.argument("case_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("sql")
@click.option("--max-rows", default=500, show_default=True, help="Print at most this many rows.")
def query(case_file: str, sql: str, max_rows: int) -> None:
    """Run SQL on CASE_FILE. Tables: runs, alerts, evidence, problems, refused.

    Example: svchunt query case.duckdb "SELECT computer, count(*) FROM alerts GROUP BY ALL"
    """
    from svchunt.outputs import case

    try:
        columns, rows = case.query(case_file, sql)
    except (duckdb.Error, FileNotFoundError) as exc:
        raise click.ClickException(f"{case_file}: {exc}") from exc
    table = Table(show_lines=False)
    for name in columns:
        table.add_column(_text(name), overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*(_text(v) for v in row))
    console = Console()
    console.print(table)
    more = f", {len(rows) - max_rows} not printed (--max-rows)" if len(rows) > max_rows else ""
    console.print(f"[dim]{len(rows)} row(s){more}[/]")

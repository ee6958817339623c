"""`svchunt report CASE`: re-render the outputs of a case file (all runs merged)."""

from __future__ import annotations

import click
import duckdb
from rich.console import Console


@click.command()
@click.argument("case_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Write a self-contained HTML report."
)
@click.option(
    "--navigator", "navigator_path", type=click.Path(dir_okay=False), help="Write an ATT&CK Navigator layer."
)
@click.option(
    "--jsonl", "jsonl_path", type=click.Path(dir_okay=False), help="Write the alerts as JSON Lines."
)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the alerts as CSV.")
@click.option("--title", default=None, help="Report title (default: the case file name).")
def report(
    case_file: str,
    html_path: str | None,
    navigator_path: str | None,
    jsonl_path: str | None,
    csv_path: str | None,
    title: str | None,
) -> None:
    """Re-render reports from CASE_FILE; without an output option, print the summary."""
    from svchunt.outputs import case, csv_out, html_report, jsonl, navigator, terminal

    console = Console(stderr=True)
    try:
        result = case.read_case(case_file)
        runs = case.runs(case_file)
    except (duckdb.Error, FileNotFoundError) as exc:
        raise click.ClickException(f"{case_file}: cannot read case file: {exc}") from exc
    wrote = []
    if html_path:
        html_report.write_html(html_path, result, title=title or f"svchunt case {case_file}", runs=runs)
        wrote.append(html_path)
    if navigator_path:
        navigator.write_layer(navigator.alerts_layer(result.alerts), navigator_path)
        wrote.append(navigator_path)
    if jsonl_path:
        jsonl.write_jsonl(result.alerts, jsonl_path)
        wrote.append(jsonl_path)
    if csv_path:
        csv_out.write_csv(result.alerts, csv_path)
        wrote.append(csv_path)
    if not wrote:
        terminal.render_summary(result, Console())
        return
    console.print(
        f"{len(runs)} run(s), {len(result.alerts)} alert(s) from {case_file} → " + ", ".join(wrote),
        markup=False,
    )

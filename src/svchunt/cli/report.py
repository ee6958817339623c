"""`svchunt report CASE`: re-render the outputs of a case file (all runs merged, incidents rebuilt)."""

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
@click.option(
    "--incidents", "incidents_path", type=click.Path(dir_okay=False), help="Write the incidents as JSON Lines."
)
@click.option(
    "--timesketch", "timesketch_path", type=click.Path(dir_okay=False),
    help="Write a Timesketch timeline of the alerts (.csv or .jsonl).",
)  # fmt: skip
@click.option(
    "--ecs", "ecs_path", type=click.Path(dir_okay=False), help="Write the alerts as ECS documents (JSON Lines)."
)
@click.option("--timeline/--no-timeline", default=None, help="Show the per-alert timeline (default: up to 200 alerts).")
@click.option("--title", default=None, help="Report title (default: the case file name).")
def report(
    case_file: str,
    html_path: str | None,
    navigator_path: str | None,
    jsonl_path: str | None,
    csv_path: str | None,
    incidents_path: str | None,
    timesketch_path: str | None,
    ecs_path: str | None,
    timeline: bool | None,
    title: str | None,
) -> None:
    """Re-render reports from CASE_FILE; without an output option, print incidents, timeline and summary."""
    from svchunt.correlate.incidents import build_incidents
    from svchunt.outputs import (
        case,
        csv_out,
        ecs,
        html_report,
        incidents_out,
        jsonl,
        navigator,
        terminal,
        timesketch,
    )

    if timesketch_path and timesketch.timeline_format(timesketch_path) is None:
        raise click.BadParameter("the file name must end in .csv or .jsonl", param_hint="--timesketch")
    console = Console(stderr=True)
    try:
        result = case.read_case(case_file)
        runs = case.runs(case_file)
    except (duckdb.Error, FileNotFoundError) as exc:
        raise click.ClickException(f"{case_file}: cannot read case file: {exc}") from exc
    # Rebuilt from the merged alerts rather than read back: the same function, so the same stories.
    incidents = build_incidents(result.alerts)
    wrote = []
    if html_path:
        html_report.write_html(
            html_path, result, title=title or f"svchunt case {case_file}", runs=runs, incidents=incidents
        )
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
    if incidents_path:
        incidents_out.write_incidents(incidents, incidents_path)
        wrote.append(incidents_path)
    if timesketch_path:
        stats = timesketch.write_timesketch(result.alerts, incidents, timesketch_path)
        wrote.append(timesketch_path)
        if stats.untimed:
            console.print(f"{stats.untimed} alert(s) without a time are not in the Timesketch timeline", markup=False)
    if ecs_path:
        ecs.write_ecs(result.alerts, incidents, ecs_path)
        wrote.append(ecs_path)
    if not wrote:
        terminal.render_summary(result, Console(), incidents=incidents, timeline=timeline)
        return
    console.print(
        f"{len(runs)} run(s), {len(result.alerts)} alert(s), {len(incidents)} incident(s) from {case_file} → "
        + ", ".join(wrote),
        markup=False,
    )

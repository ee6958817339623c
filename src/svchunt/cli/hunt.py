"""`svchunt hunt PATH...` — run the rules over logs and report alerts."""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from svchunt.model import LEVELS


def _timestamp(value: str | None, name: str) -> str | None:
    """Accept ISO 8601 dates/times (naive = UTC); return the fixed-width text form events use."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"'{value}' is not an ISO 8601 date or time", param_hint=name) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _spool_errors_reported(command: Callable[..., None]) -> Callable[..., None]:
    """A full disk or missing TMPDIR for the matched events (engine/spool.py), during the run or while
    writing outputs: one message and exit 1, not a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from svchunt.engine.spool import SpoolError

        try:
            command(*args, **kwargs)
        except SpoolError as exc:
            raise click.ClickException(str(exc)) from None

    return run


def _collector_thawed(command: Callable[..., None]) -> Callable[..., None]:
    """Whatever the command froze for the garbage collector (see `hunt`) is collectable again after it."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        finally:
            gc.unfreeze()

    return run


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
              help="Sigma rule file or folder (repeatable).")
@click.option("--no-builtin", is_flag=True, help="Do not load the built-in service-persistence content.")
@click.option("--allowlist", "allowlists", multiple=True, help="Tuning file: YAML mapping NAME -> extra known-good values.")
@click.option("--loldrivers", "loldrivers", help="LOLDrivers drivers.csv: match loaded drivers against all its hashes.")
@click.option("--jsonl", "jsonl_path", help="Write alerts as JSON lines to FILE.")
@click.option("--csv", "csv_path", help="Write alerts as CSV to FILE (formula cells neutralised).")
@click.option("--html", "html_path", help="Write a self-contained HTML report to FILE.")
@click.option("--navigator", "navigator_path", help="Write an ATT&CK Navigator layer of the alerts to FILE.")
@click.option("--case", "case_path", help="Append this run to a DuckDB case file.")
@click.option("--state", "state_path", help="DuckDB file with the 30-day service baseline (updated by each run).")
@click.option("--since", help="Only events at or after this time (ISO 8601, UTC unless a zone is given).")
@click.option("--until", help="Only events at or before this time.")
@click.option("--min-level", type=click.Choice(LEVELS), help="Only alerts of this level or higher.")
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@click.option("--no-cache", is_flag=True, help="Recompile every rule (the cache is keyed by content, never stale).")
@click.option("--max-rows", type=int, default=30, show_default=True, help="Rows per summary table.")
@click.option("--summary-json", "summary_path", help="Write the run's counts (files, records, rules, alerts) and incidents as JSON.")
@click.option("--incidents", "incidents_path", help="Write the incidents (alerts grouped per attack and host) as JSON lines to FILE.")
@click.option("--timesketch", "timesketch_path", help="Write a Timesketch timeline of the alerts to FILE (.csv or .jsonl).")
@click.option("--ecs", "ecs_path", help="Write the alerts as ECS documents (Elastic / OpenSearch), JSON lines, to FILE.")
@click.option("--timeline/--no-timeline", default=None, help="Show the per-alert timeline on the terminal (default: when at most 200 alerts).")
@click.option("--quiet", "-q", is_flag=True, help="No summary on the terminal.")
@click.option("--strict", is_flag=True, help="Refuse to run (exit 2) when any rule or correlation is refused.")
@click.option("--engine", type=click.Choice(["embedded", "spark"]), default="embedded", show_default=True,
              help="Where per-event matching runs: in-process workers, or Apache Spark (docs/spark.md).")
@click.option("--spark-master", help="Spark master URL for --engine spark (default: spark-submit's, else local[*]).")
@_spool_errors_reported
@_collector_thawed
def hunt(
    paths: tuple[str, ...],
    rule_paths: tuple[str, ...],
    no_builtin: bool,
    allowlists: tuple[str, ...],
    loldrivers: str | None,
    jsonl_path: str | None,
    csv_path: str | None,
    html_path: str | None,
    navigator_path: str | None,
    case_path: str | None,
    state_path: str | None,
    since: str | None,
    until: str | None,
    min_level: str | None,
    workers: int | None,
    no_cache: bool,
    max_rows: int,
    summary_path: str | None,
    incidents_path: str | None,
    timesketch_path: str | None,
    ecs_path: str | None,
    timeline: bool | None,
    quiet: bool,
    strict: bool,
    engine: str,
    spark_master: str | None,
) -> None:
    """Hunt service persistence and lateral movement in EVTX / JSON logs (files, folders, .gz, .zip)."""
    from rich.console import Console

    from svchunt.engine.detector import Detector
    from svchunt.engine.hunt import HuntOptions, load_ruleset
    from svchunt.outputs.sanitize import terminal_text
    from svchunt.rules.allowlists import AllowlistError

    if no_builtin and not rule_paths:
        raise click.UsageError("--no-builtin leaves no rules: pass --rules PATH")
    if engine != "spark" and spark_master:
        raise click.UsageError("--spark-master needs --engine spark")
    if engine == "spark" and workers:
        raise click.UsageError("--workers is for the embedded engine; Spark's parallelism comes from its master")
    if timesketch_path:
        from svchunt.outputs.timesketch import timeline_format

        if timeline_format(timesketch_path) is None:
            raise click.BadParameter("the file name must end in .csv or .jsonl", param_hint="--timesketch")
    options = HuntOptions(
        paths=list(paths),
        rule_paths=list(rule_paths),
        builtin=not no_builtin,
        allowlists=list(allowlists),
        since=_timestamp(since, "--since"),
        until=_timestamp(until, "--until"),
        min_level=min_level,
        workers=workers,
        use_cache=not no_cache,
        state=state_path,
        loldrivers=loldrivers,
    )
    err = Console(stderr=True)
    try:
        ruleset = load_ruleset(options)
    except AllowlistError as exc:
        raise click.UsageError(str(exc)) from exc
    if not ruleset.rules:
        err.print(f"[red]no rule could be loaded[/red] ({len(ruleset.refused)} refused; see `svchunt rules check`)")
        for r in ruleset.refused[:20]:
            err.print(f"  refused: {terminal_text(r.path)}: {terminal_text(r.reason)}")
        sys.exit(2)
    detector = Detector(ruleset, min_level=options.min_level, state=options.state)
    if strict and detector.refused:
        err.print(f"[red]--strict: {len(detector.refused)} rule(s) refused, not hunting[/red]")
        for r in detector.refused:
            err.print(f"  refused: {terminal_text(r.path)}: {terminal_text(r.reason)}")
        sys.exit(2)

    started = datetime.now(UTC).isoformat()
    if engine == "spark":
        result = _run_on_spark(options, ruleset, spark_master, err)
    else:
        result = _run_with_progress(options, detector, err, quiet)
    finished = datetime.now(UTC).isoformat()
    # The rules, the detector and the alerts live until the command ends: frozen, the garbage collector
    # stops walking them again and again while incidents and outputs are built (`_collector_thawed` ends it).
    gc.freeze()

    from svchunt.cli.side_writer import SideWriter
    from svchunt.correlate.incidents import build_incidents

    # the outputs of the alerts alone are written beside the incidents (cli/side_writer.py)
    side = SideWriter(_alert_outputs(result.alerts, jsonl_path, csv_path)).start()
    try:
        incidents = build_incidents(result.alerts)
        wrote = _write_outputs(
            result, incidents, paths, rule_paths, no_builtin, started, finished, html_path, navigator_path, case_path,
            incidents_path, timesketch_path, ecs_path, summary_path, err,
        )  # fmt: skip
    except BaseException:
        side.wait(report=False)  # this error is the one reported
        raise
    side.wait()
    wrote = [(job.label, job.path) for job in side.jobs] + wrote
    if not quiet:
        from svchunt.outputs.terminal import render_summary

        render_summary(result, Console(), max_rows=max_rows, incidents=incidents, timeline=timeline, wrote=wrote)
    if result.stats.records_read == 0:
        err.print("[red]nothing could be read from the given paths[/red]")
        sys.exit(1)


def _alert_outputs(alerts, jsonl_path: str | None, csv_path: str | None):
    from svchunt.cli.side_writer import OutputJob

    jobs = []
    if jsonl_path:
        from svchunt.outputs.jsonl import write_jsonl

        jobs.append(OutputJob("alerts (JSON lines)", jsonl_path, lambda: write_jsonl(alerts, jsonl_path)))
    if csv_path:
        from svchunt.outputs.csv_out import write_csv

        jobs.append(OutputJob("alerts (CSV)", csv_path, lambda: write_csv(alerts, csv_path)))
    return jobs


def _write_outputs(
    result, incidents, paths, rule_paths, no_builtin, started, finished, html_path, navigator_path, case_path,
    incidents_path, timesketch_path, ecs_path, summary_path, err,
) -> list[tuple[str, str]]:  # fmt: skip
    """The outputs that need the incidents (and the small ones), in the process; (label, path) of each."""
    from svchunt.cli.side_writer import OutputJob, run_job

    wrote: list[tuple[str, str]] = []

    def write(label: str, path: str, action):
        result = run_job(OutputJob(label, path, action))
        wrote.append((label, path))
        return result

    if html_path:
        from svchunt.outputs.html_report import write_html

        write("HTML report", html_path, lambda: write_html(html_path, result=result, incidents=incidents))
    if navigator_path:
        from svchunt.outputs.navigator import alerts_layer, write_layer

        write("ATT&CK Navigator layer", navigator_path, lambda: write_layer(alerts_layer(result.alerts), navigator_path))
    if case_path:
        from svchunt.outputs.case import write_case

        hosts = sorted({a.computer for a in result.alerts if a.computer})
        meta = {"started": started, "finished": finished, "hosts": hosts,
                "args": {"command": "hunt", "paths": list(paths), "rules": list(rule_paths), "builtin": not no_builtin}}

        def case() -> None:
            write_case(case_path, result, meta)
            _write_case_incidents(case_path)

        write("case file", case_path, case)
    if incidents_path:
        from svchunt.outputs.incidents_out import write_incidents

        write("incidents (JSON lines)", incidents_path, lambda: write_incidents(incidents, incidents_path))
    if timesketch_path:
        from svchunt.outputs.timesketch import write_timesketch

        stats = write("Timesketch timeline", timesketch_path,
                      lambda: write_timesketch(result.alerts, incidents, timesketch_path))  # fmt: skip
        if stats.untimed:
            err.print(f"{stats.untimed} alert(s) without a time are not in the Timesketch timeline", markup=False)
    if ecs_path:
        from svchunt.outputs.ecs import write_ecs

        write("ECS documents (JSON lines)", ecs_path, lambda: write_ecs(result.alerts, incidents, ecs_path))
    if summary_path:
        write("run summary (JSON)", summary_path, lambda: _write_summary(result, summary_path, incidents))
    return wrote


def _write_case_incidents(case_path: str) -> None:
    """The case's incidents table, rebuilt over all its runs: a later run can extend an earlier story."""
    from svchunt.correlate.incidents import build_incidents
    from svchunt.outputs.case import read_case, write_incidents_table

    write_incidents_table(case_path, build_incidents(read_case(case_path).alerts))


def _write_summary(result, path: str, incidents=()) -> None:
    from collections import Counter
    from dataclasses import asdict

    import orjson

    data = {
        **asdict(result.stats),
        "alerts": len(result.alerts),
        "alerts_by_level": dict(Counter(a.rule.level for a in result.alerts)),
        "rules_refused": len(result.refused),
        "problems": [{"source": p.source, "position": p.position, "reason": p.reason} for p in result.problems],
        "notes": result.notes,
        "incidents": [inc.to_dict() for inc in incidents],
    }
    with open(path, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _run_on_spark(options, ruleset, master, err):
    from rich.markup import escape

    from svchunt.spark.driver import SparkRunError, run_spark_hunt
    from svchunt.spark.session import SparkUnavailable

    try:
        return run_spark_hunt(options, ruleset, master=master)
    except SparkUnavailable as exc:
        raise click.UsageError(f"--engine spark: {exc}") from exc
    except SparkRunError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        sys.exit(1)


def _run_with_progress(options, detector, err, quiet):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from svchunt.engine.hunt import run_hunt

    show = not quiet and err.is_terminal
    if not show:
        return run_hunt(options, detector=detector)
    with Progress(
        TextColumn("[bold]hunting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("files", total=None)
        return run_hunt(
            options,
            detector=detector,
            on_chunk=lambda res: progress.advance(task, res.files_done),
            on_inputs=lambda n: progress.update(task, total=n),
        )

"""`svchunt rules check PATH` — which rules load, which are refused and why."""

from __future__ import annotations

import sys
from collections import Counter

import click

from svchunt.outputs.sanitize import terminal_text


@click.group()
def rules() -> None:
    """Work with Sigma rules."""


@rules.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--allowlist", "allowlists", multiple=True, help="Tuning file with extra placeholder values.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when any rule is refused.")
def check(paths: tuple[str, ...], allowlists: tuple[str, ...], as_json: bool, strict: bool) -> None:
    """Compile rules and list every refused rule with its reason.

    Also tells, per loaded rule, whether the SQL back end (DuckDB, Spark SQL) can run it with the Python
    back end's answers, and why not where it cannot.
    """
    from rich.console import Console
    from rich.table import Table

    from svchunt.correlate import load_correlations
    from svchunt.engine.sql import sql_refusal
    from svchunt.rules.allowlists import load_allowlists
    from svchunt.rules.loader import load_rules

    ruleset = load_rules(list(paths), allowlists=load_allowlists(list(allowlists)))
    correlations, corr_refused = (
        load_correlations(ruleset.correlation_docs, ruleset.infos) if ruleset.correlation_docs else ([], [])
    )
    refused = list(ruleset.refused) + list(corr_refused)
    not_sql = {i: reason for i, r in enumerate(ruleset.rules) if (reason := sql_refusal(r.compiled)) is not None}
    if as_json:
        import orjson

        out = {
            "files": ruleset.files,
            "rules_loaded": len(ruleset.rules),
            "correlations_loaded": len(correlations),
            "rules_on_sql": len(ruleset.rules) - len(not_sql),
            "rules": [
                {"path": r.info.path, "rule_id": r.info.rule_id, "title": r.info.title, "sql": i not in not_sql,
                 "sql_reason": not_sql.get(i)}
                for i, r in enumerate(ruleset.rules)
            ],
            "refused": [
                {"path": r.path, "rule_id": r.rule_id, "title": r.title, "reason": r.reason} for r in refused
            ],
        }
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console = Console()
        console.print(
            f"{ruleset.files} files: [green]{len(ruleset.rules)} rules loaded[/green], "
            f"{len(correlations)} correlations loaded, "
            f"[{'red' if refused else 'green'}]{len(refused)} refused[/]"
        )
        if refused:
            reasons = Counter(r.reason for r in refused)
            table = Table(title="Refused rules", show_lines=False)
            table.add_column("rule file")
            table.add_column("title")
            table.add_column("reason")
            for r in refused:
                table.add_row(terminal_text(r.path), terminal_text(r.title or ""), terminal_text(r.reason))
            console.print(table)
            if len(reasons) > 1:
                console.print("by reason: " + "; ".join(f"{terminal_text(k)} ({v})" for k, v in reasons.most_common()))
        console.print(f"SQL back end: {len(ruleset.rules) - len(not_sql)} of {len(ruleset.rules)} loaded rules run on SQL "
                      "with the same answers" + (f"; {len(not_sql)} run on the Python back end only:" if not_sql else ""))
        if not_sql:
            table = Table(title="Not on the SQL back end", show_lines=False)
            table.add_column("rule file")
            table.add_column("title")
            table.add_column("reason")
            for i, reason in not_sql.items():
                info = ruleset.rules[i].info
                table.add_row(terminal_text(info.path or ""), terminal_text(info.title), terminal_text(reason))
            console.print(table)
    if strict and refused:
        sys.exit(1)

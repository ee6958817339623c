"""`svchunt coverage`: brief item → rules → ATT&CK technique → audit checks → tested on which sample."""

from __future__ import annotations

import sys

import click
import orjson


def collect_rules(rule_paths: list[str], builtin: bool) -> tuple[list, list]:
    from svchunt.correlate.load import load_correlations
    from svchunt.engine.hunt import HuntOptions, load_ruleset

    # The same rule set `hunt` would run with these options, so the table describes what hunts use.
    ruleset = load_ruleset(HuntOptions(paths=[], rule_paths=list(rule_paths), builtin=builtin))
    correlations, corr_refused = load_correlations(ruleset.correlation_docs, ruleset.infos)
    pairs = [(info, "detection") for info in ruleset.infos] + [(c.info, "correlation") for c in correlations]
    if builtin:
        # The stateful analytics of `hunt --state` (30-day history, fleet stacking) are built in too.
        from svchunt.correlate.baseline import NEW_SERVICE, RARE_IMAGE

        pairs += [(NEW_SERVICE, "baseline"), (RARE_IMAGE, "baseline")]
    return pairs, list(ruleset.refused) + list(corr_refused)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True), help="Extra rule files or folders.")
@click.option("--no-builtin", is_flag=True, help="Leave out the built-in content pack.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown (docs/coverage.md).")
@click.option("--navigator", "navigator_path", type=click.Path(dir_okay=False),
              help="Also write an ATT&CK Navigator layer of the techniques the loaded rules cover.")
def coverage(as_json: bool, rule_paths: tuple[str, ...], no_builtin: bool, markdown: bool,
             navigator_path: str | None) -> None:
    """Show which detection item each rule, correlation and audit check implements, and where it was tested.

    A rule listed for an item either claims it (its alerts assert that the item happened) or is a building
    block of it (marked "building block": it feeds a correlation or names a lead, never the verdict).
    Exits with status 1 when an item has neither a rule nor an audit check.
    """
    from svchunt.rules.coverage import build_coverage, unknown_covers

    pairs, refused = collect_rules(list(rule_paths), builtin=not no_builtin)
    rows = build_coverage(pairs)
    missing = [row.item for row in rows if not row.covered]
    typos = unknown_covers(info for info, _ in pairs)
    if navigator_path:
        from svchunt.outputs.navigator import coverage_layer, write_layer

        write_layer(coverage_layer([info for info, _ in pairs]), navigator_path)
    if as_json:
        doc = {
            "items": [row.to_dict() for row in rows],
            "uncovered": missing,
            "unknown_covers": typos,
            "refused": [{"path": r.path, "rule_id": r.rule_id, "reason": r.reason} for r in refused],
        }
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    elif markdown:
        click.echo(markdown_table(rows))
    else:
        _print_table(rows)
        for r in refused:
            click.echo(f"refused: {r.path} ({r.rule_id or '-'}): {r.reason}", err=True)
        for rule_id, bad in typos.items():
            click.echo(f"warning: rule {rule_id} covers unknown item(s): {', '.join(bad)}", err=True)
    if missing:
        click.echo(f"uncovered items: {', '.join(missing)}", err=True)
        sys.exit(1)


def _print_table(rows: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from svchunt.outputs.sanitize import terminal_text

    table = Table(title="svchunt coverage", show_lines=True)
    for col in ("Item", "Rules / correlations", "ATT&CK", "Audit checks", "Tested on"):
        table.add_column(col, overflow="fold")
    for row in rows:
        rules = "\n".join(terminal_text(_rule_label(r, short=True)) for r in row.rules)
        table.add_row(
            f"{row.item}\n{row.title}" if row.title else row.item,
            rules or "-",
            ", ".join(row.techniques) or "-",
            "\n".join(row.audit_checks) or "-",
            "\n".join(row.tested_on) or "-",
        )
    Console().print(table)


def _rule_label(rule: dict, short: bool = False) -> str:
    name = rule["name"] or rule["id"]
    tags = []
    if rule["kind"] == "correlation":
        tags.append("corr" if short else "correlation")
    elif rule["kind"] == "baseline":
        tags.append("baseline")
    if rule.get("role") == "contributes":
        tags.append("building block")
    label = name if short else f"`{name}`"
    return f"{label} ({', '.join(tags)})" if tags else label


def markdown_table(rows: list) -> str:
    out = [
        "| Item | Title | Rules / correlations | ATT&CK | Audit checks | Tested on |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        # claiming rules first: they are what an analyst sees as the verdict
        ordered = sorted(row.rules, key=lambda r: r.get("role") != "claims")
        rules = "<br>".join(_rule_label(r) for r in ordered)
        out.append(
            "| {} | {} | {} | {} | {} | {} |".format(
                row.item,
                row.title.replace("|", "/"),
                rules or "— (audit only)",
                ", ".join(row.techniques) or "-",
                "<br>".join(row.audit_checks) or "-",
                "<br>".join(s.replace("|", "/") for s in row.tested_on) or "-",
            )
        )
    return "\n".join(out)

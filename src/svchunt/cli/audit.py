"""`svchunt audit`: services and drivers that look planted, hidden or exploitable in a host's registry."""

from __future__ import annotations

import sys

import click

from svchunt.audit.findings import SEVERITIES


@click.command("audit")
@click.option("--system", "system", type=click.Path(exists=True, dir_okay=False), help="Offline SYSTEM hive.")
@click.option("--software", type=click.Path(exists=True, dir_okay=False), help="Offline SOFTWARE hive (ASR rules).")
@click.option("--root", type=click.Path(exists=True, file_okay=False),
              help="Mounted or collected Windows volume: resolve, hash and signature-check service files.")
@click.option("--live", is_flag=True, help="Read the local registry and files (Windows only).")
@click.option("--loldrivers", type=click.Path(dir_okay=False),
              help="LOLDrivers drivers.csv (default ../shared/data/loldrivers/drivers.csv when present).")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False), help="Earlier audit JSON to diff against.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write findings and inventory as JSON.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Write the findings as a self-contained HTML report.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="low", show_default=True,
              help="Lowest severity shown in the terminal table (the JSON has everything).")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit with status 3 when a finding at or above this severity exists.")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
              help="Extra Sigma rules (file or folder) run on each service's install event, as hunt --rules.")
@click.option("--allowlist", "allowlists", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Known-good lists (YAML NAME: [values]) for the hunt rules, as hunt --allowlist.")
@click.option("--no-attribution", is_flag=True,
              help="Do not run hunt's rules on the services' install events (no tool attribution).")
@click.option("--no-cache", is_flag=True, help="Compile the rules afresh instead of using the rule cache.")
def audit(system: str | None, software: str | None, root: str | None, live: bool, loldrivers: str | None,
          baseline: str | None, json_out: str | None, html_out: str | None, min_severity: str,
          fail_on: str | None, rule_paths: tuple[str, ...], allowlists: tuple[str, ...], no_attribution: bool,
          no_cache: bool) -> None:
    """Audit a host's service configuration: persistence, hidden services, weak ACLs, risky drivers.

    Each service also becomes the install event (System 7045) it would have logged and runs through hunt's
    rules, so a planted service is named by the same rules (and claims) a hunt over the logs would use.
    """
    from svchunt.audit.baseline import BaselineError
    from svchunt.audit.findings import SEVERITY_RANK
    from svchunt.audit.hive import HiveError
    from svchunt.audit.loldrivers import default_path
    from svchunt.audit.report import print_report, write_json
    from svchunt.audit.runner import AuditOptions, run_audit
    from svchunt.rules.allowlists import AllowlistError

    if live and system:
        raise click.UsageError("--live and --system are exclusive")
    if not live and not system:
        raise click.UsageError("give --system HIVE (offline) or --live (on Windows)")
    if live and sys.platform != "win32":
        raise click.UsageError("--live reads the local Windows registry; on this platform use --system HIVE")
    if loldrivers is None and default_path().exists():
        loldrivers = str(default_path())
    try:
        result = run_audit(AuditOptions(system=system, software=software, root=root, live=live,
                                        loldrivers=loldrivers, baseline=baseline, attribution=not no_attribution,
                                        rule_paths=list(rule_paths), allowlists=list(allowlists),
                                        use_cache=not no_cache))
    except (HiveError, BaselineError, AllowlistError) as exc:
        raise click.ClickException(str(exc)) from exc
    print_report(result, min_severity=min_severity)
    if json_out:
        write_json(result, json_out)
        click.echo(f"JSON written to {json_out}")
    if html_out:
        from svchunt.audit.report import audit_to_dict
        from svchunt.outputs.html_report import write_html

        write_html(html_out, audit=audit_to_dict(result), title="svchunt audit")
        click.echo(f"HTML report written to {html_out}")
    if fail_on and any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on] for f in result.findings):
        sys.exit(3)

"""Check 4: recovery (failure) actions that run a program (brief §30)."""

from __future__ import annotations

from svchunt.audit.checks_paths import shell_markers
from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.paths import resolve
from svchunt.audit.stock import StockList, load_stock

COVERS = ("SEED.recovery-command", "DS0019.modification", "M1047")


def check_recovery(entry: ServiceEntry, stock: StockList | None = None) -> list[Finding]:
    command = (entry.failure_command or "").strip()
    if not command:
        return []
    program = resolve(command)
    stock_entry = (stock or load_stock()).get(entry.name, entry.type)
    if stock_entry is not None and (program.path or "").lower() in stock_entry.failure_programs:
        return []  # the program Windows itself sets for this service (WinDefend's mrt.exe, MSiSCSI's placeholder)
    runs = [a for a in entry.failure_actions if a.type == 3]
    markers = shell_markers(command)
    if runs:
        # A Windows binary without a shell is how Windows' own services recover (Spectrum, MRT for Defender).
        severity = "high" if markers or program.location != "system" else "low"
        why = (f"failure action {len(runs)} of {len(entry.failure_actions)} is 'run command' "
               f"(after {runs[0].delay_ms} ms): the SCM runs FailureCommand when the service stops unexpectedly")
    else:
        severity = "low"
        why = "FailureCommand is set but no failure action runs it (dormant until FailureActions is changed)"
    if markers:
        why += "; the command uses " + ", ".join(markers)
    return [Finding("recovery-command", severity, "recovery action runs a program", COVERS, entry.name,
                    entry.key_path, "FailureCommand", command, why, [entry.control_set],
                    {"failure_actions": [a.name for a in entry.failure_actions]})]

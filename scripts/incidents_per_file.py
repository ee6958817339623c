"""Incidents per input file: hunt each file on its own (built-in content) and list the incidents it gives.

    .venv/bin/python scripts/incidents_per_file.py [PATH ...]   (default: ../shared/data/evtx-attack-samples)

One line per file with alerts (alerts → incidents), then each incident: level, host, alerts, title.
Ends with totals. Used to check that one tool run on one host is one incident (docs/incidents.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from svchunt.correlate.incidents import build_incidents
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.outputs.sanitize import plain_text
from svchunt.sources import iter_inputs

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "evtx-attack-samples"


def main(argv: list[str]) -> int:
    roots = argv or [str(DEFAULT)]
    items = list(iter_inputs(roots))
    files = sorted(item.path for item in items if hasattr(item, "path"))
    for problem in (item for item in items if not hasattr(item, "path")):
        print(f"not read: {plain_text(problem.source)}: {plain_text(problem.reason)}")
    if not files:
        print(f"no input files under {', '.join(roots)}")
        return 1
    ruleset = load_ruleset(HuntOptions(paths=[]))
    with_alerts = total_alerts = total_incidents = 0
    for path in files:
        result = run_hunt(HuntOptions(paths=[path], workers=1), ruleset)
        if not result.alerts:
            continue
        incidents = build_incidents(result.alerts)
        with_alerts += 1
        total_alerts += len(result.alerts)
        total_incidents += len(incidents)
        hosts = len({i.host.lower() for i in incidents})
        print(f"{plain_text(path)}: {len(result.alerts)} alerts -> {len(incidents)} incidents on {hosts} host(s)")
        for inc in incidents:
            print(f"    {inc.level:<13} {plain_text(inc.host):<32} {len(inc.alert_ids):>3}  {plain_text(inc.title)}")
    print(f"{len(files)} files, {with_alerts} with alerts: {total_alerts} alerts -> {total_incidents} incidents")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

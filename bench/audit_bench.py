"""Time `svchunt audit` on each real SYSTEM hive (target: under 5 s each). Not a unit test.

    .venv/bin/python bench/audit_bench.py [HIVE_DIR] [--before OLD_SRC] [--pairs N]

For each hive, N alternating pairs of fresh processes (the machine is shared and noisy: compare the ratio of a
pair, not absolute times) run what `svchunt audit --system HIVE` runs:
- `without`: the audit with attribution off (`--no-attribution`), or with `--before OLD_SRC` the audit of another
  source tree (e.g. /work/main/src, before issue 14);
- `with`: this tree's audit, hunt's rules included.
Each process reports its wall time (interpreter, imports, rule set from the compile cache, audit) and the audit's
own time. The Detector's start-up is also timed alone: cold (empty rule cache) and warm (cached).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 5.0
HIVES = ("SYSTEM", "SYSTEM_2", "SYSTEM_WIN_10_1709", "SYSTEM_B", "corrupted_system_hive")

# Run in a fresh interpreter with `src` first on sys.path; prints one JSON line.
_AUDIT = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from svchunt.audit.runner import AuditOptions, run_audit
options = dict(system=sys.argv[2], loldrivers=sys.argv[3] or None)
if sys.argv[4] == "off":
    options["attribution"] = False
result = run_audit(AuditOptions(**options))
low = sum(1 for f in result.findings if f.severity != "info")
print(json.dumps({"wall": time.perf_counter() - t0, "audit": result.seconds, "findings": len(result.findings),
                  "low_up": low, "services": len({e.name.lower() for e in result.inventory})}))
"""
_STARTUP = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from svchunt.audit.attribution import RuleSource, detector_for
detector_for(RuleSource())
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _startup(src: str, env: dict[str, str]) -> tuple[float, float]:
    """Cold: the cache directory is empty, every built-in rule is compiled. Warm: the same directory afterwards."""
    cold = _run(_STARTUP, src, env=env)["seconds"]
    warm = statistics.median(_run(_STARTUP, src, env=env)["seconds"] for _ in range(3))
    return cold, warm


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hive_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "hives")
    parser.add_argument("--before", help="source tree (its `src`) to compare with, e.g. /work/main/src")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    src = str(REPO / "src")
    sys.path.insert(0, src)
    from svchunt.audit.loldrivers import default_path

    lol = str(default_path()) if default_path().exists() else ""
    # A private rule cache holding only the built-in rules: a user's cache also holds whatever they hunted with
    # (all of SigmaHQ: a few MB more to unpickle at start-up).
    cache = tempfile.TemporaryDirectory(prefix="svchunt-bench-cache-")
    env = {**os.environ, "SVCHUNT_CACHE_DIR": cache.name}
    cold, warm = _startup(src, env)
    print(f"Detector start-up (rule set + Detector, in a fresh process incl. imports): cold cache {cold:.2f} s, "
          f"cached {warm:.2f} s")
    baseline_label = f"before ({args.before})" if args.before else "without attribution"
    print(f"{'hive':24} {'services':>8}  {baseline_label:>22} -> with      ratio (pairs)      findings low+ before->after")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in HIVES:
            for suffix in ("", ".LOG1", ".LOG2"):
                source = args.hive_dir / f"{name}{suffix}.xz"
                if source.exists():
                    (Path(tmp) / f"{name}{suffix}").write_bytes(lzma.decompress(source.read_bytes()))
            path = str(Path(tmp) / name)
            before_src, mode = (args.before, "on") if args.before else (src, "off")
            pairs = []
            for _ in range(args.pairs):
                old = _run(_AUDIT, before_src, path, lol, mode, env=env)
                new = _run(_AUDIT, src, path, lol, "on", env=env)
                pairs.append((old, new))
            old_wall = statistics.median(o["wall"] for o, _ in pairs)
            new_wall = statistics.median(n["wall"] for _, n in pairs)
            ratios = [n["wall"] / o["wall"] for o, n in pairs]
            ok = new_wall < TARGET_SECONDS
            failed += not ok
            old, new = pairs[0]
            print(f"{name:24} {new['services']:8}  {old_wall:20.2f} s -> {new_wall:5.2f} s  {statistics.median(ratios):5.2f}x "
                  f"({', '.join(f'{r:.2f}' for r in ratios)})  {old['low_up']:4} -> {new['low_up']:3}  "
                  f"(audit alone {statistics.median(n['audit'] for _, n in pairs):.2f} s) {'OK' if ok else 'SLOW'}")
    cache.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

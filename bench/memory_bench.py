#!/usr/bin/env python3
"""Memory of a big hunt (issue 13): one JSON-lines file of ~1M events, all SigmaHQ windows rules.

Builds (once, cached in --work) the EVTX attack samples as flat NXLog-shaped JSON lines, repeated to at
least --lines lines in one file, then runs `svchunt hunt --rules <sigma>/rules/windows -q --jsonl OUT FILE`
and reads every process's own peak (VmHWM in /proc, sampled every 0.1 s: the parent and each worker
apart; the kernel's getrusage would give only the largest one). Reports wall time, CPU ÷ wall (one big file
must keep both cores busy), alerts, and a digest of the JSONL so that two versions can be compared.

Target: the largest process peaks at <= 300 MiB.

Usage: python bench/memory_bench.py [--lines 1000000] [--shared ../shared/data] [--work /tmp/svchunt-membench]
       [--runs 1] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_input(samples: Path, work: Path, lines: int) -> Path:
    """The samples as flat JSON lines, repeated to at least `lines` lines (cached by size)."""
    work.mkdir(parents=True, exist_ok=True)
    once = work / "samples_flat.jsonl"
    if not once.exists():
        subprocess.run([sys.executable, str(REPO / "scripts" / "evtx_to_jsonl.py"), "--shape", "flat", str(once),
                        str(samples)], check=True, stderr=subprocess.DEVNULL)  # fmt: skip
    per_copy = sum(1 for _ in once.open("rb"))
    copies = -(-lines // per_copy)
    big = work / f"big_{copies}x.jsonl"
    if not big.exists():
        data = once.read_bytes()
        with big.open("wb") as out:
            for _ in range(copies):
                out.write(data)
    return big


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for row in fh:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def run_hunt(big: Path, rules: Path, out: Path, workers: int | None) -> dict:
    cmd = [str(REPO / ".venv" / "bin" / "svchunt") if (REPO / ".venv" / "bin" / "svchunt").exists() else "svchunt",
           "hunt", "--rules", str(rules), "-q", "--jsonl", str(out), str(big)]  # fmt: skip
    if workers:
        cmd += ["--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in [proc.pid, *_children(proc.pid)]:
            hwm = _hwm_kib(pid)
            if hwm is not None:
                peaks[pid] = max(peaks.get(pid, 0), hwm)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"hunt exited {proc.returncode}")
    parent = peaks.pop(proc.pid, 0)
    # Streamed: a child forked from this process counts this process's memory until it execs.
    digest, alerts = hashlib.sha256(), 0
    with out.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            alerts += block.count(b"\n")
    return {
        "wall_s": round(wall, 1),
        "cpu_per_wall": round(cpu / wall, 2),
        "parent_peak_mib": round(parent / 1024),
        "worker_peak_mib": round(max(peaks.values(), default=0) / 1024),
        "largest_process_mib": round(max([parent, *peaks.values()]) / 1024),
        "kernel_maxrss_mib": round(after.ru_maxrss / 1024),  # the largest of this script's children so far
        "alerts": alerts,
        "jsonl_sha256": digest.hexdigest()[:16],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--work", default="/tmp/svchunt-membench")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workers", type=int)
    args = ap.parse_args()
    shared = Path(args.shared)
    samples, rules = shared / "evtx-attack-samples", shared / "sigma" / "rules" / "windows"
    if not samples.is_dir() or not rules.is_dir():
        raise SystemExit(f"needs {samples} and {rules}")
    big = build_input(samples, Path(args.work), args.lines)
    lines = sum(1 for _ in big.open("rb"))
    print(f"input: {big} ({lines:,} lines, {os.path.getsize(big) / 2**20:.0f} MiB)", flush=True)
    for k in range(args.runs):
        result = run_hunt(big, rules, Path(args.work) / "alerts.jsonl", args.workers)
        print(json.dumps({"run": k + 1, **result}), flush=True)


if __name__ == "__main__":
    main()

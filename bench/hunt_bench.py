#!/usr/bin/env python3
"""Hunt benchmark (issue 2): records/s against the parse floor, steady state, and peak memory.

Builds a corpus of the EVTX attack samples repeated N times (hard links in a temp folder), then in
one run measures:
  (a) the parse floor: `evtx` records_json + orjson.loads over the same files, one process;
  (b) `svchunt hunt` with all SigmaHQ windows rules;
  (c) `svchunt hunt` with the SigmaHQ rules tagged attack.t1543.003 / attack.t1569.002;
  (d) `svchunt hunt` with the built-in content (default run, correlations included);
each in steady state: records ÷ (wall of the N× run − wall of a run over one small file with the
same rules), so start-up is measured apart. Peak RSS of each hunt run (parent + workers) is read
from the kernel (getrusage of children), for the 5× and 10× corpus, to show it does not grow.

The machine is shared and noisy: each configuration is measured as R alternating pairs (parse floor,
hunt), each hunt against the mean of the floor measured just before and just after it, and the median
of the per-pair ratios is reported, with the spread.

Usage: python bench/hunt_bench.py [--repeat 10] [--pairs 3] [--shared ../shared/data] [--workers N] [--configs bcd]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_corpus(samples: Path, dest: Path, repeat: int) -> list[Path]:
    files = sorted(p for p in samples.rglob("*.evtx"))
    out = []
    for i in range(repeat):
        for j, f in enumerate(files):
            target = dest / f"r{i:02d}" / f"{j:04d}_{f.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            # Real copies: the input walker reads a file only once per inode, so hard links would
            # silently shrink the corpus.
            shutil.copyfile(f, target)
            out.append(target)
    return out


def parse_floor(files: list[Path]) -> tuple[int, float]:
    import evtx
    import orjson

    n = 0
    t = time.perf_counter()
    for f in files:
        for rec in evtx.PyEvtxParser(str(f)).records_json():
            orjson.loads(rec["data"])
            n += 1
    return n, time.perf_counter() - t


def tagged_rules(rules_dir: Path, dest: Path, tags: tuple[str, ...]) -> int:
    """Copy (into a temp folder, not the repo) the SigmaHQ rules carrying any of `tags`."""
    count = 0
    for f in rules_dir.rglob("*.yml"):
        text = f.read_text(encoding="utf-8", errors="replace").lower()
        if any(f"- {t}\n" in text for t in tags):
            shutil.copyfile(f, dest / f.name)
            count += 1
    return count


def run_hunt(paths: list[str], rule_args: list[str], workers: int | None, cache: Path) -> tuple[float, int, dict]:
    """Wall seconds, peak RSS (KiB, max over the process tree) and the run's counts."""
    summary = cache.parent / "summary.json"
    cmd = [sys.executable, "-m", "svchunt.cli.main", "hunt", *paths, *rule_args, "--quiet", "--jsonl", os.devnull,
           "--summary-json", str(summary)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "SVCHUNT_CACHE_DIR": str(cache)}
    code = (
        "import resource,subprocess,sys,time,json;"
        "t=time.perf_counter();p=subprocess.run(sys.argv[1:]);w=time.perf_counter()-t;"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps({'wall':w,'rss':r,'rc':p.returncode}))"
    )
    out = subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True)
    import json

    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    data = json.loads(line)
    if data["rc"] != 0:
        raise SystemExit(f"hunt failed ({data['rc']}): {out.stderr[-2000:]}")
    data.update(json.loads(summary.read_text()))
    return data["wall"], data["rss"], data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--pairs", type=int, default=3, help="alternating (floor, hunt) measurements per config")
    ap.add_argument("--configs", default="bcd", help="which hunt configurations to run, e.g. d for the default hunt only")
    args = ap.parse_args()
    shared = Path(args.shared)
    samples = shared / "evtx-attack-samples"
    sigma_windows = shared / "sigma" / "rules" / "windows"
    if not samples.is_dir() or not sigma_windows.is_dir():
        raise SystemExit(f"shared data not found under {shared}")

    with tempfile.TemporaryDirectory(prefix="svchunt-bench-") as tmp:
        tmpdir = Path(tmp)
        cache = tmpdir / "cache"
        corpus = tmpdir / "corpus"
        files = build_corpus(samples, corpus, args.repeat)
        half = tmpdir / "corpus_half"
        build_corpus(samples, half, max(1, args.repeat // 2))
        small = min(files, key=lambda p: p.stat().st_size)
        tagged = tmpdir / "tagged"
        tagged.mkdir()
        n_tagged = tagged_rules(sigma_windows, tagged, ("attack.t1543.003", "attack.t1569.002"))

        n, floor_wall = parse_floor(files)
        print(f"corpus: {len(files)} files, {n} records ({args.repeat}x the EVTX attack samples)")
        print(f"(a) parse floor (evtx + orjson, 1 process): {n / floor_wall:,.0f} records/s ({floor_wall:.2f} s)")

        configs = [
            ("(b) SigmaHQ windows rules", ["--rules", str(sigma_windows), "--no-builtin"]),
            (f"(c) SigmaHQ T1543.003/T1569.002 rules ({n_tagged})", ["--rules", str(tagged), "--no-builtin"]),
            ("(d) built-in content (default hunt)", []),
        ]
        for label, rule_args in configs:
            if label[1] not in args.configs:
                continue
            # The first run compiles the rules (start-up uncached); later ones hit the cache.
            cold, _, _ = run_hunt([str(small)], rule_args, args.workers, cache)
            ratios, rates, warms = [], [], []
            _, floor_wall = parse_floor(files)
            for _ in range(args.pairs):
                floor_before = floor_wall
                warm, _, _ = run_hunt([str(small)], rule_args, args.workers, cache)
                wall, rss, info = run_hunt([str(corpus)], rule_args, args.workers, cache)
                # the floor measured on both sides of the hunt (the next pair's "before" is this "after"):
                # this shared machine drifts, and a ratio against one side only picks up the drift
                _, floor_wall = parse_floor(files)
                floor_mean = (floor_before + floor_wall) / 2
                if info["records_read"] != n:
                    raise SystemExit(f"hunt read {info['records_read']} records, the parse floor {n}: not comparable")
                steady = n / max(wall - warm, 1e-9)
                rates.append(steady)
                warms.append(warm)
                ratios.append(steady / (n / floor_mean))
            _, rss_half, _ = run_hunt([str(half)], rule_args, args.workers, cache)
            print(
                f"{label}: {statistics.median(rates):,.0f} records/s steady state = "
                f"{statistics.median(ratios):.0%} of the parse floor (pairs: {', '.join(f'{r:.0%}' for r in ratios)}) | "
                f"{info['alerts']} alerts | start-up {statistics.median(warms):.2f} s (first, uncached: {cold:.2f} s) | "
                f"peak RSS {rss / 1024:.0f} MiB at {args.repeat}x, {rss_half / 1024:.0f} MiB at "
                f"{max(1, args.repeat // 2)}x"
            )
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Spark benchmark (issue 11): embedded engine vs `--engine spark` local[1] / local[2] on a Parquet dataset.

Builds, in a temp folder, a Parquet dataset of the EVTX attack samples repeated K times with distinct
provenance (`source` gets `#copyNNN`, so every event is its own record and alerts do not collapse):
K = 122 gives 1,007,110 events. A 1x dataset (the samples once) is built beside it. Then, as R alternating
rounds (the engine order rotates each round), it runs the real command line on both datasets:
  `svchunt hunt DATASET [--engine spark --spark-master local[N]] --jsonl F --summary-json S`
and reports for each engine the median wall time and records/s end to end (start-up included) and in
steady state = (records of K x - records of 1 x) / (wall of K x - wall of 1 x); the fixed cost is the
1x wall minus its records at the steady rate. From those it computes the crossover: the input size at
which the Spark configuration's wall time equals the embedded engine's (none when Spark's steady rate is
not higher on this machine). It also checks that every engine wrote the same alerts (JSONL hash).

Then one in-process Spark local[2] run measures the driver side: rows and bytes of the collected signals
and the seconds spent turning them into alerts, i.e. what collecting costs per matched event.

The machine is shared and noisy: compare the medians and the per-round ratios, not single runs.

Usage: python bench/spark_bench.py [--copies 122] [--rounds 3] [--rules PATH] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = {
    "embedded": [],
    "spark local[1]": ["--engine", "spark", "--spark-master", "local[1]"],
    "spark local[2]": ["--engine", "spark", "--spark-master", "local[2]"],
}


def build_dataset(samples: Path, out: Path, copies: int) -> int:
    from svchunt.model import Event
    from svchunt.sources import iter_events
    from svchunt.spark.dataset import DatasetWriter, WriteStats

    events = [e for e in iter_events([str(samples)]) if isinstance(e, Event)]
    stats = WriteStats()
    writer = DatasetWriter(str(out), stats)
    for k in range(copies):
        batch = events if copies == 1 else [dataclasses.replace(e, source=f"{e.source}#copy{k:03d}") for e in events]
        for start in range(0, len(batch), 8192):
            writer.add(batch[start : start + 8192])
    writer.close()
    return stats.records_written


def run(dataset: Path, engine: str, rule_args: list[str], tmp: Path) -> dict:
    jsonl, summary = tmp / "alerts.jsonl", tmp / "summary.json"
    cmd = [sys.executable, "-m", "svchunt.cli.main", "hunt", str(dataset), *rule_args, *ENGINES[engine],
           "--quiet", "--jsonl", str(jsonl), "--summary-json", str(summary)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed ({done.returncode}): {done.stderr[-3000:]}")
    info = json.loads(summary.read_text())
    info["wall"] = wall
    info["digest"] = hashlib.sha256(jsonl.read_bytes()).hexdigest()[:16]
    return info


def driver_side(dataset: Path, rule_paths: list[str], builtin: bool) -> dict:
    """Rows/bytes collected to the driver and the seconds from collected rows to alerts (in-process)."""
    from svchunt.engine.hunt import HuntOptions, load_ruleset
    from svchunt.spark import driver
    from svchunt.spark.session import get_session

    options = HuntOptions(paths=[str(dataset)], rule_paths=rule_paths, builtin=builtin)
    ruleset = load_ruleset(options)
    session = get_session("local[2]")
    seen: dict = {}
    collect, result = driver._collect, driver._result

    def timed_collect(frames):
        t = time.perf_counter()
        table = collect(frames)
        seen.update(collect_s=time.perf_counter() - t, rows=table.num_rows, bytes=table.nbytes)
        return table

    def timed_result(*args):
        t = time.perf_counter()
        out = result(*args)
        seen.update(driver_s=time.perf_counter() - t)
        return out

    driver._collect, driver._result = timed_collect, timed_result
    try:
        res = driver.run_spark_hunt(options, ruleset, session=session)
    finally:
        driver._collect, driver._result = collect, result
        session.stop()
    seen.update(matched=res.stats.records_matched, alerts=len(res.alerts))
    return seen


def steady(big: dict, small: dict) -> tuple[float, float]:
    """(records/s in steady state, fixed seconds) from a K x and a 1 x run; nan when noise hides the slope."""
    extra = big["wall"] - small["wall"]
    if extra <= 0:
        return float("nan"), float("nan")
    rate = (big["records_read"] - small["records_read"]) / extra
    return rate, small["wall"] - small["records_read"] / rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=122, help="copies of the samples in the big dataset")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (each runs every engine, both sizes)")
    ap.add_argument("--rules", action="append", default=[], help="Sigma rules instead of the built-in content")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--keep", help="build the datasets in this folder (reused when present) instead of a temp one")
    args = ap.parse_args()
    samples = Path(args.shared) / "evtx-attack-samples"
    if not samples.is_dir():
        raise SystemExit(f"shared data not found under {args.shared}")
    rule_args = [a for r in args.rules for a in ("--rules", r)] + (["--no-builtin"] if args.rules else [])
    label = "rules: " + (", ".join(args.rules) if args.rules else "built-in content (default hunt)")

    with tempfile.TemporaryDirectory(prefix="svchunt-spark-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        big, small = root / f"lake-{args.copies}x", root / "lake-1x"
        t = time.perf_counter()
        n_big = build_dataset(samples, big, args.copies) if not big.exists() else None
        n_small = build_dataset(samples, small, 1) if not small.exists() else None
        print(f"datasets: {n_big or 'reused'} events ({args.copies}x), {n_small or 'reused'} (1x); "
              f"built in {time.perf_counter() - t:.1f} s; {label}")  # fmt: skip
        print(f"machine: {os.cpu_count()} cores, shared with other developers; python {sys.version.split()[0]}")

        results: dict[str, dict[str, list[dict]]] = {e: {"big": [], "small": []} for e in ENGINES}
        names = list(ENGINES)
        work = Path(tmp) / "out"
        work.mkdir()
        for round_no in range(args.rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for engine in order:
                for size, dataset in (("small", small), ("big", big)):
                    info = run(dataset, engine, rule_args, work)
                    results[engine][size].append(info)
                    print(f"  round {round_no + 1} {engine:15s} {size:5s}: {info['wall']:7.2f} s, "
                          f"{info['records_read']:,} records, {info['alerts']} alerts, jsonl {info['digest']}",
                          flush=True)  # fmt: skip

        digests = {info["digest"] for e in ENGINES for info in results[e]["big"]}
        print(f"same alerts on every engine: {'yes' if len(digests) == 1 else 'NO: ' + ', '.join(sorted(digests))}")
        summary: dict[str, dict] = {}
        for engine in names:
            bigs, smalls = results[engine]["big"], results[engine]["small"]
            rates = [steady(b, s) for b, s in zip(bigs, smalls, strict=True)]
            summary[engine] = {
                "wall": statistics.median(b["wall"] for b in bigs),
                "records": bigs[0]["records_read"],
                "steady": statistics.median(r for r, _ in rates),
                "fixed": statistics.median(f for _, f in rates),
                "small_wall": statistics.median(s["wall"] for s in smalls),
            }
        base = summary["embedded"]
        print(f"\n| engine | wall {args.copies}x (median) | records/s end to end | records/s steady | fixed cost | "
              "wall 1x (8k events) | vs embedded (per round) |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---|")
        for engine in names:
            s = summary[engine]
            ratios = [b["wall"] / e["wall"] for b, e in zip(results[engine]["big"], results["embedded"]["big"], strict=True)]
            print(f"| {engine} | {s['wall']:.1f} s | {s['records'] / s['wall']:,.0f} | {s['steady']:,.0f} | "
                  f"{s['fixed']:.1f} s | {s['small_wall']:.1f} s | {', '.join(f'{r:.2f}x' for r in ratios)} |")  # fmt: skip
        for engine in names[1:]:
            s = summary[engine]
            per_e, per_s = 1 / base["steady"], 1 / s["steady"]
            if per_s != per_s or per_e != per_e:  # nan: the K x run was not measurably slower than 1 x
                print(f"crossover {engine}: not measurable at {args.copies}x (use more copies)")
            elif per_s >= per_e:
                print(f"crossover {engine}: none on this machine (steady {s['steady']:,.0f} vs embedded "
                      f"{base['steady']:,.0f} records/s; Spark's fixed cost {s['fixed']:.1f} s is never won back)")  # fmt: skip
            else:
                n_star = (s["fixed"] - base["fixed"]) / (per_e - per_s)
                print(f"crossover {engine}: ~{n_star:,.0f} records")

        seen = driver_side(big, args.rules, not args.rules)
        per_row = seen["bytes"] / max(seen["rows"], 1)
        print(f"\ndriver side (local[2], {seen['matched']:,} matched events, {seen['alerts']:,} alerts): "
              f"collected {seen['rows']:,} rows = {seen['bytes'] / 2**20:.1f} MiB Arrow ({per_row:,.0f} B per row) "
              f"in {seen['collect_s']:.1f} s; rows -> alerts on the driver {seen['driver_s']:.1f} s "
              f"({seen['driver_s'] / max(seen['rows'], 1) * 1e6:.0f} µs per row)")  # fmt: skip


if __name__ == "__main__":
    main()

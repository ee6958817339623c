#!/usr/bin/env python3
"""Latency and load of `svchunt watch`: a local producer appends synthetic events to a followed JSON-lines
file at a fixed rate; the bench tails the alert sink and measures event written -> alert in the sink.

    python bench/watch_bench.py --rate 20000 --seconds 60          # acceptance: p99 < 2 s, memory flat
    python bench/watch_bench.py --find-max --seconds 20             # highest sustained rate on this machine

Each event carries `BenchWritten` (time.time() when the producer wrote it); detection alerts copy the event's
fields, so the latency of every detection alert is known. "Sustained" means: the watcher read everything
within 2 s of the producer stopping and the p99 latency stayed under 2 s. Memory is the watcher's RSS,
sampled every second (first sample after 5 s, to leave start-up out).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from svchunt.watch.synthetic import event


def rss_mib(pid: int) -> float:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def produce(path: Path, rate: int, seconds: float, done: threading.Event, counter: list[int], every: int) -> None:
    step_ms = 1000 / rate
    base = datetime.now(UTC)
    tick = 0.01
    per_tick = rate * tick
    start = time.time()
    i = 0
    owed = 0.0
    with path.open("ab") as fh:
        while time.time() - start < seconds:
            owed += per_tick
            n = int(owed)
            owed -= n
            now = time.time()
            rows = []
            for _ in range(n):
                ev = event(i, step_ms=step_ms, base=base, every=every)  # type: ignore[arg-type]
                ev["BenchWritten"] = now
                rows.append(orjson.dumps(ev))
                i += 1
            fh.write(b"\n".join(rows) + b"\n" if rows else b"")
            fh.flush()
            counter[0] = i
            sleep = start + (i / rate) - time.time()
            if sleep > 0:
                time.sleep(sleep)
    done.set()


def run(rate: int, seconds: float, workdir: Path, every: int = 5000, quiet: bool = False) -> dict:
    events = workdir / f"events_{rate}.jsonl"
    alerts = workdir / f"alerts_{rate}.jsonl"
    state = workdir / f"state_{rate}.db"
    events.touch()
    cmd = [sys.executable, "-m", "svchunt.cli.main", "watch", str(events), "--jsonl", str(alerts), "--state",
           str(state), "--lateness", "60", "--stats", "--stats-interval", "5", "-q"]
    err = (workdir / f"watch_{rate}.log").open("wb")
    proc = subprocess.Popen(cmd, stderr=err)
    time.sleep(2.0)  # start-up (rule load) is not part of the measurement
    done = threading.Event()
    counter = [0]
    producer = threading.Thread(target=produce, args=(events, rate, seconds, done, counter, every), daemon=True)
    started = time.time()
    producer.start()
    latencies: list[float] = []
    memory: list[tuple[float, float]] = []
    offset = 0
    buf = b""
    last_mem = 0.0
    written_total = 0
    drained_at = None
    while True:
        now = time.time()
        if alerts.exists():
            with alerts.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
            offset += len(data)
            buf += data
            *rows, buf = buf.split(b"\n")
            seen = time.time()
            for row in rows:
                alert = orjson.loads(row)
                written = alert.get("fields", {}).get("BenchWritten")
                if alert.get("kind") == "detection" and written is not None:
                    latencies.append(seen - written)
        if now - last_mem >= 1.0:
            last_mem = now
            if now - started >= 5:
                memory.append((now - started, rss_mib(proc.pid)))
        if done.is_set():
            written_total = counter[0]
            backlog = events.stat().st_size - _committed_offset(state, str(events))
            if backlog <= 0 and drained_at is None:
                drained_at = now
            if drained_at is not None and now - drained_at > 2.5 or now - started > seconds + 60:
                break
        time.sleep(0.05)
    proc.terminate()
    proc.wait(30)
    err.close()
    latencies.sort()
    n = len(latencies)
    result = {
        "rate_target": rate,
        "seconds": seconds,
        "events_written": written_total,
        "rate_achieved": round(written_total / seconds),
        "alerts_measured": n,
        "p50_s": round(latencies[n // 2], 3) if n else None,
        "p99_s": round(latencies[min(n - 1, int(n * 0.99))], 3) if n else None,
        "max_s": round(latencies[-1], 3) if n else None,
        "drained_within_s": round(drained_at - (started + seconds), 2) if drained_at else None,
        "rss_mib_first": round(memory[0][1], 1) if memory else None,
        "rss_mib_last": round(memory[-1][1], 1) if memory else None,
        "rss_mib_max": round(max(m for _, m in memory), 1) if memory else None,
    }
    result["sustained"] = bool(
        n and result["p99_s"] < 2.0 and drained_at is not None and drained_at - (started + seconds) < 2.0
        and result["rate_achieved"] >= 0.95 * rate
    )
    if not quiet:
        print(orjson.dumps(result).decode(), flush=True)
    return result


def _committed_offset(state: Path, path: str) -> int:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
        row = con.execute("SELECT value FROM kv WHERE key = ?", ("pos:file:" + path,)).fetchone()
        con.close()
    except sqlite3.Error:
        return 0
    return orjson.loads(row[0])["offset"] if row else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=int, default=5000,
                        help="two service installs per EVERY events (real streams have few; each one is buffered "
                        "5 min by the burst correlation)")
    parser.add_argument("--find-max", action="store_true", help="step the rate up until it is not sustained")
    parser.add_argument("--workdir", help="keep files here (default: a temporary folder)")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.find_max:
            result = run(args.rate, args.seconds, workdir, args.every)
            return 0 if result["sustained"] else 1
        best = None
        rate = args.rate
        while True:
            result = run(rate, args.seconds, workdir, args.every)
            if not result["sustained"]:
                break
            best = rate
            rate += 5000
        print(f"highest sustained rate: {best} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Records per second: the parse floor (evtx + orjson) against svchunt's reader (`iter_events`).

    .venv/bin/python bench/parse_floor.py [--repeat 5] [--threads N] [paths...]

Default input: the EVTX files of ../shared/data/evtx-attack-samples (or $SVCHUNT_SHARED_DATA). The
target for the whole engine is ~60% of the floor, so the reader itself should stay close to it.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
from pathlib import Path

import evtx
import orjson

from svchunt.model import Problem
from svchunt.sources import evtx_reader, iter_events

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SVCHUNT_SHARED_DATA", REPO.parent / "shared" / "data"))


def floor(files: list[str], threads: int) -> int:
    count = 0
    loads = orjson.loads
    for path in files:
        for record in evtx.PyEvtxParser(path, number_of_threads=threads).records_json():
            loads(record["data"])
            count += 1
    return count


def reader(files: list[str]) -> int:
    count = 0
    for item in iter_events(files):
        if not isinstance(item, Problem):
            count += 1
    return count


def measure(label: str, run, repeat: int) -> float:  # type: ignore[no-untyped-def]
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    best, median = max(rates), statistics.median(rates)
    print(f"{label:<34} {count:>8} records  best {best:>10,.0f}/s  median {median:>10,.0f}/s")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=evtx_reader.PARSER_THREADS)
    args = parser.parse_args()
    roots = args.paths or [str(SHARED / "evtx-attack-samples")]
    files = sorted(
        path
        for root in roots
        for path in (glob.glob(f"{root}/**/*.evtx", recursive=True) if os.path.isdir(root) else [root])
    )
    if not files:
        sys.exit(f"no EVTX files under {roots}")
    evtx_reader.PARSER_THREADS = args.threads
    print(f"{len(files)} files, evtx threads={args.threads or 'auto'}, {args.repeat} repetitions")
    base = measure("floor: evtx records_json + orjson", lambda: floor(files, args.threads), args.repeat)
    ours = measure("svchunt iter_events (normalised)", lambda: reader(files), args.repeat)
    print(f"reader / floor = {ours / base:.0%}")


if __name__ == "__main__":
    main()

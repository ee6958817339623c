#!/usr/bin/env python3
"""One big EVTX file (issue 13): does a single file use both cores?

The samples hold no big EVTX file, so one is built from a real multi-chunk sample: its chunks written
again and again with the record numbers renumbered (chunk headers, record headers and both CRCs
rewritten), which gives a healthy file of any size with real records. Then `svchunt hunt` runs over it
with the built-in content and with all SigmaHQ windows rules, and the script reports wall time and
CPU ÷ wall (about 1 when the file is read by one process, towards 2 when its chunks are split over the two
workers), with a digest of the JSONL so that two versions can be compared.

Usage: python bench/evtx_split_bench.py [--chunks 2000] [--shared ../shared/data] [--work /tmp/svchunt-evtxbench]
       [--sample NAME.evtx] [--runs 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER_BLOCK, CHUNK_SIZE = 4096, 65536


def _chunks(sample: Path) -> list[bytearray]:
    data = sample.read_bytes()
    count = struct.unpack_from("<H", data, 0x2A)[0]
    return [bytearray(data[HEADER_BLOCK + i * CHUNK_SIZE : HEADER_BLOCK + (i + 1) * CHUNK_SIZE]) for i in range(count)]


def _renumber(chunk: bytearray, first: int) -> int:
    """Records of the chunk numbered from `first`; returns the next number."""
    free = struct.unpack_from("<I", chunk, 0x30)[0]
    offset, number = 512, first
    while offset + 24 <= free and chunk[offset : offset + 4] == b"\x2a\x2a\x00\x00":
        size = struct.unpack_from("<I", chunk, offset + 4)[0]
        struct.pack_into("<Q", chunk, offset + 8, number)
        offset += size
        number += 1
    struct.pack_into("<QQQQ", chunk, 0x08, first, number - 1, first, number - 1)
    struct.pack_into("<I", chunk, 0x34, zlib.crc32(bytes(chunk[512:free])))
    struct.pack_into("<I", chunk, 0x7C, zlib.crc32(bytes(chunk[:0x78]) + bytes(chunk[0x80:512])))
    return number


def build(sample: Path, out: Path, chunks: int) -> int:
    source = _chunks(sample)
    number = 1
    with out.open("wb") as fh:
        fh.write(b"\0" * HEADER_BLOCK)
        for i in range(chunks):
            chunk = bytearray(source[i % len(source)])
            number = _renumber(chunk, number)
            fh.write(chunk)
    sys.path.insert(0, str(REPO / "src"))
    from svchunt.sources.evtx_reader import file_header

    with out.open("r+b") as fh:
        fh.write(file_header(chunks, number))
    return number - 1


def run(big: Path, rule_args: list[str], out: Path) -> dict:
    exe = REPO / ".venv" / "bin" / "svchunt"
    cmd = [str(exe) if exe.exists() else "svchunt", "hunt", *rule_args, "-q", "--jsonl", str(out), str(big)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data = out.read_bytes()
    return {"wall_s": round(wall, 1), "cpu_per_wall": round(cpu / wall, 2), "alerts": data.count(b"\n"),
            "jsonl_sha256": hashlib.sha256(data).hexdigest()[:16]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--work", default="/tmp/svchunt-evtxbench")
    ap.add_argument("--sample", default="LM_5145_Remote_FileCopy.evtx")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    shared = Path(args.shared)
    found = sorted((shared / "evtx-attack-samples").rglob(args.sample))
    if not found:
        raise SystemExit(f"sample {args.sample} not found under {shared / 'evtx-attack-samples'}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    big = work / f"big_{args.chunks}.evtx"
    records = build(found[0], big, args.chunks)
    print(f"input: {big} ({args.chunks} chunks, {records:,} records, {big.stat().st_size / 2**20:.0f} MiB)", flush=True)
    configs = {"builtin": [], "sigma": ["--no-builtin", "--rules", str(shared / "sigma" / "rules" / "windows")]}
    for k in range(args.runs):
        for name, rule_args in configs.items():
            print(json.dumps({"run": k + 1, "rules": name, **run(big, rule_args, work / f"{name}.jsonl")}), flush=True)


if __name__ == "__main__":
    main()

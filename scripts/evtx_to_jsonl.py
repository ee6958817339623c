#!/usr/bin/env python3
"""EVTX -> JSON lines, the way shippers deliver events, to replay samples through `svchunt watch`.

    python scripts/evtx_to_jsonl.py [--shape nested|flat] OUT.jsonl FILE_OR_FOLDER...

`nested` writes each record as the evtx parser renders its XML (`{"Event": {"System": ..., "EventData": ...}}`,
what Winlogbeat-to-file setups and `evtx_dump -o jsonl` give); `flat` writes NXLog im_msvistalog style
(`EventID`, `Channel`, `SourceName`, `Hostname`, `RecordNumber`, `@timestamp`, event data at top level), with the
event data flattened by svchunt's own shape code. Files are taken in `svchunt hunt` order (svchunt's input walker);
records the parser cannot return are reported on stderr, as `hunt` reports them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

import evtx
import orjson

from svchunt.model import Problem
from svchunt.normalise.shapes import _add_event_data, _add_user_data
from svchunt.sources import iter_inputs


def nested_records(path: str) -> Iterator[dict[str, Any] | str]:
    """Parsed `{"Event": ...}` records of one EVTX file; a str is an error message."""
    records = evtx.PyEvtxParser(path).records_json()
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - the parser raises RuntimeError and carries on
            yield f"{path}: {exc}"
            continue
        try:
            yield orjson.loads(record["data"])
        except (orjson.JSONDecodeError, KeyError) as exc:
            yield f"{path}: record {record.get('event_record_id')}: {exc}"


def to_flat(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("Event") or {}
    system = event.get("System") or {}
    out: dict[str, Any] = {}
    if event.get("EventData") is not None:
        _add_event_data(event["EventData"], out)
    if "UserData" in event:
        _add_user_data(event["UserData"], out)
    event_id = system.get("EventID")
    if isinstance(event_id, dict):
        event_id = event_id.get("#text")
    provider = system.get("Provider")
    provider_name = provider.get("#attributes", {}).get("Name") if isinstance(provider, dict) else None
    time_created = system.get("TimeCreated")
    stamp = time_created.get("#attributes", {}).get("SystemTime") if isinstance(time_created, dict) else None
    out.update({
        "EventID": event_id, "Channel": system.get("Channel"), "SourceName": provider_name,
        "Hostname": system.get("Computer"), "RecordNumber": system.get("EventRecordID"), "@timestamp": stamp,
    })
    return out


def convert(paths: list[str], out_path: str, shape: str = "nested") -> tuple[int, int]:
    """Returns (records written, problems)."""
    written = problems = 0
    with open(out_path, "wb") as out:
        for item in iter_inputs(paths):
            if isinstance(item, Problem):
                print(f"{item.source}: {item.reason}", file=sys.stderr)
                problems += 1
                continue
            with open(item.path, "rb") as fh:
                if fh.read(8) != b"ElfFile\x00":
                    continue  # only EVTX is converted
            for record in nested_records(item.path):
                if isinstance(record, str):
                    print(record, file=sys.stderr)
                    problems += 1
                    continue
                out.write(orjson.dumps(to_flat(record) if shape == "flat" else record) + b"\n")
                written += 1
    return written, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=("nested", "flat"), default="nested")
    parser.add_argument("output")
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args(argv)
    written, problems = convert(args.inputs, args.output, args.shape)
    print(f"{written} records written to {args.output}, {problems} problem(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

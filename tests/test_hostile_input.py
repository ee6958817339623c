"""Hostile input never ends a run: seeded mutation fuzzing of EVTX and JSON, and one CLI regression test
per hostile case the issue names (deep nesting, Infinity, out-of-range timestamps and record numbers,
EVTX chunks copied over each other or with lowered bounds, a damaged file header, truncated gzip, a gzip
bomb, terminal escapes).

The fuzzers are seeded and bounded (a few seconds): the same mutants on every run, so a failure replays.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pytest
from conftest import shared

from svchunt.model import FLAGS_FIELD, Event, Problem
from svchunt.normalise.bounds import INT64_MAX, MAX_DEPTH
from svchunt.sources import read_events

# Three chunks, 87 records: small enough to mutate hundreds of times in a few seconds.
SAMPLE = ("evtx-attack-samples", "Privilege Escalation", "privesc_unquoted_svc_sysmon_1_11.evtx")
GOOD = {
    "EventID": 7045, "Channel": "System", "Hostname": "FS01", "ServiceName": "updsvc",
    "ImagePath": "C:\\Users\\Public\\updsvc.exe", "@timestamp": "2024-05-01T10:00:00Z", "RecordNumber": 1,
}  # fmt: skip


def svchunt(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}  # wide enough that no checked message wraps
    return subprocess.run(
        [sys.executable, "-m", "svchunt.cli.main", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _split(items: list) -> tuple[list[Event], list[Problem]]:
    return [i for i in items if type(i) is Event], [i for i in items if type(i) is Problem]


def _lines(*records: str | dict) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def _between_good(tmp_path: Path, name: str, hostile: str | dict) -> Path:
    """A file of a good line, the hostile line, and another good line."""
    path = tmp_path / name
    path.write_text(_lines(GOOD | {"RecordNumber": 10}, hostile, GOOD | {"RecordNumber": 11, "ServiceName": "b"}))
    return path


def _hunt_all_outputs(tmp_path: Path, *inputs: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    outputs = {"--jsonl": "a.jsonl", "--csv": "a.csv", "--html": "r.html", "--case": "c.duckdb",
               "--incidents": "i.jsonl", "--timesketch": "t.csv", "--ecs": "e.jsonl", "--summary-json": "s.json",
               "--navigator": "n.json"}  # fmt: skip
    args = [a for flag, name in outputs.items() for a in (flag, str(out / name))]
    result = svchunt("hunt", "--workers", "1", *args, *map(str, inputs))
    return result, out


# --- the hostile JSON cases named in the issue, each through the CLI -------------------------------------

NESTED_300 = '{"EventID": 7045, "Channel": "System", "ServiceName": "deep", "Data": ' + "[" * 300 + "1" + "]" * 300 + "}"
HOSTILE_LINES = {
    "nested_300_deep.jsonl": NESTED_300,
    "event_id_infinity.jsonl": '{"EventID": Infinity, "Channel": "System", "ServiceName": "inf"}',
    "event_id_wide.jsonl": GOOD | {"EventID": 2**70},
    "timestamp_overflows_after_utc_shift.jsonl": GOOD | {"@timestamp": "9999-12-31T23:30:00-05:00"},
    "timestamp_before_year_1.jsonl": GOOD | {"@timestamp": "0001-01-01T00:30:00+05:00"},
    "record_number_past_64_bits.jsonl": GOOD | {"RecordNumber": 2**64 + 5},
    "record_number_text_past_64_bits.jsonl": GOOD | {"RecordNumber": "9" * 30},
    "record_number_unsigned_64.jsonl": GOOD | {"RecordNumber": 2**64 - 1},
    "host_is_a_list.jsonl": GOOD | {"Hostname": ["a", "b"]},
    "channel_is_an_object.jsonl": GOOD | {"Channel": {"x": 1}},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_hostile_json_line_is_one_named_problem_and_the_run_goes_on(tmp_path: Path, name: str) -> None:
    path = _between_good(tmp_path, name, HOSTILE_LINES[name])
    result, out = _hunt_all_outputs(tmp_path, path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    alerts = [orjson.loads(x) for x in (out / "a.jsonl").read_bytes().splitlines()]
    lines = {ev["line"] for a in alerts for ev in a["evidence"]}
    assert {1, 3} <= lines, "the good lines around the hostile one are still detected"
    summary = orjson.loads((out / "s.json").read_bytes())
    assert summary["records_read"] + summary["records_skipped"] == 3
    # the hostile line is accounted for: read with flags, or skipped with a reason, never silently
    assert summary["records_flagged"] + summary["records_skipped"] >= 1
    for table in ("r.html", "a.csv", "e.jsonl", "t.csv", "i.jsonl", "n.json"):
        assert (out / table).stat().st_size > 0


def test_out_of_range_values_are_kept_as_text_and_flagged(tmp_path: Path) -> None:
    path = tmp_path / "ranges.jsonl"
    path.write_text(
        _lines(
            GOOD | {"RecordNumber": 2**64 + 5, "@timestamp": "9999-12-31T23:30:00-05:00"},
            GOOD | {"EventID": 2**70},
            NESTED_300,
        )
    )
    events, problems = _split(list(read_events(str(path))))
    assert [e.line for e in events] == [1, 2, 3] and all(p.kept for p in problems)
    first, second, third = events
    assert first.record_id is None and first.timestamp is None
    # orjson reads an integer past 64 bits as a float: the text it keeps is that float's
    assert isinstance(first.fields["EventRecordID"], str) and first.fields["EventRecordID"].startswith("1.8446")
    assert any("timestamp" in f for f in first.fields[FLAGS_FIELD])
    assert isinstance(second.fields["EventID"], str) and second.event_id is None
    assert third.fields["ServiceName"] == "deep" and third.fields["Data"].count("[") == MAX_DEPTH
    assert [p.position for p in problems] == ["line 1", "line 2", "line 3"]
    assert all(p.reason.startswith("kept with changes: ") for p in problems)


def test_python_json_constants_and_deep_nesting_in_pretty_printed_files(tmp_path: Path) -> None:
    """Pretty-printed objects are read with Python's decoder, which accepts NaN/Infinity and recurses."""
    path = tmp_path / "pretty.json"
    path.write_text(
        json.dumps(GOOD, indent=1)
        + "\n"
        + json.dumps(GOOD | {"EventID": float("inf"), "RecordNumber": float("nan")}, indent=1)
        + "\n{\"EventID\": 7045, \"Data\": "
        + "[" * 5000
        + "]" * 5000
        + "}\n"
        + json.dumps(GOOD | {"ServiceName": "last"}, indent=1)
        + "\n"
    )
    events, problems = _split(list(read_events(str(path))))
    assert [e.fields["ServiceName"] for e in events] == ["updsvc", "updsvc", "last"]
    assert events[1].fields["EventID"] == "Infinity" and events[1].record_id is None
    skipped = [p for p in problems if not p.kept]
    assert len(skipped) == 1 and "nested too deeply" in skipped[0].reason


def test_terminal_never_receives_control_or_bidi_characters(tmp_path: Path) -> None:
    evil = "svc\x1b]0;owned\x07\x1b[2J\x9b31m\u202etxt.exe"
    path = tmp_path / "escapes.jsonl"
    path.write_text(_lines(GOOD | {"ServiceName": evil, "ImagePath": "C:\\Users\\Public\\" + evil}))
    result = svchunt("hunt", "--workers", "1", "--timeline", str(path))
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in shown
    assert "\\x1b" in shown and "\\u202e" in shown  # shown as visible escapes, not dropped


# --- gzip --------------------------------------------------------------------------------------------------


def test_truncated_gzip_keeps_every_line_before_the_cut_through_the_cli(tmp_path: Path) -> None:
    lines = [GOOD | {"RecordNumber": n, "ServiceName": f"s{n}"} for n in range(1, 4001)]
    data = gzip.compress(_lines(*lines).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    result, out = _hunt_all_outputs(tmp_path, path)
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((out / "s.json").read_bytes())
    available = zlib.decompressobj(wbits=31).decompress(path.read_bytes())
    assert summary["records_read"] == available.count(b"\n") > 2000
    assert "end marker" in result.stdout


def test_gzip_bomb_is_refused_quickly_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzip.compress(b" " * (300 * 1024**2), compresslevel=9))  # 300 MiB of spaces, ~300 KiB
    good = _between_good(tmp_path, "good.jsonl", GOOD | {"RecordNumber": 12})
    result, out = _hunt_all_outputs(tmp_path, path, good)
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout and "bomb" in result.stdout
    summary = orjson.loads((out / "s.json").read_bytes())
    assert summary["records_read"] == 3 and summary["files_skipped"] == 1


# --- EVTX: continuity, duplicates, damaged headers ----------------------------------------------------------


@pytest.fixture(scope="module")
def evtx_sample() -> bytes:
    return shared(*SAMPLE).read_bytes()


def _chunk(index: int) -> int:
    return 4096 + index * 65536


def _evtx_accounting(path: Path) -> tuple[set[int], set[int], set[int], list[Problem]]:
    events, problems = _split(list(read_events(str(path))))
    read = [e.header_record_id for e in events]
    assert len(read) == len(set(read)), "no record comes out twice"
    numbers = {int(p.position.split()[1]): p.reason for p in problems if p.position.startswith("record ")}
    lost = {n for n, reason in numbers.items() if "duplicate" not in reason}
    duplicates = {n for n, reason in numbers.items() if "duplicate" in reason}
    return set(read), lost, duplicates, problems  # type: ignore[arg-type]


def test_chunk_copied_over_the_next_reports_duplicates_and_the_lost_records(tmp_path: Path, evtx_sample) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(evtx_sample)
    first1, last1 = struct.unpack_from("<QQ", data, _chunk(1) + 0x18)
    first2, last2 = struct.unpack_from("<QQ", data, _chunk(2) + 0x18)
    data[_chunk(2) : _chunk(3)] = data[_chunk(1) : _chunk(2)]
    path = tmp_path / "copied.evtx"
    path.write_bytes(bytes(data))
    read, lost, duplicates, _ = _evtx_accounting(path)
    assert lost == set(range(first2, last2 + 1))  # chunk 2's own records: gone, and said so
    assert duplicates == set(range(first1, last1 + 1))  # chunk 1's records a second time: skipped
    assert read | lost == set(range(1, last2 + 1))
    result, out = _hunt_all_outputs(tmp_path, path)  # and through the CLI: counted, not alerted twice
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((out / "s.json").read_bytes())
    assert (summary["records_read"], summary["records_skipped"]) == (len(read), len(lost) + len(duplicates))
    alerts = [orjson.loads(x) for x in (out / "a.jsonl").read_bytes().splitlines()]
    assert len({a["alert_id"] for a in alerts}) == len(alerts)


def test_chunk_copied_over_the_first_is_bounded_by_its_neighbours(tmp_path: Path, evtx_sample) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(evtx_sample)
    first1, _ = struct.unpack_from("<QQ", data, _chunk(1) + 0x18)
    data[_chunk(0) : _chunk(1)] = data[_chunk(1) : _chunk(2)]
    path = tmp_path / "copied0.evtx"
    path.write_bytes(bytes(data))
    read, lost, _, problems = _evtx_accounting(path)
    assert lost == set(range(1, first1))
    assert any("holds a copy of chunk 1" in p.reason for p in problems)


def test_lowered_last_record_number_in_a_chunk_header_is_a_reported_gap(tmp_path: Path, evtx_sample) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(evtx_sample)
    first, last = struct.unpack_from("<QQ", data, _chunk(1) + 0x18)
    struct.pack_into("<Q", data, _chunk(1) + 0x20, last - 7)
    path = tmp_path / "lowered.evtx"
    path.write_bytes(bytes(data))
    read, lost, _, problems = _evtx_accounting(path)
    total = struct.unpack_from("<Q", data, 0x18)[0] - 1
    assert len(read) + len(lost) == total
    assert set(range(last - 6, last + 1)) <= lost | read
    assert all("gap between chunk 1 and chunk 2" in p.reason for p in problems if p.position.startswith("record "))
    result, out = _hunt_all_outputs(tmp_path, path)  # through the CLI: the lost records are counted
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((out / "s.json").read_bytes())
    assert (summary["records_read"], summary["records_skipped"]) == (len(read), len(lost))
    assert "no chunk holds it" in result.stdout


def test_file_header_next_record_beyond_the_chunks_is_a_reported_gap(tmp_path: Path, evtx_sample) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(evtx_sample)
    next_record = struct.unpack_from("<Q", data, 0x18)[0]
    struct.pack_into("<Q", data, 0x18, next_record + 5)
    path = tmp_path / "next.evtx"
    path.write_bytes(bytes(data))
    read, lost, _, _ = _evtx_accounting(path)
    assert lost == set(range(next_record, next_record + 5)) and len(read) == next_record - 1
    struct.pack_into("<Q", data, 0x18, 2**63)  # garbled: one note, not 2**63 problems
    path.write_bytes(bytes(data))
    read, lost, _, problems = _evtx_accounting(path)
    assert not lost and len(read) == next_record - 1
    assert [p.position for p in problems] == ["file"] and "garbled" in problems[0].reason


def test_damaged_file_header_is_rebuilt_from_the_chunks(tmp_path: Path, evtx_sample) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(evtx_sample)
    expected = struct.unpack_from("<Q", data, 0x18)[0] - 1
    data[0:128] = os.urandom(128)
    path = tmp_path / "header.evtx"
    path.write_bytes(bytes(data))
    read, lost, _, problems = _evtx_accounting(path)
    assert len(read) == expected and not lost
    assert [p.position for p in problems] == ["file header"] and "rebuilt" in problems[0].reason
    result = svchunt("hunt", "--workers", "1", str(path))
    assert result.returncode == 0 and "rebuilt header" in result.stdout


# --- bounded, seeded fuzzing --------------------------------------------------------------------------------


def _mutate_evtx(rng: random.Random, original: bytes) -> bytes:
    data = bytearray(original)
    chunks = (len(data) - 4096) // 65536
    here = _chunk(rng.randrange(chunks))
    kind = rng.randrange(8)
    if kind == 0:  # scattered byte errors
        for _ in range(rng.randint(1, 50)):
            data[rng.randrange(4096, len(data))] = rng.randrange(256)
    elif kind == 1:  # a damaged chunk header
        for _ in range(rng.randint(1, 8)):
            data[here + rng.randrange(512)] = rng.randrange(256)
    elif kind == 2:  # a chunk copied over another
        there = _chunk(rng.randrange(chunks))
        data[there : there + 65536] = data[here : here + 65536]
    elif kind == 3:  # a cut copy
        del data[rng.randrange(len(data)) :]
    elif kind == 4:  # a damaged file header
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(128)] = rng.randrange(256)
    elif kind == 5:  # chunk bounds changed
        value = rng.choice([0, 1, 2**63, 2**64 - 1, rng.randrange(2**16)])
        struct.pack_into("<Q", data, here + rng.choice([0x08, 0x10, 0x18, 0x20]), value)
    elif kind == 6:  # a zeroed stretch
        start = rng.randrange(4096, len(data))
        data[start : start + rng.randrange(1, 65536)] = bytes(min(65536, len(data) - start))[: rng.randrange(1, 65536)]
    else:  # two chunks swapped
        there = _chunk(rng.randrange(chunks))
        a, b = bytes(data[here : here + 65536]), bytes(data[there : there + 65536])
        data[there : there + 65536], data[here : here + 65536] = a, b
    return bytes(data)


def test_fuzz_evtx_mutants_lose_nothing_unreported(tmp_path: Path, evtx_sample) -> None:  # type: ignore[no-untyped-def]
    original = len({e.header_record_id for e in read_events(str(shared(*SAMPLE))) if type(e) is Event})
    rng = random.Random(20261203)
    folder = tmp_path / "mutants"
    folder.mkdir()
    for n in range(250):
        path = folder / f"m{n:03d}.evtx"
        path.write_bytes(_mutate_evtx(rng, evtx_sample))
        items = list(read_events(str(path)))  # raises on any escaped exception: the test fails with it
        events, problems = _split(items)
        read = {e.header_record_id for e in events}
        assert len(read) == len(events), f"{path.name}: a record came out twice"
        lost = {p.position for p in problems if p.position.startswith("record ") and "duplicate" not in p.reason}
        whole = any(p.whole_file for p in problems)  # the file as a whole is reported not read
        assert whole or len(read) + len(lost) >= original, (path.name, len(read), len(lost), problems[:3])
        for event in events:
            assert event.record_id is None or 0 <= event.record_id <= INT64_MAX
    # the whole folder through one real hunt with every output: no exception escapes the run
    result, _ = _hunt_all_outputs(tmp_path, folder)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]


def _hostile_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(12 if depth < 6 else 8)
    if kind == 0:
        return rng.choice([2**64 - 1, 2**64, -(2**63) - 1, 2**200, 0, -1, 65536])
    if kind == 1:
        return rng.choice([1e308, -1e308, 5e-324, 0.5, 7045.0])
    if kind == 2:
        return rng.choice(["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "+275760-01-01T00:00:00Z", "x"])
    if kind == 3:
        return "".join(chr(rng.choice([0, 7, 27, 0x9B, 0x202E, 0x2066, 0xFEFF, 0xD7FF, 65, 0x10FFFF])) for _ in range(20))
    if kind == 4:
        return rng.choice([None, True, False, "", " "])
    if kind == 5:
        return "A" * ((2 << 20) if rng.random() < 0.03 else rng.choice([1, 1000, 40_000]))  # past MAX_TEXT_CHARS
    if kind == 6:
        return "[" * 400 + "]" * 400  # text that looks like nesting
    if kind == 7:
        return rng.choice(["7045", "0x1B", "1e5", "NaN", "-0", " 12 "])
    if kind in (8, 9):
        return [_hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["#text", "#attributes", "Data", "Name", "x"]): _hostile_value(rng, depth + 1)}


def _hostile_record(rng: random.Random) -> bytes:
    shape = rng.randrange(4)
    if shape == 0:
        record: dict = dict(GOOD)
        for key in rng.sample(["EventID", "Channel", "Hostname", "RecordNumber", "@timestamp", "EventTime",
                               "ServiceName", "ImagePath", "AccountType", "EventType", "CommandLine"], 4):  # fmt: skip
            record[key] = _hostile_value(rng)
    elif shape == 1:
        record = {"Event": {"System": {"EventID": _hostile_value(rng), "Channel": "System",
                                       "EventRecordID": _hostile_value(rng), "Computer": _hostile_value(rng),
                                       "TimeCreated": {"#attributes": {"SystemTime": _hostile_value(rng)}}},
                            "EventData": _hostile_value(rng), "UserData": _hostile_value(rng)}}  # fmt: skip
    elif shape == 2:
        record = {"winlog": {"event_id": _hostile_value(rng), "channel": "System", "record_id": _hostile_value(rng),
                             "event_data": _hostile_value(rng), "user_data": _hostile_value(rng)},
                  "@timestamp": _hostile_value(rng), "host": _hostile_value(rng)}  # fmt: skip
    else:
        record = {"event_record_id": _hostile_value(rng), "data": _hostile_value(rng)}
    try:
        text = orjson.dumps(record)
    except TypeError:  # wider than orjson writes: write it as Python's json does
        text = json.dumps(record).encode()
    if rng.random() < 0.2:  # and sometimes a byte-level mutation on top
        cut = bytearray(text)
        for _ in range(rng.randint(1, 5)):
            cut[rng.randrange(len(cut))] = rng.randrange(256)
        text = bytes(cut).replace(b"\n", b" ")
    return text


def test_fuzz_hostile_json_never_escapes_and_accounts_for_every_line(tmp_path: Path) -> None:
    rng = random.Random(4104)
    folder = tmp_path / "json"
    folder.mkdir()
    for n in range(20):
        lines = [_hostile_record(rng) for _ in range(60)]
        path = folder / f"f{n:02d}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        events, problems = _split(list(read_events(str(path))))
        skipped = {p.position for p in problems if not p.kept}
        assert all(p.position.startswith("line ") for p in problems), problems[:3]
        assert len(events) + len(skipped) == len(lines), path.name  # every line: an event or one problem
        for event in events:
            for value in event.fields.values():
                assert value is None or type(value) in (str, int, float, bool, list)
            assert event.timestamp is None or len(event.timestamp) == 27
    result, out = _hunt_all_outputs(tmp_path, folder)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    summary = orjson.loads((out / "s.json").read_bytes())
    assert summary["records_read"] + summary["records_skipped"] == 20 * 60

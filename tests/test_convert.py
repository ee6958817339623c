"""`svchunt convert --parquet` and reading the dataset back: lossless, partitioned, bounded, honest counts."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from conftest import REPO, shared

from svchunt.engine.hunt import HuntOptions, run_hunt
from svchunt.model import Event, Problem
from svchunt.sources import iter_events, iter_inputs, read_events
from svchunt.spark import dataset
from svchunt.spark.arrow import FILE_SCHEMA, from_batch, schema_problem, to_batch
from svchunt.spark.dataset import WriteStats, iter_input_events, write_events

EXAMPLES = REPO / "examples"


def svchunt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svchunt.cli.main", *args], capture_output=True, text=True)


def _provenance(event: Event) -> tuple:
    return (event.source, event.header_record_id or 0, event.line or 0, event.record_id or 0)


def _read_back(folder: Path) -> list[Event | Problem]:
    return [item for f in iter_inputs([str(folder)]) for item in read_events(f.path)]


def _same_events(got: list[Event], want: list[Event]) -> None:
    assert sorted(got, key=_provenance) == sorted(want, key=_provenance)
    # dataclass equality ignores dict order; alerts print fields in their order, so it must survive too
    by_key = {_provenance(e): list(e.fields) for e in want}
    assert all(list(e.fields) == by_key[_provenance(e)] for e in got)


def test_every_attack_sample_event_survives_the_arrow_round_trip():
    events = [e for e in iter_events([str(shared("evtx-attack-samples"))]) if isinstance(e, Event)]
    assert len(events) > 8000
    kinds = {type(v) for e in events for v in e.fields.values()}
    assert {str, int, bool, list, type(None)} <= kinds  # the types a string map would have lost
    converted = to_batch(events)
    assert converted.rejected == [] and converted.batch.schema == FILE_SCHEMA
    back = from_batch(converted.batch)
    assert back == events
    assert all(list(a.fields.items()) == list(b.fields.items()) for a, b in zip(back, events, strict=True))
    # the typed copies agree with the event
    times = converted.batch.column("time").to_pylist()
    ids = converted.batch.column("event_id").to_pylist()
    assert all(t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == e.timestamp for t, e in zip(times, events, strict=True) if t)
    assert ids == [e.event_id for e in events]


def test_values_arrow_cannot_hold_exactly_are_rejected_with_a_reason_not_altered():
    good = Event({"EventID": 7045, "Channel": "System", "Big": 2**63 - 1, "F": 1.5, "L": ["a", 1, None],
                  "Empty": "", "Nul": "a\x00b", "Uni": "Ωµ\u202e"}, None, "x.json", None, 1)  # fmt: skip
    too_big = Event({"EventID": 1, "N": 2**70}, "2020-01-01T00:00:00.000000Z", "x.json", None, 2)
    surrogate = Event({"EventID": 1, "S": "\udc80"}, None, "x.json", None, 3)
    bad_source = Event({"EventID": 1}, None, "bad\udcffname.json", None, 4)
    odd_time = Event({"EventID": 1}, "2019-13-45T99:00:00.000000Z", "x.json", None, 5)
    converted = to_batch([good, too_big, surrogate, bad_source, odd_time])
    assert converted.kept == [0, 4]
    assert [i for i, _ in converted.rejected] == [1, 2, 3]
    assert all(reason for _, reason in converted.rejected)
    back = from_batch(converted.batch)
    assert back == [good, odd_time]
    assert converted.batch.column("time").to_pylist() == [None, None]  # not a valid instant: no typed copy


def test_rows_that_are_not_events_say_why():
    table = pa.table(
        {"source": ["a", "a", None, "a"], "record_id": [1, 2, 3, 4], "line": [None] * 4,
         "header_record_id": [1, 2, 3, 4], "timestamp": [None] * 4,
         "fields": ['{"EventID": 1}', "not json", '{"EventID": 1}', "[1, 2]"]},
    )  # fmt: skip
    items = from_batch(table)
    assert isinstance(items[0], Event) and items[0].fields == {"EventID": 1}
    assert "not valid JSON" in items[1] and "no source" in items[2] and "not a JSON object" in items[3]


def test_convert_writes_a_hive_partitioned_dataset_that_hunts_like_the_logs(tmp_path):
    samples = shared("evtx-attack-samples")
    out = tmp_path / "lake"
    summary = tmp_path / "s.json"
    r = svchunt("convert", str(samples), "--parquet", str(out), "--summary-json", str(summary), "-q")
    assert r.returncode == 0, r.stderr
    counts = orjson.loads(summary.read_bytes())
    events = [e for e in iter_events([str(samples)]) if isinstance(e, Event)]
    assert counts["records_read"] == counts["records_written"] == len(events)
    # the non-EVTX files of the sample folder are reported by name, not dropped
    assert counts["files_skipped"] == len(counts["problems"]) > 0
    assert all(p["position"] == "file" and p["source"].startswith(str(samples)) for p in counts["problems"])

    # Hive-style partitions: date=YYYY-MM-DD/channel=<URI-escaped channel>
    dirs = {p.relative_to(out).parts[:2] for p in out.rglob("*.parquet")}
    assert ("date=2019-03-19", "channel=Security") in dirs or any(d[1] == "channel=Security" for d in dirs)
    assert any(d[1] == "channel=Microsoft-Windows-Sysmon%2FOperational" for d in dirs)
    assert all(d[0].startswith("date=") and d[1].startswith("channel=") for d in dirs)
    assert counts["partitions"] == len(dirs)
    lake = ds.dataset(str(out), format="parquet", partitioning="hive")
    assert lake.count_rows() == len(events)
    sysmon = lake.to_table(filter=ds.field("channel") == "Microsoft-Windows-Sysmon/Operational", columns=["fields"])
    assert sysmon.num_rows == sum(1 for e in events if e.channel == "Microsoft-Windows-Sysmon/Operational")
    one = next(out.rglob("*.parquet"))
    assert pq.read_schema(one).equals(FILE_SCHEMA, check_metadata=True)

    back = _read_back(out)
    assert all(isinstance(e, Event) for e in back)
    _same_events(back, events)  # type: ignore[arg-type]

    # the embedded engine reads the dataset: same alerts, byte for byte
    a, b = tmp_path / "logs.jsonl", tmp_path / "lake.jsonl"
    assert svchunt("hunt", str(samples), "--jsonl", str(a), "-q").returncode == 0
    assert svchunt("hunt", str(out), "--jsonl", str(b), "-q").returncode == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0


def test_convert_refuses_to_mix_datasets_and_appends_only_when_asked(tmp_path):
    out = tmp_path / "lake"
    assert svchunt("convert", str(EXAMPLES), "--parquet", str(out), "-q").returncode == 0
    first = sorted(out.rglob("*.parquet"))
    again = svchunt("convert", str(EXAMPLES), "--parquet", str(out), "-q")
    assert again.returncode == 2 and "--append" in again.stderr
    assert svchunt("convert", str(EXAMPLES), "--parquet", str(out), "--append", "-q").returncode == 0
    second = sorted(out.rglob("*.parquet"))
    assert set(first) < set(second) and len(second) == 2 * len(first)  # new files, none overwritten
    inside = svchunt("convert", str(tmp_path), "--parquet", str(tmp_path / "lake2"), "-q")
    assert inside.returncode == 2 and "overlaps" in inside.stderr
    nothing = svchunt("convert", str(tmp_path / "missing"), "--parquet", str(tmp_path / "x"), "-q")
    assert nothing.returncode == 1 and "nothing could be read" in nothing.stderr


def test_writer_memory_stays_bounded_with_many_partitions(tmp_path, monkeypatch):
    """Caps shrunk so a small input crosses them: every event still lands once, in its partition."""
    monkeypatch.setattr(dataset, "ROW_GROUP_ROWS", 50)
    monkeypatch.setattr(dataset, "MAX_BUFFERED_ROWS", 200)
    monkeypatch.setattr(dataset, "MAX_OPEN_FILES", 3)
    monkeypatch.setattr(dataset, "BATCH_ROWS", 64)
    samples = shared("evtx-attack-samples", "Lateral Movement")
    peak = 0
    add = dataset.DatasetWriter.add

    def watched(self, events):
        nonlocal peak
        add(self, events)
        peak = max(peak, self._total)

    monkeypatch.setattr(dataset.DatasetWriter, "add", watched)
    stats = WriteStats()
    write_events(iter_input_events([str(samples)], stats), str(tmp_path), stats)
    events = [e for e in iter_events([str(samples)]) if isinstance(e, Event)]
    assert stats.records_written == len(events) > 500
    assert peak <= 200
    assert stats.files_written > len(stats.partitions)  # files were closed early and partitions continued
    back = _read_back(tmp_path)
    _same_events(back, events)  # type: ignore[arg-type]
    for path in tmp_path.rglob("*.parquet"):
        date, channel = (unquote_part(p) for p in path.relative_to(tmp_path).parts[:2])
        for event in from_batch(pq.read_table(path)):
            assert isinstance(event, Event)
            assert date == (event.timestamp[:10] if event.timestamp else None)
            assert channel == event.channel


def unquote_part(part: str) -> str | None:
    from urllib.parse import unquote

    value = part.split("=", 1)[1]
    return None if value == dataset.NULL_PARTITION else unquote(value)


def test_bad_parquet_inputs_are_reported_by_file_and_row(tmp_path):
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), foreign)
    rows = tmp_path / "rows.parquet"
    pq.write_table(
        pa.Table.from_pydict(
            {"source": ["s", "s", "s"], "record_id": [1, 2, 3], "line": [None] * 3, "header_record_id": [1, 2, 3],
             "timestamp": [None] * 3, "time": [None] * 3, "event_id": [1] * 3, "computer": [None] * 3,
             "provider": [None] * 3, "fields": ['{"EventID": 1}', "{broken", '{"EventID": 1}']},
            schema=FILE_SCHEMA,
        ),
        rows,
    )  # fmt: skip
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(rows.read_bytes()[:200])
    newer = tmp_path / "newer.parquet"
    pq.write_table(pa.table({"source": ["s"]}).replace_schema_metadata({b"svchunt.schema": b"9"}), newer)
    archive = tmp_path / "lake.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(rows, "rows.parquet")
    items = _read_back(tmp_path)
    problems = {(Path(p.source).name, p.position): p.reason for p in items if isinstance(p, Problem)}
    assert "no column 'source'" in problems[("foreign.parquet", "file")]
    assert "not a readable Parquet file" in problems[("cut.parquet", "file")]
    assert "version 9" in problems[("newer.parquet", "file")]
    assert "not valid JSON" in problems[("rows.parquet", "row 1")]
    assert "extract it first" in problems[("lake.zip", "member rows.parquet")]
    assert [e.record_id for e in items if isinstance(e, Event)] == [1, 3]
    assert schema_problem(FILE_SCHEMA) is None
    result = run_hunt(HuntOptions(paths=[str(tmp_path)], workers=1))
    # three bad files and the archive member are skipped files; the bad row is one skipped record
    assert (result.stats.records_read, result.stats.records_skipped, result.stats.files_skipped) == (2, 1, 4)


def test_convert_counts_rejected_events_and_unreadable_records_as_skipped(tmp_path):
    # Readers never produce an event JSON cannot hold (orjson reads big integers as floats and refuses lone
    # surrogates), so the writer is fed one directly: it is counted and named, the others are written.
    ok = Event({"EventID": 7045, "Channel": "System", "ServiceName": "ok"}, None, "a.json", None, 1)
    too_big = Event({"EventID": 7045, "Channel": "System", "ServiceName": 2**70}, None, "a.json", None, 2)
    unreadable = Problem("a.json", "line 3", "not JSON")
    stats = write_events([ok, too_big, unreadable], str(tmp_path / "lake"))
    assert (stats.records_read, stats.records_written, stats.records_skipped) == (2, 1, 2)
    assert [(p.source, p.position) for p in stats.problems] == [("a.json", "line 3"), ("a.json", "line 2")]
    assert "cannot be stored" in stats.problems[1].reason
    assert _read_back(tmp_path / "lake") == [ok]

    src = tmp_path / "in"
    src.mkdir()
    (src / "e.jsonl").write_text('{"EventID": 7045, "Channel": "System", "RecordNumber": 1}\n{oops\n')
    summary = tmp_path / "s.json"
    r = svchunt("convert", str(src), "--parquet", str(tmp_path / "lake2"), "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    counts = orjson.loads(summary.read_bytes())
    assert counts["records_written"] == 1 and counts["records_skipped"] == 1
    assert [p["position"] for p in counts["problems"]] == ["line 2"]
    assert "records skipped" in r.stdout and "Not written" in r.stdout


def test_convert_target_must_be_a_folder(tmp_path):
    target = tmp_path / "t"
    target.write_text("x")
    r = svchunt("convert", str(EXAMPLES), "--parquet", str(target))
    assert r.returncode == 2 and "not a folder" in r.stderr

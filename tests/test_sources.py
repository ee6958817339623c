"""Reading real samples: EVTX, NXLog/HELK zips, SigmaHQ regression JSON; EVTX vs its JSON renderings."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import evtx
import orjson
import pytest
from conftest import shared

from svchunt.model import Event, Problem
from svchunt.sources import InputFile, iter_events, iter_inputs, read_events


def _split(items: list) -> tuple[list[Event], list[Problem]]:
    events = [i for i in items if isinstance(i, Event)]
    problems = [i for i in items if isinstance(i, Problem)]
    assert len(events) + len(problems) == len(items)
    return events, problems


def test_all_evtx_attack_samples_read_without_problems() -> None:
    root = shared("evtx-attack-samples")
    files = sorted(str(p) for p in root.rglob("*.evtx"))
    assert len(files) > 200
    expected = sum(1 for f in files for _ in evtx.PyEvtxParser(f).records_json())
    events, problems = _split([item for f in files for item in read_events(f)])
    assert problems == []
    assert len(events) == expected
    assert all(e.timestamp and len(e.timestamp) == 27 and not e.timestamp.startswith("1601") for e in events)
    assert all(isinstance(e.fields["EventID"], int) and e.header_record_id is not None for e in events)
    assert all(e.record_id == e.fields["EventRecordID"] and e.line is None for e in events)


def test_timestamp_comes_from_time_created_not_the_record_header() -> None:
    path = str(shared("evtx-attack-samples", "Lateral Movement", "LM_Remote_Service02_7045.evtx"))
    headers = {r["event_record_id"]: r["timestamp"] for r in evtx.PyEvtxParser(path).records_json()}
    events, _ = _split(list(read_events(path)))
    late = [e for e in events if headers[e.header_record_id].startswith("1601")]
    assert late, "sample should contain a record whose header time is 1601"
    for event in late:
        assert event.timestamp is not None and event.timestamp.startswith("2019-")
    # provenance: EventRecordID (Event Viewer) differs from the header number and both are kept
    assert any(e.record_id != e.header_record_id for e in events)
    assert {e.fields["ImagePathNormalised"] for e in events} >= {"cmd.exe"}


def test_otrf_zips_read_with_exact_counts() -> None:
    root = shared("otrf")
    for archive in sorted(root.glob("*.zip")):
        with zipfile.ZipFile(archive) as zf:
            expected = {
                f"{archive}!{name}": sum(1 for line in zf.open(name) if line.strip())
                for name in zf.namelist()
            }
        events, problems = _split(list(read_events(str(archive))))
        assert problems == []
        counts: dict[str, int] = {}
        for event in events:
            counts[event.source] = counts.get(event.source, 0) + 1
        assert counts == expected
        assert all(e.line is not None and e.record_id == e.fields.get("EventRecordID") for e in events)
        assert all(e.timestamp and e.timestamp.endswith("Z") for e in events)


def _loose(value: object) -> object:
    # The regression JSON samples were written by a tool that trims trailing blanks and, in one sample,
    # changed a value's case; compare the rest exactly.
    return value.strip().lower() if isinstance(value, str) else value


def test_sigma_regression_json_matches_its_evtx() -> None:
    root = shared("sigma", "regression_data")
    pairs = [(p, p.with_suffix(".evtx")) for p in sorted(root.rglob("*.json"))]
    assert len(pairs) > 100
    compared = 0
    for json_path, evtx_path in pairs:
        from_json, problems = _split(list(read_events(str(json_path))))
        assert problems == [], json_path
        assert from_json, json_path
        assert all(e.line is not None for e in from_json)
        if not evtx_path.exists():
            continue
        from_evtx, problems = _split(list(read_events(str(evtx_path))))
        assert problems == [] and len(from_evtx) == len(from_json), json_path
        for a, b in zip(from_json, from_evtx, strict=True):
            assert {k: _loose(v) for k, v in a.fields.items()} == {k: _loose(v) for k, v in b.fields.items()}
            assert (a.timestamp, a.record_id) == (b.timestamp, b.record_id)
        compared += 1
    assert compared > 100


@pytest.fixture(scope="module")
def service_evtx() -> Path:
    return shared("evtx-attack-samples", "Persistence", "persist_valid_account_guest_rid_hijack.evtx")


def _comparable(events: list[Event]) -> list[tuple]:
    return [(e.fields, e.timestamp, e.record_id) for e in events]


def test_evtx_and_its_json_renderings_give_the_same_events(tmp_path: Path, service_evtx: Path) -> None:
    direct, problems = _split(list(read_events(str(service_evtx))))
    assert not problems and direct
    records = list(evtx.PyEvtxParser(str(service_evtx)).records_json())
    (tmp_path / "data.jsonl").write_bytes(b"".join(r["data"].encode() + b"\n" for r in records))
    (tmp_path / "wrapped.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    pretty = [orjson.dumps(orjson.loads(r["data"]), option=orjson.OPT_INDENT_2) for r in records]
    (tmp_path / "pretty.json").write_bytes(b"\n".join(pretty))
    (tmp_path / "array.json").write_bytes(b"[" + b",".join(r["data"].encode() for r in records) + b"]")
    for name in ("data.jsonl", "wrapped.jsonl", "pretty.json", "array.json"):
        events, problems = _split(list(read_events(str(tmp_path / name))))
        assert not problems, name
        assert _comparable(events) == _comparable(direct), name
    lines = [e.line for e in _split(list(read_events(str(tmp_path / "pretty.json"))))[0]]
    assert lines[0] == 1 and lines == sorted(lines) and len(set(lines)) == len(lines)


def test_evtx_inside_gzip_and_zip(tmp_path: Path, service_evtx: Path) -> None:
    direct, _ = _split(list(read_events(str(service_evtx))))
    raw = service_evtx.read_bytes()
    gz = tmp_path / "log.bin"  # no telling extension: the format comes from the content
    gz.write_bytes(gzip.compress(raw))
    events, problems = _split(list(read_events(str(gz))))
    assert not problems and _comparable(events) == _comparable(direct)
    assert {e.source for e in events} == {str(gz)}
    archive = tmp_path / "logs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("host1/System.evtx", raw)
        zf.writestr("host1/System.evtx.gz", gzip.compress(raw))
    events, problems = _split(list(read_events(str(archive))))
    assert not problems and len(events) == 2 * len(direct)
    assert {e.source for e in events} == {f"{archive}!host1/System.evtx", f"{archive}!host1/System.evtx.gz"}
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("svchunt-*.evtx"))  # temp copies removed


def test_iter_inputs_is_recursive_sorted_and_deduplicated(tmp_path: Path) -> None:
    for name in ("b/2.json", "b/1.json", "a.json", "c/d/e.json"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    items = list(iter_inputs([str(tmp_path), str(tmp_path / "a.json")]))
    assert all(isinstance(i, InputFile) for i in items)
    rel = [os.path.relpath(i.path, tmp_path) for i in items]  # type: ignore[union-attr]
    assert rel == ["a.json", "b/1.json", "b/2.json", "c/d/e.json"]
    assert items[0].size == 3  # type: ignore[union-attr]


def test_iter_events_chains_inputs_and_reads(tmp_path: Path) -> None:
    good = tmp_path / "x.jsonl"
    good.write_text('{"EventID": 7036, "Channel": "System", "Hostname": "h"}\n')
    items = list(iter_events([str(good), str(tmp_path / "missing.evtx")]))
    assert isinstance(items[0], Event) and items[0].fields["Computer"] == "h"
    assert isinstance(items[1], Problem) and items[1].position == "file"
    assert items[1].source.endswith("missing.evtx")

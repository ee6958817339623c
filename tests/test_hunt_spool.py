"""Matched events' fields kept on disk during a hunt (engine/spool.py): the same answers as in memory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, shared

from svchunt.engine.detector import Detector
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.engine.spool import HOT_FIELDS, FieldSpool, FieldWriter, PackedEvent, StoredFields, pack
from svchunt.model import Event, field_dict
from svchunt.outputs.document import to_document
from svchunt.sources import iter_inputs, read_events

EXAMPLES = REPO / "examples"


def _events(*paths: Path) -> list[Event]:
    out = []
    for item in iter_inputs([str(p) for p in paths]):
        if hasattr(item, "path"):
            out.extend(e for e in read_events(item.path) if type(e) is Event)
    return out


def _stored(events: list[Event], directory: str) -> tuple[FieldSpool, list[Event]]:
    writer = FieldWriter(directory)
    packed = [pack(e, writer) for e in events]
    spool = FieldSpool()
    base = spool.take(writer.close())
    return spool, [spool.unpack(p, base) if type(p) is PackedEvent else p for p in packed]


def test_stored_fields_read_back_as_the_events_dict(tmp_path: Path) -> None:
    events = _events(EXAMPLES, shared("evtx-attack-samples"))
    assert len(events) > 8000
    spool, stored = _stored(events, str(tmp_path))
    assert not list(tmp_path.iterdir()), "the worker's file is gathered into the spool and deleted"
    assert all(type(s.fields) is StoredFields for s in stored), "every sample event's fields fit JSON"
    for original, back in zip(events, stored, strict=True):
        fields, kept = original.fields, back.fields
        assert field_dict(kept) == fields and kept == fields
        assert list(kept) == list(fields) and len(kept) == len(fields)
        for name in (*HOT_FIELDS, "ServiceName", "CommandLine", "NoSuchField"):
            assert kept.get(name, "absent") == fields.get(name, "absent")
            assert (name in kept) == (name in fields)
        assert (back.event_id, back.channel, back.computer) == (original.event_id, original.channel, original.computer)
        assert (back.timestamp, back.source, back.line, back.record_id, back.header_record_id) == (
            original.timestamp, original.source, original.line, original.record_id, original.header_record_id,
        )  # fmt: skip
    spool.close()


def test_absent_hot_fields_stay_absent(tmp_path: Path) -> None:
    event = Event({"EventID": 7045, "Channel": None, "ServiceName": "x"}, None, "t.jsonl", line=1)
    _, [back] = _stored([event], str(tmp_path))
    assert "Computer" not in back.fields and back.fields.get("Computer", "-") == "-"
    assert "Channel" in back.fields and back.fields["Channel"] is None
    with pytest.raises(KeyError):
        back.fields["Provider_Name"]
    with pytest.raises(KeyError):
        back.fields["NoSuchField"]
    assert back.fields["ServiceName"] == "x" and dict(back.fields) == event.fields


def test_fields_json_cannot_hold_stay_in_memory(tmp_path: Path) -> None:
    odd = Event({"EventID": 1, "Odd": {1, 2}}, None, "t.jsonl", line=1)
    writer = FieldWriter(str(tmp_path))
    assert pack(odd, writer) is odd
    assert writer.close() is None, "nothing was written"


@pytest.mark.parametrize("workers", [1, 2])
def test_hunt_with_the_spool_gives_the_in_memory_answer(workers: int, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """run_hunt (fields on disk) and Detector.detect over the same events held in memory: same documents."""
    samples = shared("evtx-attack-samples")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    options = HuntOptions(paths=[str(EXAMPLES), str(samples)], workers=workers)
    ruleset = load_ruleset(options)
    result = run_hunt(options, ruleset)
    in_memory = Detector(ruleset).detect(_events(EXAMPLES, samples))
    assert len(result.alerts) > 50
    assert [to_document(a) for a in result.alerts] == [to_document(a) for a in in_memory.alerts]
    assert any(type(a.fields) is StoredFields for a in result.alerts)
    assert os.listdir(tmp_path) == [], "the run directory and the workers' files are removed"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_room_for_matched_events_is_one_clear_error(workers: str, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A full disk while workers write matched events: exit 1 naming the folder and what to do."""
    import errno

    from click.testing import CliRunner

    from svchunt.cli.main import cli

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tempfile, "mkstemp", full)
    out = CliRunner().invoke(cli, ["hunt", "--workers", workers, "--jsonl", str(tmp_path / "a.jsonl"), str(EXAMPLES)])
    assert out.exit_code == 1, out.output
    assert "No space left on device" in out.output and str(tmp_path) in out.output and "TMPDIR" in out.output
    assert "Traceback" not in out.output
    assert os.listdir(tmp_path) == [], "the run directory is removed"


def test_a_missing_temporary_folder_is_one_clear_error(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from svchunt.cli.main import cli

    gone = tmp_path / "gone"
    monkeypatch.setattr(tempfile, "tempdir", str(gone))
    out = CliRunner().invoke(cli, ["hunt", "--workers", "1", str(EXAMPLES)])
    assert out.exit_code == 1, out.output
    assert str(gone) in out.output and "TMPDIR" in out.output and "Traceback" not in out.output


def test_incident_keys_from_the_worker_equal_the_parents(tmp_path: Path) -> None:
    """Keys and facts derived where events are matched, read back from the spool: as computed from the fields."""
    from svchunt.correlate.incident_keys import event_keys, event_keys_from_json, event_keys_json

    events = _events(EXAMPLES, shared("evtx-attack-samples"))
    writer = FieldWriter(str(tmp_path))
    packed = [pack(e, writer, event_keys_json) for e in events]
    spool = FieldSpool()
    base = spool.take(writer.close())
    with_keys = 0
    for original, p in zip(events, packed, strict=True):
        back = spool.unpack(p, base)  # type: ignore[arg-type]
        assert back.fields == original.fields
        derived = back.fields.derived()  # type: ignore[attr-defined]
        assert derived is not None
        keys, facts = event_keys_from_json(derived)
        want_keys, want_facts = event_keys(original.fields)
        assert keys == want_keys and facts == want_facts
        with_keys += bool(keys)
    assert with_keys > 1000


def test_a_failing_derivation_leaves_it_to_the_reader(tmp_path: Path) -> None:
    def broken(fields):  # type: ignore[no-untyped-def]
        raise ValueError("bug")

    event = Event({"EventID": 7045, "Channel": "System", "ServiceName": "x"}, None, "t.jsonl", line=1)
    writer = FieldWriter(str(tmp_path))
    packed = pack(event, writer, broken)
    spool = FieldSpool()
    back = spool.unpack(packed, spool.take(writer.close()))  # type: ignore[arg-type]
    assert back.fields == event.fields and back.fields.derived() is None  # type: ignore[attr-defined]

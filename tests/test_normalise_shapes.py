"""Normalisation: the same event in every JSON shape gives the same fields; derived fields; odd EventData."""

from __future__ import annotations

import orjson
import pytest
from conftest import FIXTURES

from svchunt.model import Event, Problem
from svchunt.normalise import NotAnEvent, normalise_record, normalise_timestamp
from svchunt.normalise.derived import registry_path
from svchunt.sources import read_events

SHAPES = FIXTURES / "sources"


def _events(name: str) -> list[Event]:
    items = list(read_events(str(SHAPES / name)))
    assert not [i for i in items if isinstance(i, Problem)]
    return items  # type: ignore[return-value]


@pytest.mark.parametrize("other", ["shapes_flat.jsonl", "shapes_ecs.jsonl", "shapes_wrapped.jsonl"])
def test_every_shape_gives_the_same_fields(other: str) -> None:
    nested = _events("shapes_nested.jsonl")
    events = _events(other)
    assert len(events) == len(nested) == 6
    for expected, got in zip(nested, events, strict=True):
        assert got.fields == expected.fields
        assert got.record_id == expected.record_id == expected.fields["EventRecordID"]
        # flat and ECS carry Logstash/Beats @timestamp, which keeps milliseconds only
        assert got.timestamp is not None and got.timestamp[:23] == expected.timestamp[:23]  # type: ignore[index]
        assert len(got.timestamp) == 27 and got.timestamp.endswith("Z")


def test_provenance_per_shape() -> None:
    events = _events("shapes_flat.jsonl")
    assert [e.line for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(e.source.endswith("shapes_flat.jsonl") and e.header_record_id is None for e in events)


def test_nxlog_metadata_is_not_event_data() -> None:
    fields = _events("shapes_flat.jsonl")[1].fields  # 4688
    for key in (
        "EventTime",
        "Hostname",
        "SourceName",
        "RecordNumber",
        "Message",
        "AccountType",
        "@timestamp",
    ):
        assert key not in fields
    assert "AccountName" not in fields  # NXLog's resolved user, not event data
    assert _events("shapes_flat.jsonl")[0].fields["AccountName"] == "LocalSystem"  # 7045's own field
    assert _events("shapes_flat.jsonl")[2].fields["EventType"] == "SetValue"  # Sysmon's own EventType


def test_derived_fields() -> None:
    by_id = {e.fields["EventID"]: e.fields for e in _events("shapes_nested.jsonl")}
    assert by_id[7045]["ImagePathNormalised"] == "c:\\windows\\psexesvc.exe"
    assert by_id[7045]["ImagePathCommand"] == "%SystemRoot%\\PSEXESVC.exe"
    assert by_id[13]["ImagePathNormalised"] == "c:\\windows\\psexesvc.exe"
    assert by_id[13]["ImagePathCommand"] == "%SystemRoot%\\PSEXESVC.exe"  # Sysmon's %% undoubled
    assert by_id[13]["Details"] == "%%SystemRoot%%\\PSEXESVC.exe"  # original kept
    assert by_id[4697]["ImagePathNormalised"] == "c:\\users\\public\\updater.exe"
    assert by_id[4688]["Image"] == "C:\\Windows\\System32\\cmd.exe"
    assert by_id[4688]["ParentImage"] == "C:\\Windows\\PSEXESVC.exe"
    assert by_id[4688]["NewProcessName"] == "C:\\Windows\\System32\\cmd.exe"  # original kept
    assert by_id[4657]["TargetObject"] == "HKLM\\SYSTEM\\ControlSet001\\Services\\Spooler\\ImagePath"
    assert by_id[4657]["Details"] == "C:\\ProgramData\\spool\\spoolsv.exe"
    assert by_id[4657]["Image"] == "C:\\Windows\\System32\\reg.exe"
    assert by_id[4657]["ImagePathNormalised"] == "c:\\programdata\\spool\\spoolsv.exe"
    assert by_id[1102]["SubjectUserName"] == "svc_backup"  # UserData leaves
    assert "ImagePathNormalised" not in by_id[4688]


def test_registry_path_roots() -> None:
    assert registry_path("\\REGISTRY\\USER\\S-1-5-21-1\\Software\\x") == "HKU\\S-1-5-21-1\\Software\\x"
    assert registry_path("\\Registry\\Machine\\SOFTWARE") == "HKLM\\SOFTWARE"
    assert registry_path("HKLM\\x") == "HKLM\\x"


def _nested(event_data: object = None, user_data: object = None, **system: object) -> dict:
    base = {
        "Provider": {"#attributes": {"Name": "Service Control Manager"}},
        "EventID": 7036,
        "TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05.123456Z"}},
        "EventRecordID": 12,
        "Channel": "System",
        "Computer": "HOST",
    }
    base.update(system)
    event: dict = {"System": base}
    if event_data is not None:
        event["EventData"] = event_data
    if user_data is not None:
        event["UserData"] = user_data
    return {"Event": event}


def test_unnamed_data_is_exposed_as_data() -> None:
    fields, _, _ = normalise_record(_nested({"Data": {"#text": ["Print Spooler", "stopped"]}}))
    assert fields["Data"] == ["Print Spooler", "stopped"]
    fields, _, _ = normalise_record(_nested({"Data": "single value"}))
    assert fields["Data"] == "single value"
    fields, _, _ = normalise_record(_nested({"#text": "bare text", "#attributes": {"Name": "x"}}))
    assert fields["Data"] == "bare text"
    fields, _, _ = normalise_record(_nested({"Data": [1, None, "x"]}))
    assert fields["Data"] == ["1", "", "x"]


def test_values_keep_scalars_and_stringify_nested() -> None:
    data = {
        "param1": "PSEXESVC",
        "Count": 3,
        "Flag": True,
        "Empty": None,
        "List": ["a", "b"],
        "Nested": {"a": {"b": 1}},
        "Mixed": [{"x": 1}],
        "Binary": "500053004500580045005300560043002F0034000000",
        "New Value": "spaces kept",
        "image": "lower",
        "Image": "upper",
        "#attributes": {"Name": "ignored"},
    }
    fields, _, _ = normalise_record(_nested(data))
    assert fields["Count"] == 3 and fields["Flag"] is True and fields["Empty"] is None
    assert fields["List"] == ["a", "b"]
    assert fields["Nested"] == '{"a":{"b":1}}'
    assert fields["Mixed"] == '[{"x":1}]'
    assert fields["Binary"] == data["Binary"]
    assert fields["New Value"] == "spaces kept"
    assert fields["image"] == "lower" and fields["Image"] == "upper"
    assert "#attributes" not in fields


def test_user_data_leaves_become_fields() -> None:
    user_data = {"EventXML": {"#attributes": {"xmlns": "x"}, "Param": "a", "Inner": {"Deep": "b"},
                              "WithAttr": {"#attributes": {"k": 1}, "#text": "c"}}}  # fmt: skip
    fields, _, _ = normalise_record(_nested(user_data=user_data))
    assert (fields["Param"], fields["Deep"], fields["WithAttr"]) == ("a", "b", "c")


def test_system_fields_win_and_event_id_with_qualifiers() -> None:
    record = _nested({"Channel": "spoofed"}, EventID={"#attributes": {"Qualifiers": 16384}, "#text": "7045"})
    fields, timestamp, record_id = normalise_record(record)
    assert fields["EventID"] == 7045 and fields["Channel"] == "System"
    assert (timestamp, record_id) == ("2024-01-02T03:04:05.123456Z", 12)


def test_missing_time_is_none_not_an_error() -> None:
    fields, timestamp, _ = normalise_record(_nested({}, TimeCreated=None))
    assert timestamp is None and fields["EventID"] == 7036


@pytest.mark.parametrize(
    "record",
    [
        {"foo": 1},
        [1, 2],
        "text",
        {"Event": "x"},
        {"Event": {"System": {"Channel": "System"}}},
        {"EventID": "abc"},
    ],
)
def test_not_an_event(record: object) -> None:
    with pytest.raises(NotAnEvent):
        normalise_record(record)


def test_mixed_shapes_in_one_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [
        (SHAPES / "shapes_flat.jsonl").read_bytes().splitlines()[0],
        (SHAPES / "shapes_nested.jsonl").read_bytes().splitlines()[0],
        (SHAPES / "shapes_ecs.jsonl").read_bytes().splitlines()[0],
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    events = list(read_events(str(path)))
    assert all(isinstance(e, Event) for e in events) and len(events) == 3
    assert events[0].fields == events[1].fields == events[2].fields  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-03-19T00:41:29.008933Z", "2019-03-19T00:41:29.008933Z"),
        ("2019-03-19T00:41:29.008Z", "2019-03-19T00:41:29.008000Z"),
        ("2019-03-19T00:41:29Z", "2019-03-19T00:41:29.000000Z"),
        ("2019-03-03T09:23:58.8568807Z", "2019-03-03T09:23:58.856880Z"),
        ("2023-06-01T10:00:00.123456789+02:00", "2023-06-01T08:00:00.123456Z"),
        ("2020-09-14 08:05:43", "2020-09-14T08:05:43.000000Z"),
        ("not a time", None),
        (None, None),
        (1700000000, None),
    ],
)
def test_normalise_timestamp(raw: object, expected: str | None) -> None:
    assert normalise_timestamp(raw) == expected


def test_wrapped_record_with_object_data() -> None:
    record = {"event_record_id": 3, "timestamp": "1601-01-01T00:00:00Z", "data": _nested({"A": "b"})}
    fields, timestamp, record_id = normalise_record(orjson.loads(orjson.dumps(record)))
    assert fields["A"] == "b" and timestamp == "2024-01-02T03:04:05.123456Z" and record_id == 12

"""A record whose group's rules all have needs (a literal in a field, a field's presence, a keyword), none of
which holds in it, is counted, not normalised or batched (engine/matcher.py `record_filter`,
engine/prefilter.py `RawPrefilter`): it could not have matched.

The test reads the raw record only for fields that normalising copies unchanged (else the normalised
fields), so it depends on knowing which fields `add_derived` writes (normalise/derived.py `WRITES`, and the
`GATES` that tell it from the raw fields): the declarations are held to the handlers here, over the real
samples, and every record the test skips is matched to show that no rule would have fired.
"""

from __future__ import annotations

import copy
import glob
from pathlib import Path
from typing import Any

import evtx
import orjson
import pytest
from conftest import REPO, SHARED_DATA, rules_matcher, shared

from svchunt.engine import json_keywords, prefilter
from svchunt.engine.hunt import HuntOptions, load_ruleset
from svchunt.engine.matcher import Matcher, route_key
from svchunt.model import FLAGS_FIELD, Event
from svchunt.normalise import derived, shapes
from svchunt.normalise.command_line import ServiceOp
from svchunt.normalise.service_fields import SERVICE_FIELDS, set_fields
from svchunt.normalise.shapes import from_nested, route_record
from svchunt.sources import read_events

SIGMA_WINDOWS = SHARED_DATA / "sigma" / "rules" / "windows"


def _sample_files() -> list[str]:
    return sorted(glob.glob(str(shared("evtx-attack-samples") / "**" / "*.evtx"), recursive=True))


def _parsed_records(paths: list[str]) -> list[dict]:
    return [orjson.loads(r["data"]) for path in paths for r in evtx.PyEvtxParser(path).records_json()]


def test_every_derived_handler_declares_what_it_writes() -> None:
    assert set(derived.WRITES) == set(derived._BY_EVENT_ID)
    assert derived.written_fields(None) == frozenset() and derived.written_fields(4624) == frozenset()


def test_set_fields_writes_only_service_fields() -> None:
    op = ServiceOp(
        "sc", "sdset", service="svc", host="h", bin_path="c:\\x.exe", start_type="disabled",
        failure_command="c:\\y.exe", failure_actions="run/0", sddl="D:(D;;LCRP;;;IU)(A;;CCLCSWRPWPDTLOCRRC;;;WD)",
        reg_value="ImagePath", reg_data="c:\\x.exe", account="LocalSystem",
    )  # fmt: skip
    fields: dict[str, Any] = {}
    set_fields(fields, [op, ServiceOp("sc", "config", service="other")])
    assert len(fields) > 12
    assert set(fields) <= SERVICE_FIELDS


def test_add_derived_writes_only_the_declared_fields_over_the_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field `add_derived` adds or changes on a real event is one its EventID declares."""
    changed: dict[int, set[str]] = {}
    original = derived.add_derived

    gated: dict[int, int] = {}

    def watched(fields: dict[str, Any]) -> None:
        before = dict(fields)
        original(fields)
        diff = {k for k, v in fields.items() if k not in before or before[k] is not v}
        event_id = fields.get("EventID")
        if diff:
            changed.setdefault(event_id, set()).update(diff)  # type: ignore[arg-type]
        assert not set(before) - set(fields), "a handler removed a field"
        gate = derived.GATES.get(event_id)  # type: ignore[arg-type]
        if gate is not None:  # what the gate allows from the fields before derivation holds what was written
            allowed = gate(before)
            assert {k.lower() for k in diff} <= allowed, (event_id, diff, allowed)
            gated[len(allowed)] = gated.get(len(allowed), 0) + 1

    monkeypatch.setattr(shapes, "add_derived", watched)
    for path in [*_sample_files(), *map(str, sorted((REPO / "examples").rglob("*.json*")))]:
        for _ in read_events(path):
            pass
    assert len(changed) >= 6, f"the samples exercise several handlers: {sorted(changed)}"
    assert len(gated) == 2, f"the samples hold both answers of the process gate: {gated}"
    for event_id, names in changed.items():
        assert names <= derived.written_fields(event_id), (event_id, names - derived.written_fields(event_id))


def _read_as_a_hunt(matcher: Matcher, record: dict, text: str) -> tuple[bool, Event]:
    """Whether the EVTX reader of a hunt counts the record (`text`, parsed) without passing it on (as
    `_read_records` does), and the event normalising it gives, with its `text` where the reader gives it."""
    fields, timestamp, rid = from_nested(copy.deepcopy(record), parsed=True)
    verdict, quiet = route_record(record, matcher.record_filter, text)
    given = text if quiet else None
    skipped = verdict is True or (verdict is not None and FLAGS_FIELD not in fields and verdict(dict(fields), given))
    return skipped, Event(fields, timestamp, "t", rid, text=given)


def _matchers() -> list[tuple[str, Matcher]]:
    out = [("built-in", Matcher(load_ruleset(HuntOptions(paths=[])).rules))]
    if SIGMA_WINDOWS.is_dir():
        out.append(("SigmaHQ windows", Matcher(load_ruleset(HuntOptions(paths=[], rule_paths=[str(SIGMA_WINDOWS)], builtin=False)).rules)))
    return out


@pytest.fixture(scope="module")
def sample_records() -> list[tuple[dict, str]]:
    """(parsed record, its JSON text as the parser wrote it) of every sample record."""
    records = [(orjson.loads(r["data"]), r["data"]) for path in _sample_files() for r in evtx.PyEvtxParser(path).records_json()]
    assert len(records) > 8000
    return records


@pytest.mark.parametrize("which", ["built-in", "SigmaHQ windows"])
def test_no_record_the_raw_test_skips_matches_a_rule(which: str, sample_records: list[tuple[dict, str]]) -> None:
    if which != "built-in" and not SIGMA_WINDOWS.is_dir():
        pytest.skip(f"SigmaHQ rules not found at {SIGMA_WINDOWS}")
    matcher = dict(_matchers())[which]
    skipped: list[Event] = []
    kept: list[Event] = []
    routed_skips = 0
    for record, text in sample_records:
        skipped_here, event = _read_as_a_hunt(matcher, record, text)
        if skipped_here:
            skipped.append(event)
            routed_skips += matcher.routed(route_key(event.fields))
        else:
            kept.append(event)
    # matched without their text: the exact keyword test, not the one the skipping used
    assert matcher.match_indexed([Event(e.fields, e.timestamp, e.source, e.record_id) for e in skipped]) == []
    assert matcher.match_indexed(kept), "the records kept hold the matches"
    # (with SigmaHQ's `Mimikatz Use`, a keyword rule, in every group: skipped on their JSON text)
    assert routed_skips > 1000, f"records of routed groups are skipped too ({routed_skips})"


NETWORK = "{product: windows, category: network_connection}"
REGISTRY_SET = "{product: windows, category: registry_set}"
PROCESS = "{product: windows, category: process_creation}"
SYSMON = "Microsoft-Windows-Sysmon/Operational"


def _record(event_id: int, data: dict[str, Any] | None, channel: str = SYSMON) -> dict:
    system = {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
        "EventID": event_id,
        "EventRecordID": 9,
        "Channel": channel,
        "Computer": "ws01",
        "TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T00:00:00.000000Z"}},
    }
    event: dict[str, Any] = {"System": system}
    if data is not None:
        event["EventData"] = data
    return {"Event": event}


def _skipped_and_matched(matcher: Matcher, record: dict) -> tuple[bool, bool]:
    skipped, event = _read_as_a_hunt(matcher, record, orjson.dumps(record).decode())  # as the parser writes
    matched = bool(matcher.match_indexed([event]))
    assert not (skipped and matched), f"skipped a record that matches: {record}"
    return skipped, matched


def test_raw_test_on_look_alikes_case_variants_and_non_text_values(tmp_path: Path) -> None:
    m = rules_matcher(tmp_path, {
        "evil_image": (NETWORK, "    sel: {Image|endswith: '\\\\evil.exe'}\n    condition: sel\n"),
        "port_text": (NETWORK, "    sel: {DestinationHostname|contains: 'true'}\n    condition: sel\n"),
    })  # fmt: skip
    assert m.record_filter(("microsoft-windows-sysmon/operational", 3)) is not None
    cases = {
        "benign": ({"Image": "C:\\Windows\\System32\\svchost.exe"}, (True, False)),
        "look-alike": ({"Image": "C:\\tools\\notevil.exe.bak"}, (True, False)),
        "no EventData": (None, (True, False)),
        "evil": ({"Image": "C:\\Temp\\EVIL.EXE"}, (False, True)),
        "spelt otherwise": ({"image": "C:\\Temp\\evil.exe"}, (False, True)),
        "two spellings": ({"Image": "C:\\a.exe", "IMAGE": "C:\\Temp\\evil.exe"}, (False, None)),
        "bool value": ({"DestinationHostname": True}, (False, True)),
        "number value": ({"DestinationHostname": 1, "Image": 7}, (True, False)),
    }
    for name, (data, (want_skip, want_match)) in cases.items():
        skipped, matched = _skipped_and_matched(m, _record(3, data))
        assert skipped is want_skip, name
        if want_match is not None:
            assert matched is want_match, name


def test_keywords_header_fields_and_rules_without_a_need(tmp_path: Path) -> None:
    m = rules_matcher(tmp_path, {
        "keyword": ("{product: windows, service: sysmon}", "    kw: ['evil.exe']\n    condition: kw\n"),
        "header": ("{product: windows, service: security}", "    sel: {EventID: 4624, Computer|contains: 'dc01'}\n    condition: sel\n"),
        "data": ("{product: windows, service: application}", "    sel: {EventID: 1033, Data|contains: 'evilagent'}\n    condition: sel\n"),
        "no_need": ("{product: windows, category: driver_load}", "    sel: {Hashes|re: '^[0-9A-F]+$'}\n    condition: sel\n"),
    })  # fmt: skip
    sysmon3, logon = ("microsoft-windows-sysmon/operational", 3), ("security", 4624)
    assert m.record_filter(logon).normalised  # type: ignore[union-attr]
    # keywords alone: asked of the record's JSON text before normalising, where Hyperscan is installed
    assert m.record_filter(sysmon3).normalised is (json_keywords.hyperscan is None)  # type: ignore[union-attr]
    # the regex gives no literal: no record is skipped (but with the keywords' JSON test, the reader keeps
    # each record's text for the batch's keyword scan)
    keep = m.record_filter(("microsoft-windows-sysmon/operational", 6))
    assert keep is (None if json_keywords.hyperscan is None else prefilter.KEEP_ALL)
    assert keep is None or not keep({"Hashes": "AB"}, "{}")
    assert m.record_filter(("security", 4688)) is not None  # no rule meets it: every record is skipped
    assert m.record_filter(("security", 4688))({"anything": "evil.exe"})  # type: ignore[misc]
    # a flat record's unnamed Data is a scalar that normalising keeps as it is: the raw test reads it
    assert not m.record_filter(("application", 1033)).normalised  # type: ignore[union-attr]
    installer = {"Data": "Product: EvilAgent -- Installation completed successfully."}
    cases = [
        (_record(1033, installer, "Application"), (False, True)),
        (_record(1033, {"Data": "Product: Office"}, "Application"), (True, False)),
        (_record(3, {"Image": "C:\\Temp\\EVIL.EXE"}), (False, True)),  # a keyword in one value
        (_record(3, {"Image": "C:\\Temp\\evil.ex", "User": "e"}), (True, False)),  # not across two
        (_record(3, {"DestinationPort": 445}), (True, False)),
        (_record(4624, {"TargetUserName": "bob"}, "Security"), (True, False)),
    ]
    dc = _record(4624, {"TargetUserName": "bob"}, "Security")
    dc["Event"]["System"]["Computer"] = "DC01.corp"
    cases.append((dc, (False, True)))  # the needed field comes from the header
    named = _record(3, {"Image": "C:\\a.exe"})
    named["Event"]["System"]["Computer"] = "evil.exe"
    cases.append((named, (False, True)))  # keywords search header values too
    for i, (record, want) in enumerate(cases):
        assert _skipped_and_matched(m, record) == want, i


def test_needs_on_derived_fields_are_tested_on_the_normalised_fields(tmp_path: Path) -> None:
    m = rules_matcher(tmp_path, {
        "derived": (REGISTRY_SET, "    sel: {ImagePathNormalised|endswith: '\\\\evil.exe'}\n    condition: sel\n"),
        "binpath": (PROCESS, "    sel: {ServiceCommandBinPath|exists: true}\n    condition: sel\n"),
    })  # fmt: skip
    assert m.record_filter(("microsoft-windows-sysmon/operational", 13)) is not None
    image_path = "HKLM\\System\\CurrentControlSet\\Services\\x\\ImagePath"
    cases = {
        "service binary": (13, {"TargetObject": image_path, "Details": "c:\\evil.exe"}, (False, True)),
        "stock binary": (13, {"TargetObject": image_path, "Details": "c:\\windows\\system32\\svchost.exe"}, (True, False)),
        "not ImagePath": (13, {"TargetObject": image_path + "x", "Details": "c:\\evil.exe"}, (True, False)),
        "sc create": (1, {"Image": "C:\\Windows\\System32\\sc.exe", "CommandLine": "sc create x binPath= c:\\evil.exe"}, (False, True)),
        "sc query": (1, {"Image": "C:\\Windows\\System32\\sc.exe", "CommandLine": "sc query x"}, (False, False)),  # a tool: full path
        "other program": (1, {"Image": "C:\\Windows\\notepad.exe", "CommandLine": "notepad sc create x binPath= y"}, (True, False)),
    }  # fmt: skip
    for name, (event_id, data, want) in cases.items():
        assert _skipped_and_matched(m, _record(event_id, data)) == want, name
    # the process gate: a service tool's record goes to the full path, any other is judged raw
    filt = m.record_filter(("microsoft-windows-sysmon/operational", 1))
    assert filt is not None and not filt.normalised
    assert not filt({"Image": "C:\\Windows\\System32\\sc.exe", "CommandLine": "sc query x"})
    assert filt({"Image": "C:\\Windows\\notepad.exe", "CommandLine": "notepad sc create x binPath= y"})
    # the presence alternative also narrows the batch: the rule runs on the rows that have the field
    plan = m.plan(("microsoft-windows-sysmon/operational", 1))
    assert not plan.unfiltered and plan.prefilter is not None and "ServiceCommandBinPath" in plan.prefilter.presence


def test_what_the_raw_test_remembers_is_bounded(tmp_path: Path) -> None:

    m = rules_matcher(tmp_path, {"evil_image": (NETWORK, "    sel: {Image|endswith: '\\\\evil.exe'}\n    condition: sel\n")})
    test = m.record_filter(("microsoft-windows-sysmon/operational", 3))
    assert isinstance(test, prefilter.RawPrefilter)
    for i in range(3 * prefilter.MAX_MEMO):  # endless distinct values, some too long to remember
        assert test({"Image": f"C:\\apps\\{i}.exe" + ("x" * 300 if i % 2 else "")})
    for i in range(2 * prefilter.MAX_LAYOUTS):  # endless distinct key lists
        assert test({"Image": "C:\\a.exe", f"Extra{i}": 1})
    assert sum(len(memo) for memo in test._memos.values()) <= prefilter.MAX_MEMO
    assert len(test._layouts) <= prefilter.MAX_LAYOUTS
    assert not test({"Image": "C:\\Temp\\evil.exe"}), "still answers after forgetting"
    assert not test({"Image": "C:\\Temp\\evil.exe" + "\\" * 1000 + "evil.exe"})


def test_a_single_non_ascii_letter_is_a_literal_to_prefilter_on(tmp_path: Path) -> None:
    """A Cyrillic letter is two bytes (SigmaHQ's homoglyph rules): rare enough to prefilter on, so records
    without it are skipped; a record with it, in either case, is kept and matched."""
    m = rules_matcher(tmp_path, {
        "homoglyph": (PROCESS, "    sel: {CommandLine|contains: ['а', 'о']}\n    condition: sel\n"),
    })  # fmt: skip
    assert m.record_filter(("microsoft-windows-sysmon/operational", 1)) is not None
    cases = {
        "latin only": ({"Image": "C:\\x\\notepad.exe", "CommandLine": "notepad a.txt"}, (True, False)),
        "cyrillic a": ({"Image": "C:\\x\\notepad.exe", "CommandLine": "n\u043etepad.exe"}, (False, True)),
        "capital": ({"Image": "C:\\x\\notepad.exe", "CommandLine": "NOTEP\u0410D"}, (False, True)),
    }
    for name, (data, want) in cases.items():
        assert _skipped_and_matched(m, _record(1, data)) == want, name

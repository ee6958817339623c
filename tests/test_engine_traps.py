"""The correctness traps that made a peer silently lose matches (shared/notes/engine-measurements.md),
and a hostile field against a regex: each as an executable check on the real engine."""

from __future__ import annotations

import pytest
from conftest import rules_matcher

from svchunt.engine.matcher import Matcher
from svchunt.model import Event
from svchunt.normalise.derived import WRITES
from svchunt.rules import ir
from svchunt.sources import read_events


def _event(channel: str, eid: int, **fields) -> Event:
    return Event({"Channel": channel, "EventID": eid, **fields}, "2024-01-01T00:00:00.000000Z", "t", eid)


def _titles(matcher: Matcher, events: list[Event]) -> list[tuple[str, int | None]]:
    return sorted((s.rule.title, s.event.record_id) for s in matcher.match(events))


SYSMON1 = "{product: windows, category: process_creation}"


def test_field_missing_from_the_whole_batch_is_null_not_an_error(tmp_path):
    m = rules_matcher(tmp_path, {
        "orig": (SYSMON1, "    sel: {OriginalFileName: psexec.c}\n    condition: sel\n"),
        "not_orig": (SYSMON1, "    sel: {Image|endswith: '\\\\cmd.exe'}\n    f: {OriginalFileName: x}\n    condition: sel and not f\n"),
    })
    # Only Security 4688 events: no OriginalFileName anywhere in the batch.
    events = [_event("Security", 4688, NewProcessName="C:\\Windows\\System32\\cmd.exe", Image="C:\\Windows\\System32\\cmd.exe")]
    assert _titles(m, events) == [("not_orig", 4688)]


def test_bare_text_event_data_is_the_data_field(tmp_path):
    line = (
        '{"Event":{"System":{"Provider":{"#attributes":{"Name":"MsiInstaller"}},"EventID":1033,'
        '"Channel":"Application","Computer":"h","EventRecordID":7,'
        '"TimeCreated":{"#attributes":{"SystemTime":"2024-01-01T00:00:00.000000Z"}}},'
        '"EventData":{"#text":"Product: EvilAgent -- Installation completed successfully."}}}\n'
    )
    path = tmp_path / "msi.jsonl"
    path.write_text(line)
    rules = tmp_path / "rules"
    rules.mkdir()
    m = rules_matcher(rules, {"msi": ("{product: windows, service: application}",
                                 "    sel: {Provider_Name: MsiInstaller, Data|contains: EvilAgent}\n    condition: sel\n")})
    events = [e for e in read_events(str(path)) if isinstance(e, Event)]
    assert _titles(m, events) == [("msi", 7)]


def test_field_names_with_spaces_and_case_variants(tmp_path):
    m = rules_matcher(tmp_path, {
        "space": ("{product: windows, service: system}", "    sel: {EventID: 104, 'New Value': 'x'}\n    condition: sel\n"),
        "payload": ("{product: windows, service: system}", "    sel: {EventID: 105, Payload|contains: 'evil'}\n    condition: sel\n"),
    })
    events = [
        _event("System", 104, **{"New Value": "X"}),
        Event({"Channel": "System", "EventID": 105, "payload": "so evil"}, None, "t", 1),
        Event({"Channel": "System", "EventID": 105, "Payload": "", "payload": "evil again"}, None, "t", 2),
    ]
    assert _titles(m, events) == [("payload", 1), ("payload", 2), ("space", 104)]


def test_empty_string_is_absent_for_null_and_exists(tmp_path):
    m = rules_matcher(tmp_path, {
        "is_null": ("{product: windows, service: system}", "    sel: {EventID: 7045, AccountName: null}\n    condition: sel\n"),
        "exists": ("{product: windows, service: system}", "    sel: {EventID: 7045, AccountName|exists: true}\n    condition: sel\n"),
    })
    events = [_event("System", 7045, AccountName=""), _event("System", 7045), _event("System", 7045, AccountName="LocalSystem")]
    events[1].record_id, events[2].record_id = 2, 3
    assert _titles(m, events) == [("exists", 3), ("is_null", 2), ("is_null", 7045)]


@pytest.mark.parametrize("value,expected", [("0x10", True), ("16", True), (16, True), ("17", False), ("x", False)])
def test_numbers_compare_whatever_their_text_form(tmp_path, value, expected):
    m = rules_matcher(tmp_path, {"num": ("{product: windows, service: security}", "    sel: {EventID: 4697, ServiceType: 16}\n    condition: sel\n")})
    assert bool(m.match([_event("Security", 4697, ServiceType=value)])) is expected


def test_a_hostile_field_cannot_stall_a_regex(tmp_path):
    # (a+)+b backtracks exponentially in Python's re on "aaaa…c"; RE2 answers in linear time.
    m = rules_matcher(tmp_path, {"redos": (SYSMON1, "    sel: {CommandLine|re: '(a+)+b'}\n    condition: sel\n")})
    hostile = _event("Microsoft-Windows-Sysmon/Operational", 1, CommandLine="a" * 200_000 + "c")
    benign = _event("Microsoft-Windows-Sysmon/Operational", 1, CommandLine="aaab")
    benign.record_id = 2
    assert _titles(m, [hostile, benign]) == [("redos", 2)]


def test_a_channel_less_rule_does_not_switch_routing_off_for_the_others(tmp_path):
    m = rules_matcher(tmp_path, {
        "anywhere": ("{product: windows}", "    keywords: ['mimikatz']\n    condition: keywords\n"),
        "svc": ("{product: windows, service: system}", "    sel: {EventID: 7045, ServiceName: PSEXESVC}\n    condition: sel\n"),
    })
    assert m.plan(("security", 4688)).rules == (0,)  # the 7045 rule never meets Security events
    assert set(m.plan(("system", 7045)).rules) == {0, 1}
    events = [_event("System", 7045, ServiceName="psexesvc"), _event("Security", 4688, CommandLine="MimiKatz.exe")]
    assert _titles(m, events) == [("anywhere", 4688), ("svc", 7045)]


def test_each_branch_of_an_or_routes_by_its_own_event_id(tmp_path):
    m = rules_matcher(tmp_path, {
        "branches": ("{product: windows, service: security}", (
            "    a: {EventID: 4738}\n    f: {AllowedToDelegateTo: '-'}\n"
            "    b: {EventID: 5136, AttributeLDAPDisplayName: servicePrincipalName}\n"
            "    condition: (a and not f) or b\n"
        )),
        "open": ("{product: windows, service: security}", (
            "    a: {EventID: 4738}\n    b: {SubjectUserName: admin}\n    condition: a or b\n"
        )),
    })  # fmt: skip
    branches, open_ = (r.compiled.routes for r in m.rules)
    assert branches == (ir.Route("Security", (4738, 5136)),)
    assert open_ == (ir.Route("Security", None),), "a branch without an EventID meets every Security event"
    assert m.plan(("security", 4624)).rules == (1,)
    events = [
        _event("Security", 4738, AllowedToDelegateTo="host/x"),
        _event("Security", 5136, AttributeLDAPDisplayName="servicePrincipalName"),
        _event("Security", 4624, AttributeLDAPDisplayName="servicePrincipalName", AllowedToDelegateTo="host/x"),
    ]
    for i, e in enumerate(events):
        e.record_id = i
    assert _titles(m, events) == [("branches", 0), ("branches", 1), ("open", 0)]


def test_endless_channels_and_event_ids_make_few_plans(tmp_path):
    m = rules_matcher(tmp_path, {
        "anywhere": ("{product: windows}", "    keywords: ['mimikatz']\n    condition: keywords\n"),
        "svc": ("{product: windows, service: system}", "    sel: {EventID: 7045, ServiceName: PSEXESVC}\n    condition: sel\n"),
    })  # fmt: skip
    events = [_event(f"Channel-{i}", i % 70000, Data="mimikatz" if i == 777 else "x") for i in range(5000)]
    for i, e in enumerate(events):
        e.record_id = i
    events.append(_event("System", 7045, ServiceName="psexesvc"))
    assert _titles(m, events) == [("anywhere", 777), ("svc", 7045)]
    # the keys the table names, the EventIDs derivation handles, and None for the rest
    assert len(m._plans) <= 4 + len(WRITES), sorted(m._plans, key=str)
    for i in range(5000):
        assert m.record_filter((f"channel-{i}", 20000 + i)) is m.record_filter(("other", 12345))

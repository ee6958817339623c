"""Records that no loaded rule can match are counted, not normalised or batched (engine/hunt.py `route`):
the same answers.

A hunt asks the EVTX reader to skip normalising a record whose (channel, EventID) no rule meets (or whose
raw fields hold none of its group's needs: tests/test_raw_prefilter.py), but only when
`normalise.shapes.route_record` says normalising it could not have flagged anything or failed; an event of
any other shape is tested once normalised, and counted without being batched when it has no flag.
"""

from __future__ import annotations

import copy
import glob
import shutil
from pathlib import Path

import evtx
import orjson
import pytest
from conftest import REPO, shared

from svchunt.engine.detector import Detector
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.engine.matcher import Matcher, route_key
from svchunt.engine.prefilter import SKIP_ANY
from svchunt.model import FLAGS_FIELD, Event, Unrouted
from svchunt.normalise.shapes import from_nested, route_record
from svchunt.sources import read_events

EXAMPLES = REPO / "examples"


def _verdict(record: object, route) -> object:
    """`route_record`'s verdict on a record, given the JSON text a parser could have written of it."""
    return route_record(record, route, orjson.dumps(record).decode())[0]


def _parsed_records(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        for record in evtx.PyEvtxParser(path).records_json():
            out.append(orjson.loads(record["data"]))
    return out


def test_the_quiet_key_is_the_routing_key_of_the_normalised_event_and_nothing_is_flagged() -> None:
    files = sorted(glob.glob(str(shared("evtx-attack-samples") / "**" / "*.evtx"), recursive=True))
    records = _parsed_records(files)
    assert len(records) > 8000
    keyed = 0
    asked: list[tuple] = []
    for record in records:
        asked.clear()
        if _verdict(record, lambda key: asked.append(key) or SKIP_ANY) is not True:  # a router meeting nothing
            continue
        keyed += 1
        [key] = asked
        fields, _, _ = from_nested(copy.deepcopy(record), parsed=True)
        channel = fields.get("Channel")
        assert key == (channel.lower() if type(channel) is str else None, fields["EventID"])
        assert FLAGS_FIELD not in fields
    assert keyed > 0.9 * len(records), "the usual record takes the quiet path"


def _record(**system: object) -> dict:
    base = {
        "Provider": {"#attributes": {"Name": "Service Control Manager"}},
        "EventID": 7045,
        "EventRecordID": 12,
        "Channel": "System",
        "Computer": "host",
        "TimeCreated": {"#attributes": {"SystemTime": "2020-01-01T00:00:00.000000Z"}},
    }
    base.update(system)
    return {"Event": {"System": base, "EventData": {"ServiceName": "x", "ImagePath": "c:\\x.exe"}}}


@pytest.mark.parametrize(
    "record",
    [
        _record(TimeCreated={"#attributes": {"SystemTime": "yesterday"}}),  # flagged: unusable time
        _record(Provider={"#attributes": {"Name": 7}}),  # flagged: provider is not text
        _record(Computer=["a", "b"]),  # flagged: computer is not text
        _record(Channel=5),  # flagged: channel is not text
        _record(EventID=70000),  # out of range
        _record(EventID="7045"),  # text: normalised through the number parser
        _record(EventID=None),  # not an event
        _record(EventRecordID=-1),  # flagged record number
        {"Event": {"System": _record()["Event"]["System"], "EventData": {"Data": {"deep": {"er": [1, {"x": 2}]}}}}},
        {"Event": {"System": _record()["Event"]["System"], "UserData": {"Thing": {"A": "b"}}}},
        {"Event": {"System": _record()["Event"]["System"], "ProcessingErrorData": {"ErrorCode": 15005}}},
        {"Event": {"System": "not an object"}},
        {"Event": [1, 2]},
        {"NotEvent": {}},
        [],
    ],
)
def test_records_that_could_be_flagged_or_refused_are_normalised(record: object) -> None:
    assert _verdict(record, lambda key: SKIP_ANY) is not True


def test_a_quiet_record_keyed_with_qualifiers_and_without_event_data() -> None:
    record = _record(EventID={"#attributes": {"Qualifiers": 16384}, "#text": 7045})
    asked: list[tuple] = []
    assert _verdict(record, lambda key: asked.append(key) or SKIP_ANY) is True
    del record["Event"]["EventData"]
    assert _verdict(record, lambda key: asked.append(key) or SKIP_ANY) is True
    assert asked == [("system", 7045)] * 2
    assert _verdict(record, lambda key: None) is None, "a record only its normalised event answers for is normalised"
    fields, _, _ = from_nested(record, parsed=True)
    assert FLAGS_FIELD not in fields and fields["EventID"] == 7045


def test_the_reader_gives_unrouted_only_for_records_no_rule_meets() -> None:
    matcher = Detector(load_ruleset(HuntOptions(paths=[]))).matcher
    files = sorted(glob.glob(str(shared("evtx-attack-samples") / "**" / "*.evtx"), recursive=True))
    normalised = unrouted = 0
    for path in files:
        plain = [e for e in read_events(path) if type(e) is Event]
        routed = list(read_events(path, lambda key: None if matcher.routed(key) else SKIP_ANY))
        events = [e for e in routed if type(e) is Event]
        unrouted += sum(e.count for e in routed if type(e) is Unrouted)
        # every event the router lets through is the one a plain read gives, in the same order
        kept = [e for e in plain if _meets(matcher, e)]
        assert [e.fields for e in events if _meets(matcher, e)] == [e.fields for e in kept]
        assert len(events) + sum(e.count for e in routed if type(e) is Unrouted) == len(plain)
        normalised += len(events)
    assert unrouted > 1000 and normalised > 1000, "the built-in content meets some channels, not all"


def _meets(matcher: Matcher, event: Event) -> bool:
    return matcher.routed(route_key(event.fields))


def _hunt(paths: list[str], monkeypatch: pytest.MonkeyPatch, routing: bool, workers: int, **window: str):
    if not routing:
        monkeypatch.setattr(Matcher, "record_filter", lambda self, key: None)  # every record normalised
    try:
        return run_hunt(HuntOptions(paths=paths, workers=workers, **window))
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hunt_gives_the_same_answer_with_and_without_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    samples = shared("evtx-attack-samples")
    damaged = bytearray((samples / "Lateral Movement" / "LM_Remote_Service02_7045.evtx").read_bytes())
    damaged[4096 + 2000 : 4096 + 2400] = b"\xee" * 400  # inside chunk 0's records
    (tmp_path / "damaged.evtx").write_bytes(bytes(damaged))
    shutil.copy(samples / "Lateral Movement" / "LM_Remote_Service02_7045.evtx", tmp_path / "good.evtx")
    # JSON lines too (the examples, the zipped lab recordings): their events are tested once normalised
    paths = [str(samples), str(EXAMPLES), str(shared("otrf")), str(tmp_path)]
    skipping = _hunt(paths, monkeypatch, True, workers)
    full = _hunt(paths, monkeypatch, False, workers)
    assert len(full.alerts) > 50 and full.problems
    assert [a.to_dict() for a in skipping.alerts] == [a.to_dict() for a in full.alerts]
    assert skipping.problems == full.problems and skipping.notes == full.notes
    for name in ("files", "records_read", "records_skipped", "records_flagged", "files_skipped", "records_matched"):
        assert getattr(skipping.stats, name) == getattr(full.stats, name), name


def test_a_time_window_counts_the_records_outside_it_whatever_their_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(shared("evtx-attack-samples"))]
    window = {"since": "2019-03-01T00:00:00.000000Z", "until": "2019-12-31T00:00:00.000000Z"}
    skipping = _hunt(paths, monkeypatch, True, 2, **window)
    full = _hunt(paths, monkeypatch, False, 2, **window)
    assert any("outside --since/--until" in n for n in full.notes)
    assert skipping.notes == full.notes
    assert [a.to_dict() for a in skipping.alerts] == [a.to_dict() for a in full.alerts]
    assert skipping.stats.records_read == full.stats.records_read


def test_json_events_no_rule_can_match_are_counted_not_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    from svchunt.engine import hunt

    batched: list[int] = []
    real = Matcher.match_indexed

    def counting(self: Matcher, events: list[Event]) -> list:
        batched.append(len(events))
        return real(self, events)

    monkeypatch.setattr(Matcher, "match_indexed", counting)
    result = run_hunt(HuntOptions(paths=[str(EXAMPLES)], workers=1))
    assert result.alerts and result.stats.records_read > 0
    assert 0 < sum(batched) < result.stats.records_read, "some events are not batched, and the rest are"
    monkeypatch.setattr(hunt, "_unmatchable", lambda event, route: False)
    again = run_hunt(HuntOptions(paths=[str(EXAMPLES)], workers=1))
    assert [a.to_dict() for a in again.alerts] == [a.to_dict() for a in result.alerts]
    assert again.stats.records_read == result.stats.records_read

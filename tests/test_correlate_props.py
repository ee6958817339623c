"""Property tests: the alert set depends on the signals only, never on their order or on how they are split
into files / feed() calls (batch, streaming, and streaming resumed from saved state)."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_correlate_support import T0, rule

from svchunt.correlate import Correlator, load_correlations
from svchunt.correlate.timeparse import to_micros
from svchunt.model import Event, Signal

RULES = {name: rule(name) for name in ("a", "b", "c", "reg", "s7045")}
SOURCES = ("Security.evtx", "System.evtx", "Microsoft-Windows-Sysmon%4Operational.evtx")


def _c(cid: str, kind: str, rules: list[str], timespan: str, group_by: list[str], **more) -> dict:
    body = {"type": kind, "rules": rules, "timespan": timespan, "group-by": group_by}
    body.update(more)
    return {"title": cid, "id": cid, "correlation": body}


DOCS = [
    _c("count", "event_count", ["a", "b"], "60s", ["Computer"], condition={"gte": 3}),
    _c("users", "value_count", ["a"], "30s", ["Computer"], condition={"field": "User", "gte": 2}),
    _c("trio", "temporal", ["a", "b", "c"], "45s", ["Computer", "User"]),
    _c("ab", "temporal_ordered", ["a", "b"], "30s", ["Computer"]),
    _c("bytes", "value_sum", ["c"], "40s", ["Computer"], condition={"field": "Bytes", "gt": 50}),
    _c("few", "event_count", ["b"], "20s", ["User"], condition={"lt": 2}),
    _c("gap", "absence", ["reg"], "25s", ["Computer", "svc"], absent=["s7045"],
       aliases={"svc": {"reg": "ServiceKey|lower", "s7045": "ServiceName|lower"}}),
    {"title": "burst", "id": "burst", "name": "burst", "correlation": {
        "type": "event_count", "rules": ["a"], "timespan": "20s", "group-by": ["Computer"],
        "condition": {"gte": 2}, "generate": True}},
    _c("chain", "temporal_ordered", ["burst", "c"], "60s", ["Computer"], generate=True),
]
CORRELATIONS, REFUSED = load_correlations([(f"{d['id']}.yml", d) for d in DOCS], list(RULES.values()))
assert not REFUSED, REFUSED
SPAN = {r.info.rule_id: r.timespan_us for r in CORRELATIONS}


_RECORD = st.tuples(
    st.integers(min_value=0, max_value=240),  # seconds: a small range, so ties and overlaps are common
    st.sampled_from(SOURCES),
    st.sampled_from(["h1", "h2"]),
    st.sampled_from(["u1", "u2", "u3"]),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["Svc1", "svc2"]),
    st.sampled_from(["svc1", "SVC2"]),
    st.sets(st.sampled_from(sorted(RULES)), min_size=1, max_size=2),  # one event may match two rules
)


def _signals(records: list[tuple]) -> list[Signal]:
    signals: list[Signal] = []
    for index, (seconds, source, host, user, size, key, name, matched) in enumerate(records):
        stamp = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = {"Computer": host, "User": user, "Bytes": size, "ServiceKey": key, "ServiceName": name}
        ev = Event(fields=fields, timestamp=stamp, source=source, record_id=index)
        signals += [Signal(RULES[rule_name], ev) for rule_name in sorted(matched)]
    return signals


signal_lists = st.lists(_RECORD, max_size=50).map(_signals)


def _ids(alerts) -> list[str]:
    return [a.alert_id for a in alerts]


def _batch(signals: list[Signal]) -> list[str]:
    return _ids(Correlator(CORRELATIONS).run(signals))


PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(signal_lists, st.randoms(use_true_random=False))
def test_shuffling_never_changes_alerts(signals, rnd):
    expected = _batch(signals)
    shuffled = list(signals)
    rnd.shuffle(shuffled)
    assert _batch(shuffled) == expected


@PROPS
@given(signal_lists, st.randoms(use_true_random=False), st.integers(min_value=1, max_value=6))
def test_splitting_into_files_fed_in_any_order(signals, rnd: random.Random, parts):
    expected = sorted(_batch(signals))
    # split by (pseudo) file, feed the files in any order: with unbounded lateness nothing is decided early
    chunks: list[list[Signal]] = [[] for _ in range(parts)]
    for signal in signals:
        chunks[rnd.randrange(parts)].append(signal)
    rnd.shuffle(chunks)
    stream = Correlator(CORRELATIONS, lateness_seconds=float("inf"))
    alerts = [a for chunk in chunks for a in stream.feed(chunk)] + stream.flush()
    assert sorted(_ids(alerts)) == expected


def _time_chunks(signals: list[Signal], rnd: random.Random, parts: int) -> list[list[Signal]]:
    ordered = sorted(signals, key=lambda s: s.event.timestamp)
    cuts = sorted(rnd.sample(range(len(ordered) + 1), k=min(parts, len(ordered) + 1)))
    chunks = [ordered[i:j] for i, j in zip([0, *cuts], [*cuts, len(ordered)], strict=True)]
    for chunk in chunks:
        rnd.shuffle(chunk)
    return chunks


@PROPS
@given(signal_lists, st.randoms(use_true_random=False), st.integers(min_value=1, max_value=8))
def test_streaming_with_zero_lateness_matches_batch(signals, rnd, parts):
    expected = sorted(_batch(signals))
    stream = Correlator(CORRELATIONS)
    alerts = [a for chunk in _time_chunks(signals, rnd, parts) for a in stream.feed(chunk)] + stream.flush()
    assert sorted(_ids(alerts)) == expected
    assert not stream.skipped  # nothing was late


@PROPS
@given(signal_lists, st.randoms(use_true_random=False), st.integers(min_value=2, max_value=6))
def test_resume_from_state_matches_batch(signals, rnd, parts):
    expected = sorted(_batch(signals))
    chunks = _time_chunks(signals, rnd, parts)
    stream = Correlator(CORRELATIONS)
    alerts = []
    for chunk in chunks:
        alerts += stream.feed(chunk)
        stream = Correlator.from_state(CORRELATIONS, stream.to_state())  # restart after every chunk
    alerts += stream.flush()
    assert sorted(_ids(alerts)) == expected


@PROPS
@given(signal_lists)
def test_windows_respect_timespan_and_evidence_is_in_time_order(signals):
    for alert in Correlator(CORRELATIONS).run(signals):
        stamps = [to_micros(e.timestamp) for e in alert.evidence]
        assert stamps == sorted(stamps)
        keys = [(e.timestamp, e.source, e.record_id) for e in alert.evidence]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        if alert.rule.rule_id not in ("chain", "gap"):
            assert stamps[-1] - stamps[0] <= SPAN[alert.rule.rule_id]
        assert alert.kind == "correlation"

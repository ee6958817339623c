"""Window semantics and the traps the issue lists: group isolation, strict order, span <= timespan,
equal timestamps, one event matching several rules; plus aliases, absence, chaining and streaming."""

from __future__ import annotations

from test_correlate_support import corr, correlator, event, rule, sig

from svchunt.correlate import Correlator, load_correlations

A, B, C = rule("a"), rule("b"), rule("c")
BASE = [A, B, C]


def _ids(alerts):
    return [[e.record_id for e in alert.evidence] for alert in alerts]


def test_group_by_isolation():
    c = correlator([corr("event_count", ["a"], condition={"gte": 3})], BASE)
    # interleaved hosts: 2 + 2 events never make 3 of one host
    signals = [sig(A, event(t, Computer=host)) for t, host in [(0, "h1"), (1, "h2"), (2, "h1"), (3, "h2")]]
    assert c.run(signals) == []
    signals.append(sig(A, event(4, Computer="h2")))
    alerts = c.run(signals)
    assert len(alerts) == 1
    assert alerts[0].group == {"Computer": "h2"} and alerts[0].computer == "h2"
    assert {e.timestamp[-9:-1] for e in alerts[0].evidence} == {"1.000000", "3.000000", "4.000000"}


def test_window_never_spans_more_than_timespan():
    c = correlator([corr("event_count", ["a"], condition={"gte": 3}, timespan="60s")], BASE)
    assert c.run([sig(A, event(t)) for t in (0, 30, 60.000001)]) == []
    alerts = c.run([sig(A, event(t)) for t in (0, 30, 60)])  # both ends inclusive
    assert len(alerts) == 1 and alerts[0].fields["count"] == 3


def test_long_burst_gives_non_overlapping_windows():
    c = correlator([corr("event_count", ["a"], condition={"gte": 3}, timespan="60s")], BASE)
    alerts = c.run([sig(A, event(t * 10, record=t)) for t in range(10)])
    # window 1 anchored at 0 takes 0..60 (7 events); window 2 anchored at 70 takes 70..90
    assert _ids(alerts) == [list(range(7)), [7, 8, 9]]
    assert alerts[0].extra["first_timestamp"] == alerts[0].timestamp
    assert alerts[0].extra["last_timestamp"].endswith("12:01:00.000000Z")


def test_below_threshold_slides():
    c = correlator([corr("event_count", ["a"], condition={"gte": 3}, timespan="60s")], BASE)
    alerts = c.run([sig(A, event(t, record=i)) for i, t in enumerate((0, 50, 100, 105))])
    assert _ids(alerts) == [[1, 2, 3]]  # window anchored at 50


def test_equal_timestamps():
    c = correlator([corr("event_count", ["a"], condition={"gte": 3})], BASE)
    signals = [sig(A, event(5, source=src, record=7)) for src in ("Security.evtx", "System.evtx", "Sysmon.evtx")]
    alerts = c.run(signals)
    assert len(alerts) == 1
    # ties broken by (source, record_id, line)
    assert [e.source for e in alerts[0].evidence] == ["Security.evtx", "Sysmon.evtx", "System.evtx"]


def test_lt_condition_anchors_on_distinct_timestamps():
    # three events at the same instant form one window of 3, not windows of 2 and 1
    c = correlator([corr("event_count", ["a"], condition={"lt": 3})], BASE)
    assert c.run([sig(A, event(5)) for _ in range(3)]) == []
    assert len(c.run([sig(A, event(5)) for _ in range(2)])) == 1


def test_temporal_ordered_is_strict():
    c = correlator([corr("temporal_ordered", ["a", "b"])], BASE)
    assert c.run([sig(B, event(0)), sig(A, event(10))]) == []
    assert c.run([sig(A, event(10)), sig(B, event(10))]) == []  # same instant: order unknown
    assert len(c.run([sig(A, event(10)), sig(B, event(10.000001))])) == 1
    assert c.run([sig(A, event(0)), sig(B, event(61))]) == []


def test_temporal_unordered_accepts_any_order_and_equal_time():
    c = correlator([corr("temporal", ["a", "b", "c"])], BASE)
    assert len(c.run([sig(C, event(0)), sig(B, event(0)), sig(A, event(20))])) == 1
    assert c.run([sig(C, event(0)), sig(B, event(0)), sig(A, event(61))]) == []


def test_one_event_matching_several_rules():
    ev = event(3, record=99)
    c = correlator([corr("event_count", ["a", "b"], condition={"gte": 2})], BASE)
    assert c.run([sig(A, ev), sig(B, ev)]) == []  # one event, counted once
    c = correlator([corr("temporal", ["a", "b"])], BASE)
    alerts = c.run([sig(A, ev), sig(B, ev)])  # it did match both rules
    assert _ids(alerts) == [[99]]
    assert alerts[0].extra["rules"] == ["a", "b"]
    c = correlator([corr("temporal_ordered", ["a", "b"])], BASE)
    assert c.run([sig(A, ev), sig(B, ev)]) == []


def test_same_event_given_twice_is_one_occurrence():
    c = correlator([corr("event_count", ["a"], condition={"gte": 2})], BASE)
    ev = event(1, record=5)
    assert c.run([sig(A, ev), sig(A, event(1, record=5))]) == []


def test_value_count_sum_avg():
    c = correlator([corr("value_count", ["a"], condition={"field": "TargetUserName", "gte": 3})], BASE)
    users = ["x", "y", "x", "z"]
    alerts = c.run([sig(A, event(i, TargetUserName=u)) for i, u in enumerate(users)])
    assert len(alerts) == 1 and alerts[0].fields["value_count"] == 3 and alerts[0].fields["values"] == ["x", "y", "z"]
    assert c.run([sig(A, event(i, TargetUserName=u)) for i, u in enumerate(["x", "y", "x"])]) == []

    c = correlator([corr("value_sum", ["a"], condition={"field": "Bytes", "gt": 100})], BASE)
    assert c.run([sig(A, event(i, Bytes=b)) for i, b in enumerate([50, "0x20", "20"])]) != []  # 50+32+20
    assert c.run([sig(A, event(i, Bytes=b)) for i, b in enumerate([50, 30, "n/a"])]) == []
    assert any("not a number" in note for note in c.notes())

    c = correlator([corr("value_avg", ["a"], condition={"field": "Bytes", "gte": 10.5})], BASE)
    alerts = c.run([sig(A, event(i, Bytes=b)) for i, b in enumerate([10, 11])])
    assert len(alerts) == 1 and alerts[0].fields["value_avg"] == 10.5


def test_aliases_across_rules_with_different_fields():
    aliases = {"user": {"a": "SubjectUserName", "b": "TargetUserName|lower"}}
    c = correlator([corr("temporal", ["a", "b"], group_by=["Computer", "user"], aliases=aliases)], BASE)
    alerts = c.run([sig(A, event(0, SubjectUserName="eve")), sig(B, event(5, TargetUserName="EVE")),
                    sig(B, event(6, TargetUserName="bob"))])
    assert len(alerts) == 1 and alerts[0].group == {"Computer": "host1", "user": "eve"}
    assert len(alerts[0].evidence) == 2


def test_missing_group_field_and_timestamp_are_counted():
    c = correlator([corr("event_count", ["a"], group_by=["User"], condition={"gte": 1})], BASE)
    alerts = c.run([sig(A, event(None, User="u")), sig(A, event(1)), sig(A, event(2, User="u"))])
    assert len(alerts) == 1
    notes = " ".join(c.notes())
    assert "no timestamp" in notes and "missing group-by field 'User'" in notes


ABSENCE = {
    "title": "Service ImagePath written without an install event",
    "id": "absence-1",
    "covers": ["DS0009.service-install-gap"],
    "correlation": {
        "type": "absence",
        "rules": ["reg"],
        "absent": ["s7045", "s4697"],
        "group-by": ["Computer", "svc"],
        "timespan": "60s",
        "aliases": {"svc": {
            "reg": r"TargetObject|lower|re2:\\services\\([^\\]+)\\imagepath$",
            "s7045": "ServiceName|lower",
            "s4697": "ServiceName|lower",
        }},
    },
}
REG, S7045, S4697 = rule("reg"), rule("s7045"), rule("s4697")


def _reg(t: float, name: str):
    return sig(REG, event(t, source="Sysmon.evtx", EventID=13,
                          TargetObject=f"HKLM\\System\\CurrentControlSet\\Services\\{name}\\ImagePath"))


def test_absence_extension():
    rules, refused = load_correlations([("abs.yml", ABSENCE)], [REG, S7045, S4697])
    assert not refused
    c = Correlator(rules)
    assert c.suppressed_rule_ids() == {"reg", "s7045", "s4697"}
    install = sig(S7045, event(30, source="System.evtx", EventID=7045, ServiceName="EvilSvc"))
    assert c.run([_reg(0, "evilsvc"), install]) == []
    before = sig(S4697, event(-59, EventID=4697, ServiceName="evilsvc"))
    assert c.run([_reg(0, "EvilSvc"), before]) == []
    late = sig(S7045, event(61, source="System.evtx", EventID=7045, ServiceName="EvilSvc"))
    alerts = c.run([_reg(0, "EvilSvc"), late, _reg(10, "other")])
    assert [(a.group["svc"], len(a.evidence)) for a in alerts] == [("evilsvc", 1), ("other", 1)]
    assert alerts[0].rule.covers == ("DS0009.service-install-gap",)
    other_host = sig(S7045, event(5, source="System.evtx", EventID=7045, ServiceName="x", Computer="h2"))
    assert len(c.run([_reg(0, "x"), other_host])) == 1


def test_chained_correlation_and_generate():
    inner = corr("event_count", ["a"], condition={"gte": 3}, id="inner", name="burst", generate=True)
    outer = corr("temporal_ordered", ["burst", "b"], timespan="5m", id="outer")
    c = correlator([inner, outer], BASE)
    signals = [sig(A, event(t)) for t in (0, 1, 2)] + [sig(B, event(100))]
    alerts = c.run(signals)
    # outer's generate is false, so its input `burst` is quiet even though burst itself says generate: true
    assert [a.rule.rule_id for a in alerts] == ["outer"]
    assert len(alerts[0].evidence) == 4
    # the hit of `burst` counts at its last event (t=2): b at t=2 is not after it
    assert c.run([sig(A, event(t)) for t in (0, 1, 2)] + [sig(B, event(2))]) == []
    assert c.suppressed_rule_ids() == {"b"}  # `a` is only referenced by `burst`, which generates


def test_streaming_matches_batch_and_reports_late_signals():
    c = correlator([corr("event_count", ["a"], condition={"gte": 2}, timespan="10s")], BASE)
    signals = [sig(A, event(t, record=int(t))) for t in (0, 5, 30, 31, 60)]
    batch = c.run(signals)
    stream = correlator([corr("event_count", ["a"], condition={"gte": 2}, timespan="10s")], BASE)
    emitted = stream.feed(signals[:2])
    assert emitted == []  # window [0, 10] not complete yet
    emitted += stream.feed(signals[2:3])  # watermark 30: first window decided
    assert _ids(emitted) == [[0, 5]]
    emitted += stream.feed(signals[3:]) + stream.flush()
    assert [a.alert_id for a in emitted] == [a.alert_id for a in batch]
    lagging = correlator([corr("event_count", ["a"], condition={"gte": 2}, timespan="10s")], BASE)
    lagging.feed([sig(A, event(100))])
    lagging.feed([sig(A, event(50))])
    assert any("after the watermark" in note for note in lagging.notes())


def test_state_round_trip_resumes_windows():
    docs = [corr("temporal", ["a", "b"], timespan="30s")]
    rules, _ = load_correlations([("x.yml", d) for d in docs], BASE)
    first = Correlator(rules)
    first.feed([sig(A, event(0, record=1))])
    resumed = Correlator.from_state(rules, first.to_state())
    alerts = resumed.feed([sig(B, event(20, record=2)), sig(C, event(100, record=3))]) + resumed.flush()
    assert _ids(alerts) == [[1, 2]]


def test_documented_absence_fixture_loads_and_fires():
    import yaml
    from conftest import FIXTURES

    path = FIXTURES / "correlate" / "mr_service_install_gap.yml"
    base = [rule("registry_service_imagepath_write"), rule("service_install_7045"), rule("service_install_4697")]
    rules, refused = load_correlations([(str(path), yaml.safe_load(path.read_text()))], base)
    assert not refused and rules[0].info.level == "high"
    write = sig(base[0], event(0, EventID=13, TargetObject=r"HKLM\SYSTEM\ControlSet001\Services\PSEXESVC\ImagePath"))
    install = sig(base[2], event(2, EventID=4697, ServiceName="psexesvc"))
    c = Correlator(rules)
    assert c.run([write, install]) == []
    alerts = c.run([write])
    assert len(alerts) == 1 and alerts[0].group == {"Computer": "host1", "svc": "psexesvc"}

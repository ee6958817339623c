"""Parsing correlation rules: the spec's own examples, references, refusals."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import shared
from test_correlate_support import event, rule, sig

from svchunt.correlate import Correlator, load_correlations
from svchunt.correlate.timeparse import parse_timespan
from svchunt.model import RuleInfo

SPEC_REFS = ["5638f7c0-ac70-491d-8465-2a65075e0d86", "recon_cmd_a", "recon_cmd_b", "recon_cmd_c",
             "rule_a_id", "process_creation", "website_access"]


def _base() -> list[RuleInfo]:
    return [RuleInfo(rule_id=ref if "-" in ref else f"id-{ref}", title=ref, name=ref) for ref in SPEC_REFS]


def test_spec_schema_examples_load():
    folder = shared("sigma-specification", "tests", "schema", "correlation")
    docs = [(str(p), yaml.safe_load(p.read_text())) for p in sorted(folder.glob("*.yml"))]
    assert len(docs) >= 7
    rules, refused = load_correlations(docs, _base())
    by_type = {r.type for r in rules}
    assert {"event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "value_avg"} <= by_type
    reasons = {r.path.rsplit("/", 1)[-1]: r.reason for r in refused}
    # value_percentile's semantics are not defined by the spec: refused with a reason, not dropped;
    # event_count_ecs.yml reuses event_count.yml's id, and ids must be unique
    assert sorted(reasons) == ["event_count_ecs.yml", "value_percentile.yml"]
    assert "value_percentile" in reasons["value_percentile.yml"]
    assert "duplicate rule id" in reasons["event_count_ecs.yml"]
    value_count = next(r for r in rules if r.type == "value_count")
    assert value_count.condition is not None and value_count.condition.fields == ("User",)
    assert value_count.timespan_us == 86_400 * 10**6
    assert value_count.group_by == ("ComputerName", "WorkstationName")


def _spec_example_docs() -> list[dict]:
    spec = shared("sigma-specification", "specification", "sigma-correlation-rules-specification.md").read_text()
    section = spec.split("### Failed Logins Followed by Successful Login", 1)[1]
    block = re.search(r"```yml\n(.*?)```", section, re.S)
    assert block, "example block not found in the spec"
    return [d for d in yaml.safe_load_all(block.group(1)) if d]


def _base_from(docs: list[dict]) -> list[RuleInfo]:
    return [RuleInfo(rule_id=d["id"], title=d["title"], name=d.get("name")) for d in docs if "correlation" not in d]


def test_spec_chained_example_runs():
    docs = _spec_example_docs()
    base = _base_from(docs)
    rules, refused = load_correlations([("mr_example.yml", d) for d in docs if "correlation" in d], base)
    assert not refused
    assert [r.info.name or r.info.rule_id for r in rules] == ["multiple_failed_login",
                                                             "b180ead8-d58f-40b2-ae54-c8940995b9b6"]
    failed = next(r for r in base if r.name == "failed_login")
    success = next(r for r in base if r.name == "successful_login")
    correlator = Correlator(rules)
    # generate defaults to false: the referenced detections do not alert on their own
    assert correlator.suppressed_rule_ids() == {failed.rule_id, success.rule_id}

    signals = [sig(failed, event(i * 20, EventID=4625, User="alice")) for i in range(10)]
    signals += [sig(failed, event(i * 20, EventID=4625, User="bob")) for i in range(3)]
    signals.append(sig(success, event(300, EventID=4624, User="alice")))
    signals.append(sig(success, event(300, EventID=4624, User="bob")))
    alerts = correlator.run(signals)
    assert len(alerts) == 1  # the inner correlation's own alert is suppressed too
    alert = alerts[0]
    assert alert.rule.rule_id == "b180ead8-d58f-40b2-ae54-c8940995b9b6" and alert.rule.level == "high"
    assert alert.group == {"User": "alice"}
    assert len(alert.evidence) == 11
    stamps = [e.timestamp for e in alert.evidence]
    assert stamps == sorted(stamps)
    assert alert.evidence[-1].event_id == 4624


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("90m", 5400), ("1h", 3600), ("2d", 172800)])
def test_timespan_units(text, seconds):
    assert parse_timespan(text) == seconds * 10**6


@pytest.mark.parametrize("text", ["1w", "10", "1H", "0s", "-1m", "m", "1.5h", 5, None])
def test_timespan_refused(text):
    with pytest.raises(ValueError):
        parse_timespan(text)


def _doc(**corr) -> dict:
    body = {"type": "event_count", "rules": ["a"], "group-by": ["Computer"], "timespan": "1m",
            "condition": {"gte": 2}}
    body.update(corr)
    return {"title": "t", "id": "c1", "correlation": {k: v for k, v in body.items() if v is not None}}


@pytest.mark.parametrize(("changes", "reason"), [
    ({"rules": ["nope"]}, "not loaded"),
    ({"type": "event_sum"}, "unsupported correlation type"),
    ({"timespan": "1w"}, "timespan"),
    ({"condition": None}, "requires a `condition`"),
    ({"condition": {"gte": "many"}}, "not a number"),
    ({"condition": {"most": 3}}, "unknown condition operator"),
    ({"type": "value_count"}, "requires `field`"),
    ({"aliases": {"x": {"b": "Foo"}}}, "does not use"),
    ({"aliases": {"x": {"a": "Foo|upper"}}}, "unknown field modifier"),
    ({"aliases": {"x": {"a": "Foo|re2:no_group"}}}, "capture group"),
    ({"type": "absence", "condition": None}, "absent"),
    ({"absent": ["b"]}, "only allowed with type: absence"),
    ({"rules": ["a", "a"]}, "same rule twice"),
])
def test_refusals_name_the_reason(changes, reason):
    rules, refused = load_correlations([("bad.yml", _doc(**changes))], [rule("a"), rule("b")])
    assert not rules
    assert len(refused) == 1 and refused[0].path == "bad.yml" and refused[0].rule_id == "c1"
    assert reason in refused[0].reason


def test_references_by_id_and_name_and_ambiguity():
    base = [RuleInfo("id-a", "A", name="alpha"), RuleInfo("id-b", "B", name="beta"), RuleInfo("id-c", "C", name="beta")]
    rules, refused = load_correlations([("x.yml", _doc(rules=["alpha", "id-b"]))], base)
    assert rules[0].rule_ids == ("id-a", "id-b") and not refused
    rules, refused = load_correlations([("x.yml", _doc(rules=["beta"]))], base)
    assert not rules and "ambiguous" in refused[0].reason


def test_chain_through_refused_or_cyclic_correlation_is_refused():
    inner_bad = {"title": "inner", "name": "inner", "correlation": {"type": "event_count", "rules": ["a"],
                 "timespan": "1q", "condition": {"gte": 1}}}
    outer = {"title": "outer", "id": "outer", "correlation": {"type": "temporal", "rules": ["inner", "a"],
             "group-by": ["Computer"], "timespan": "1m"}}
    rules, refused = load_correlations([("i.yml", inner_bad), ("o.yml", outer)], [rule("a")])
    assert not rules
    assert {r.rule_id for r in refused} == {"inner", "outer"}
    assert any("was refused" in r.reason for r in refused)

    c1 = {"title": "c1", "id": "c1", "correlation": {"type": "temporal", "rules": ["c2", "a"], "timespan": "1m"}}
    c2 = {"title": "c2", "id": "c2", "correlation": {"type": "temporal", "rules": ["c1", "a"], "timespan": "1m"}}
    rules, refused = load_correlations([("1.yml", c1), ("2.yml", c2)], [rule("a")])
    assert not rules and any("cycle" in r.reason for r in refused)


def test_generate_true_keeps_referenced_rules_and_metadata():
    doc = _doc(generate=True)
    doc.update(level="critical", tags=["attack.t1543.003"], covers=["DS0009.new-service"], falsepositives="admins")
    rules, _ = load_correlations([("x.yml", doc)], [rule("a")])
    assert Correlator(rules).suppressed_rule_ids() == set()
    info = rules[0].info
    assert info.level == "critical" and info.covers == ("DS0009.new-service",) and info.techniques == ["T1543.003"]
    assert info.falsepositives == ("admins",) and info.path == "x.yml"


def test_range_condition_and_neq():
    rules, refused = load_correlations([("x.yml", _doc(condition={"gt": 2, "lte": 3}))], [rule("a")])
    cond = rules[0].condition
    assert cond is not None and [cond.holds(n) for n in (2, 3, 4)] == [False, True, False]
    rules, _ = load_correlations([("x.yml", _doc(condition={"neq": 1}))], [rule("a")])
    assert rules[0].condition is not None and not rules[0].condition.holds(1) and rules[0].condition.holds(0)

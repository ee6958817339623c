"""SigmaHQ conformance: every Windows rule that ships regression data must fire on its samples.

The expected counts come from SigmaHQ's own `info.yml` files. A rule that does not pass must be
listed with its reason in `sigma_known_gaps.yml`; the pass rate must stay at or above 95%.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import REPO, shared

from svchunt.engine.matcher import Matcher
from svchunt.model import Event
from svchunt.rules.loader import load_rules
from svchunt.sources import read_events

KNOWN_GAPS = yaml.safe_load((REPO / "tests" / "sigma_known_gaps.yml").read_text()) or {}


@dataclass
class Case:
    rule_id: str
    rule_path: Path
    sample: Path
    expected: int


def _cases(sigma: Path) -> tuple[list[Case], list[str]]:
    cases: list[Case] = []
    missing: list[str] = []
    for info_path in sorted((sigma / "regression_data").rglob("info.yml")):
        rel = info_path.parent.relative_to(sigma / "regression_data")
        if "windows" not in rel.parts:
            continue
        info = yaml.safe_load(info_path.read_text())
        rule_path = (sigma / rel.parent / rel.name).with_suffix(".yml")
        if not rule_path.exists():
            missing.append(str(rel))
            continue
        rule_id = str(info["rule_metadata"][0]["id"])
        for test in info.get("regression_tests_info") or []:
            sample = sigma / test["path"]
            cases.append(Case(rule_id, rule_path, sample, int(test.get("match_count", 1))))
            json_twin = sample.with_suffix(".json")
            if json_twin.exists():  # the same event as JSON must give the same answer
                cases.append(Case(rule_id, rule_path, json_twin, int(test.get("match_count", 1))))
    return cases, missing


def _count(matcher: Matcher, sample: Path, rule_id: str) -> tuple[int, int, list[str]]:
    events: list[Event] = []
    problems = []
    for item in read_events(str(sample)):
        (events if isinstance(item, Event) else problems).append(item)
    hits = Counter(matcher.infos[i].rule_id for i, _ in matcher.match_indexed(events))
    return hits[rule_id], len(events), [f"{p.position}: {p.reason}" for p in problems]


def test_sigmahq_regression_data():
    sigma = shared("sigma")
    cases, missing = _cases(sigma)
    assert len(cases) > 100, "expected the SigmaHQ regression data set"
    ruleset = load_rules(sorted({str(c.rule_path) for c in cases}))
    refused = {r.rule_id: r.reason for r in ruleset.refused}
    matcher = Matcher(ruleset.rules)

    results: dict[str, list[str]] = {}
    for case in cases:
        failures = results.setdefault(case.rule_id, [])
        if case.rule_id in refused:
            failures.append(f"refused by the engine: {refused[case.rule_id]}")
            continue
        got, n_events, problems = _count(matcher, case.sample, case.rule_id)
        if problems:
            failures.append(f"{case.sample.name}: unreadable records {problems[:3]}")
        if got != case.expected:
            failures.append(f"{case.sample.name}: {got} matches, expected {case.expected} ({n_events} events)")

    failed = {rid: why for rid, why in results.items() if why}
    rate = 1 - len(failed) / len(results)
    report = "\n".join(f"  {rid}: {'; '.join(why)}" for rid, why in sorted(failed.items()))
    print(f"\nSigmaHQ regression: {len(results) - len(failed)}/{len(results)} rules pass ({rate:.1%})")
    if failed:
        print("failing rules:\n" + report)
    unexplained = sorted(set(failed) - set(KNOWN_GAPS))
    assert not unexplained, "rules failing without an entry in sigma_known_gaps.yml:\n" + "\n".join(
        f"  {rid}: {'; '.join(failed[rid])}" for rid in unexplained
    )
    fixed = sorted(set(KNOWN_GAPS) - set(failed))
    assert not fixed, f"rules listed as known gaps now pass; remove them from sigma_known_gaps.yml: {fixed}"
    assert rate >= 0.95, f"only {rate:.1%} of rules with regression data pass"


@pytest.mark.parametrize("rule_id", sorted(KNOWN_GAPS))
def test_known_gaps_have_reasons(rule_id):
    assert isinstance(KNOWN_GAPS[rule_id], str) and len(KNOWN_GAPS[rule_id]) > 20

"""What an alert claims: tool items only where that tool's fingerprint is, generic building blocks only
generic items, and every rule says what it claims and what it only contributes to.

The claims check runs the whole pack (every detection rule's matches, not only the emitted alerts, plus
every correlation) over every sample of the positive cases in test_cases.yml and over the benign corpus.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, shared

from svchunt.content import builtin_rule_paths
from svchunt.engine.detector import Detector
from svchunt.engine.hunt import HuntOptions, load_ruleset
from svchunt.model import LEVEL_RANK, Event
from svchunt.rules.coverage import BRIEF_IDS, load_test_cases
from svchunt.sources import iter_events

TOOL_ITEMS = {
    "PT-CR-589", "PT-CR-226", "PT-CR-523", "PT-CR-752", "PT-CR-1356", "PT-CR-1363", "PT-CR-1838",
    "PT-CR-1355", "PT-CR-217", "PT-CR-2632",
}  # fmt: skip
FINGERPRINTS: dict[str, dict[int, list[str]]] = yaml.safe_load(
    (FIXTURES / "content" / "fingerprints.yml").read_text(encoding="utf-8")
)
BRIEF = yaml.safe_load((Path(__file__).resolve().parents[1] / "scripts" / "evaluate_content_brief.yml").read_text())


@lru_cache(maxsize=1)
def _detector() -> Detector:
    return Detector(load_ruleset(HuntOptions(paths=[], use_cache=False)))


def _fixture_samples() -> list[str]:
    cases = load_test_cases()
    names = {s.split(":", 1)[1] for c in cases["positives"] for s in c["samples"] if s.startswith("fixture:")}
    return sorted(names)


def _path(name: str) -> Path:
    path = FIXTURES / "content" / name
    return path if path.is_file() else FIXTURES / "benign" / name


def _tool_claimers(paths: list[str]) -> list[tuple[str, str, list[tuple[str, int]]]]:
    """(tool item, rule, evidence records) for every rule match and correlation alert claiming a tool item."""
    detector = _detector()
    events = [e for e in iter_events(paths) if isinstance(e, Event)]
    signals = detector.match(events)
    claimers = [(s.rule, [s.event]) for s in signals]
    claimers += [(a.rule, a.evidence) for a in detector.alerts(signals).alerts if a.kind == "correlation"]
    return [
        (item, rule.name or rule.rule_id, [(Path(e.source).name, e.record_id) for e in evidence])
        for rule, evidence in claimers
        for item in sorted(set(rule.claims) & TOOL_ITEMS)
    ]


def _claims_per_record(paths: list[str]) -> dict[tuple[str, int], set[tuple[str, str]]]:
    """(file name, EventRecordID) -> {(tool item, rule)} of the claims whose evidence includes the record."""
    out: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for item, rule, evidence in _tool_claimers(paths):
        for record in evidence:
            out.setdefault(record, set()).add((item, rule))
    return out


@pytest.mark.parametrize("name", _fixture_samples())
def test_tool_items_are_claimed_only_on_that_tools_fingerprint(name: str):
    # A detection's one event must carry the fingerprint; a correlation's evidence must include one
    # record that does (the fingerprint is often one step of the chain).
    declared = FINGERPRINTS.get(name, {})
    wrong = {
        (tuple(rid for _, rid in evidence), item, rule)
        for item, rule, evidence in _tool_claimers([str(_path(name))])
        if not any(item in declared.get(rid, []) for _, rid in evidence)
    }
    assert not wrong, f"tool items claimed without that tool's fingerprint in {name}: {sorted(wrong)}"


def test_every_declared_fingerprint_gets_its_tool_items():
    """The table is not vacuous: each fingerprinted record is claimed for each item declared for it."""
    missing = []
    for name, records in FINGERPRINTS.items():
        claimed = _claims_per_record([str(_path(name))])
        for rid, items in records.items():
            got = {item for item, _ in claimed.get((name, rid), set())}
            missing += [(name, rid, item) for item in items if item not in got]
    assert not missing
    assert {i for recs in FINGERPRINTS.values() for items in recs.values() for i in items} == TOOL_ITEMS


def test_eas_tool_claims_follow_the_brief():
    """On the public samples, only files the brief ties to a tool carry that tool's items (file level)."""
    root = shared("evtx-attack-samples")
    tool_items = {"sysinternals-psexec": {"PT-CR-589", "PT-CR-217"}, "psexec-analog": {"PT-CR-217"}}
    files = sorted(root.rglob("*.evtx"))
    claimed = _claims_per_record([str(f) for f in files])
    by_file: dict[str, set[str]] = {}
    for (fname, _), pairs in claimed.items():
        by_file.setdefault(fname, set()).update(item for item, _ in pairs)
    expected = {
        Path(f).name: set().union(*(tool_items[t] for t in e["tools"])) for f, e in BRIEF.items() if e.get("tools")
    }
    assert by_file == expected


def _declares(doc: dict, key: str) -> bool:
    return key in doc


def test_every_rule_declares_claims_and_building_blocks_explicitly():
    """`claims:` in every rule (a rule with only `covers:` would claim all its items); in a collection the
    global part and a document must not both set it (the global value silently wins)."""
    for path in builtin_rule_paths():
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        glob = next((d for d in docs if d.get("action") == "global"), None)
        for doc in docs:
            if doc.get("action"):
                continue
            assert "covers" not in doc and not (glob and "covers" in glob), f"{path.name}: use claims/contributes_to"
            has = _declares(doc, "claims") or bool(glob and _declares(glob, "claims"))
            assert has, f"{path.name}: {doc.get('name')} declares no claims"
            if glob:
                for key in ("claims", "contributes_to"):
                    assert not (key in glob and key in doc), f"{path.name}: {key} both global and in {doc.get('name')}"


def test_claims_are_brief_items_and_tool_rules_are_high():
    known = set(BRIEF_IDS)
    ruleset = load_ruleset(HuntOptions(paths=[], use_cache=False))
    for rule in ruleset.rules:
        info = rule.info
        assert set(info.claims) <= known and set(info.contributes_to) <= known, info.name
        assert not set(info.claims) & set(info.contributes_to), info.name
        if set(info.claims) & TOOL_ITEMS:
            assert LEVEL_RANK[info.level] >= LEVEL_RANK["high"], f"{info.name}: a tool verdict is high or critical"
        if not info.claims:  # a building block: a lead, never a verdict
            assert LEVEL_RANK[info.level] <= LEVEL_RANK["medium"] or info.name in {"proc_spoolsv_injection"}, info.name
        assert all(isinstance(fp, str) and not fp.startswith("{") for fp in info.falsepositives), info.name
        text = " ".join([info.title, info.description, *info.falsepositives])
        assert "brief" not in text.lower() and "§" not in text, f"{info.name}: internal jargon in user-facing text"


def test_alert_covers_equal_claims():
    detector = _detector()
    events = [e for e in iter_events([str(_path("service_installs.jsonl"))]) if isinstance(e, Event)]
    alerts = detector.detect(events).alerts
    assert alerts
    for alert in alerts:
        doc = alert.to_dict()
        assert doc["covers"] == doc["claims"] == list(alert.rule.claims)

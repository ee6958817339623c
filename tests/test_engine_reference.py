"""Speed must never buy wrong answers: the fast engine agrees with a slow reference matcher."""

from __future__ import annotations

from collections import Counter

from conftest import shared
from reference_matcher import Skip, logsource_accepts, rule_matches
from sigma.rule import SigmaRule

from svchunt.engine.matcher import Matcher
from svchunt.model import Event
from svchunt.rules.loader import load_rules
from svchunt.sources import read_events


def _sample_events() -> list[Event]:
    """Every event of the lateral-movement files and of every 10th other file: ~1,400 events."""
    root = shared("evtx-attack-samples")
    files = sorted(root.rglob("*.evtx"))
    chosen = [f for i, f in enumerate(files) if "Lateral Movement" in str(f) or i % 10 == 0]
    return [e for f in chosen for e in read_events(str(f)) if isinstance(e, Event)]


def _key(e: Event) -> tuple:
    return (e.source, e.header_record_id, e.line)


def test_engine_agrees_with_reference_on_sigmahq_windows_rules():
    rules_dir = shared("sigma", "rules", "windows")
    events = _sample_events()
    assert len(events) > 500
    ruleset = load_rules([str(rules_dir)])
    matcher = Matcher(ruleset.rules)
    fast: Counter = Counter()
    fast_keys: dict[str, set] = {}
    for i, event in matcher.match_indexed(events):
        rid = matcher.infos[i].rule_id
        fast[rid] += 1
        fast_keys.setdefault(rid, set()).add(_key(event))

    # The reference decides the logsource per (Channel, EventID) once, then matches event by event.
    groups: dict[tuple, list[Event]] = {}
    for event in events:
        groups.setdefault((event.fields.get("Channel"), event.fields.get("EventID")), []).append(event)

    slow: Counter = Counter()
    slow_keys: dict[str, set] = {}
    checked = skipped = 0
    for loaded in ruleset.rules:
        rule = SigmaRule.from_yaml(open(loaded.info.path, encoding="utf-8").read())
        try:
            candidates = [e for group in groups.values() if logsource_accepts(rule, group[0].fields) for e in group]
            for event in candidates:
                if rule_matches(rule, event.fields):
                    slow[loaded.info.rule_id] += 1
                    slow_keys.setdefault(loaded.info.rule_id, set()).add(_key(event))
        except Skip:
            skipped += 1
            fast.pop(loaded.info.rule_id, None)
            fast_keys.pop(loaded.info.rule_id, None)
            continue
        checked += 1
    print(f"\nreference check: {checked} rules compared, {skipped} skipped, {len(events)} events, "
          f"{sum(slow.values())} matches")
    assert checked > 2000
    assert sum(slow.values()) > 100, "the sample should exercise many rules"
    differ = {
        rid: (fast.get(rid, 0), slow.get(rid, 0))
        for rid in set(fast) | set(slow)
        if fast_keys.get(rid, set()) != slow_keys.get(rid, set())
    }
    assert not differ, f"engine and reference disagree (rule: engine, reference): {differ}"

"""The built-in content pack: every rule and correlation fires on its positive samples with exactly the
expected evidence records, and stays silent on its near misses (table: svchunt/content/test_cases.yml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, shared

from svchunt.content import ALLOWLISTS_DIR, builtin_rule_paths
from svchunt.engine.hunt import HuntOptions, run_hunt
from svchunt.model import item_fields
from svchunt.rules.allowlists import load_allowlists
from svchunt.rules.coverage import BRIEF_IDS, load_test_cases
from svchunt.rules.loader import RuleSet, load_rules
from svchunt.sources import iter_events

CASES = load_test_cases()
CONTENT_FIXTURES = FIXTURES / "content"


@lru_cache(maxsize=1)
def _pack() -> RuleSet:
    return load_rules([str(p) for p in builtin_rule_paths()], allowlists=load_allowlists(), use_cache=False)


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[str, str]]:
    """rule name -> (file, kind) for every detection rule and correlation in the pack."""
    out: dict[str, tuple[str, str]] = {}
    pack = _pack()
    for rule in pack.rules:
        out[rule.info.name or rule.info.rule_id] = (rule.info.path or "", "detection")
    for path, doc in pack.correlation_docs:
        out[str(doc.get("name") or doc.get("id"))] = (path, "correlation")
    return out


@lru_cache(maxsize=64)
def _ruleset_for_file(path: str) -> RuleSet:
    return load_rules([path], allowlists=load_allowlists(), use_cache=False)


@lru_cache(maxsize=64)
def _without_consumers(name: str) -> RuleSet:
    """The pack without the correlations that chain on `name`: an inner correlation's own alerts are
    suppressed by its consumer's `generate: false`, yet its hits must be testable on their own."""
    pack = _pack()
    consumers = {name}
    changed = True
    while changed:
        changed = False
        for _, doc in pack.correlation_docs:
            refs = set((doc.get("correlation") or {}).get("rules") or [])
            doc_name = str(doc.get("name") or doc.get("id"))
            if refs & consumers and doc_name not in consumers and doc_name != name:
                consumers.add(doc_name)
                changed = True
    consumers.discard(name)
    docs = [(path, doc) for path, doc in pack.correlation_docs if str(doc.get("name") or doc.get("id")) not in consumers]
    return RuleSet(rules=pack.rules, correlation_docs=docs, refused=list(pack.refused), files=pack.files)


def _sample_path(sample: str) -> str:
    kind, _, rest = sample.partition(":")
    if kind == "eas":
        return str(shared("evtx-attack-samples", *rest.split("/")))
    if kind == "fixture":
        path = CONTENT_FIXTURES / rest
        if not path.is_file():
            path = FIXTURES / "benign" / rest  # the benign corpus also holds near misses
        assert path.is_file(), f"missing fixture {rest}"
        return str(path)
    raise AssertionError(f"unknown sample kind in {sample!r}")


@lru_cache(maxsize=256)
def _evidence(rule: str, samples: tuple[str, ...]) -> frozenset[int]:
    """EventRecordIDs in the evidence of every alert the named rule raises over the samples."""
    path, kind = _index()[rule]
    paths = [_sample_path(s) for s in samples]
    if kind == "detection":  # its own file only, so that no correlation's `generate: false` hides it
        ruleset = _ruleset_for_file(path)
        options = HuntOptions(paths=paths, rule_paths=[path], builtin=False, workers=1, use_cache=False)
    else:
        ruleset = _without_consumers(rule)
        options = HuntOptions(paths=paths, workers=1, use_cache=False)
    result = run_hunt(options, ruleset=ruleset)
    assert not result.refused, result.refused
    assert not result.problems, result.problems
    return frozenset(
        e.record_id for a in result.alerts if (a.rule.name or a.rule.rule_id) == rule for e in a.evidence
    )


def _case_id(case: dict) -> str:
    return f"{case['rule']}@{'+'.join(s.split('/')[-1] for s in case['samples'])}"


def test_table_names_every_rule_with_a_positive_and_a_negative_case():
    names = set(_index())
    positives = {c["rule"] for c in CASES["positives"]}
    negatives = {c["rule"] for c in CASES["negatives"]}
    assert positives - names == set(), "positive cases for rules that do not exist"
    assert negatives - names == set(), "negative cases for rules that do not exist"
    assert names - positives == set(), "rules without a positive case"
    assert names - negatives == set(), "rules without a negative case"


@pytest.mark.parametrize("case", CASES["positives"], ids=_case_id)
def test_positive(case):
    got = _evidence(case["rule"], tuple(case["samples"]))
    assert sorted(got) == sorted(case["expect"])


@pytest.mark.parametrize("case", CASES["negatives"], ids=_case_id)
def test_negative(case):
    near = set(case["near_miss"])
    assert near, "a negative case must name the near-miss records"
    present = {
        e.record_id
        for e in iter_events([_sample_path(s) for s in case["samples"]])
        if hasattr(e, "record_id")
    }
    assert near <= present, f"near-miss records {sorted(near - present)} are not in the samples"
    got = _evidence(case["rule"], tuple(case["samples"]))
    assert not (got & near), f"fired on near misses {sorted(got & near)}"


def test_pack_loads_without_refusals():
    from svchunt.correlate.load import load_correlations

    pack = _pack()
    assert pack.refused == []
    correlations, refused = load_correlations(pack.correlation_docs, pack.infos)
    assert refused == []
    assert len(correlations) == len(pack.correlation_docs)


def _no_duplicate_keys_loader():
    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:  # YAML keeps the last one silently: a lost detection condition
                raise AssertionError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


@pytest.mark.parametrize("path", builtin_rule_paths(), ids=lambda p: p.name)
def test_rule_file_has_no_duplicate_keys(path: Path):
    list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_no_duplicate_keys_loader()))


def test_rule_metadata_and_routing():
    known = set(BRIEF_IDS)
    for rule in _pack().rules:
        info = rule.info
        assert info.title and info.description and info.falsepositives, info.rule_id
        assert info.name, f"{info.rule_id}: rules need a name (correlations reference them)"
        assert info.techniques, f"{info.name}: no ATT&CK technique tag"
        assert info.covers and set(info.covers) <= known, f"{info.name}: covers {info.covers}"
        # routable: every route names an EventID set, or a channel (documented non-standard inputs)
        for route in rule.compiled.routes:
            assert route.event_ids or route.channel, f"{info.name}: unroutable {route}"
    for path, doc in _pack().correlation_docs:
        covers, claims, contributes = item_fields(doc.get("covers"), doc.get("claims"), doc.get("contributes_to"))
        assert covers and set(covers) <= known, path
        assert doc.get("name"), path


# Site-specific lists that ship empty: svchunt cannot know a site's administrators.
EMPTY_BY_DEFAULT = {"svchunt_admin_accounts", "svchunt_admin_hosts"}


def test_allowlists_are_referenced_and_readable():
    texts = "\n".join(p.read_text(encoding="utf-8") for p in builtin_rule_paths())
    lists = load_allowlists()
    for path in ALLOWLISTS_DIR.glob("*.txt"):
        assert f"%{path.stem}%" in texts, f"{path.name} is not used by any rule"
        if path.stem in EMPTY_BY_DEFAULT:
            assert lists.get(path.stem) == [], f"{path.name} must ship empty"
        else:
            assert lists.get(path.stem), f"{path.name} is empty"


def test_user_allowlist_extends_a_known_good_list(tmp_path):
    """A tuning file silences a service the built-in lists would flag (installers running from Temp)."""
    tuning = tmp_path / "tuning.yml"
    tuning.write_text(
        "svchunt_known_good_service_images: ['c:\\\\windows\\\\temp\\\\setup\\\\install.bat']\n"
    )
    path, _ = _index()["svc_install_windows_folder_system"]
    sample = str(CONTENT_FIXTURES / "service_installs.jsonl")
    base = load_rules([path], allowlists=load_allowlists(), use_cache=False)
    tuned = load_rules([path], allowlists=load_allowlists([str(tuning)]), use_cache=False)
    opts = HuntOptions(paths=[sample], rule_paths=[path], builtin=False, workers=1, use_cache=False)
    before = {a.evidence[0].record_id for a in run_hunt(opts, ruleset=base).alerts}
    after = {a.evidence[0].record_id for a in run_hunt(opts, ruleset=tuned).alerts}
    assert 207 in before and 207 not in after
    assert before - after == {207}

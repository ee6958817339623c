"""`svchunt coverage`: every brief item is covered, the table names rules, techniques, checks and samples."""

from __future__ import annotations

import json

from click.testing import CliRunner

from svchunt.cli.main import cli
from svchunt.model import RuleInfo
from svchunt.rules.coverage import BRIEF_IDS, build_coverage, unknown_covers
from svchunt.rules.coverage import tested_samples as samples_by_rule


def _run(*args: str):
    return CliRunner().invoke(cli, ["coverage", *args])


def test_every_brief_item_is_covered_by_a_rule_or_an_audit_check():
    result = _run("--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    items = {row["item"]: row for row in doc["items"]}
    assert list(items) == list(BRIEF_IDS)
    assert doc["uncovered"] == [] and doc["unknown_covers"] == {} and doc["refused"] == []
    for item, row in items.items():
        assert row["covered"], item
        if not item.startswith("M"):  # log-observable items need a real rule, tested somewhere
            assert row["rules"], f"{item} has no rule"
            assert row["techniques"], f"{item} has no ATT&CK technique"
            assert row["tested_on"], f"{item} is not tested on any sample"
    assert items["M1047"]["audit_checks"] and not items["M1047"]["rules"]
    assert any(r["kind"] == "correlation" for r in items["PT-CR-778"]["rules"])
    assert any(s.startswith("eas:") for s in items["PT-CR-1981"]["tested_on"])


def test_without_the_builtin_pack_items_are_reported_uncovered():
    result = _run("--no-builtin", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert "PT-CR-217" in doc["uncovered"] and "M1047" not in doc["uncovered"]
    assert "PT-CR-257" not in doc["uncovered"]  # an audit check covers it even without rules


def test_extra_rules_count_towards_coverage(tmp_path):
    rule = tmp_path / "mine.yml"
    rule.write_text(
        "title: t\nid: 11111111-2222-4333-8444-555555555555\nname: mine\nstatus: test\n"
        "covers: [PT-CR-257, NOT-AN-ITEM]\ntags: [attack.t1543.003]\n"
        "logsource: {product: windows, service: system}\n"
        "detection: {sel: {EventID: 7045}, condition: sel}\nlevel: low\n"
    )
    result = _run("--no-builtin", "--rules", str(rule), "--json")
    doc = json.loads(result.stdout)
    row = next(r for r in doc["items"] if r["item"] == "PT-CR-257")
    assert [r["name"] for r in row["rules"]] == ["mine"] and row["techniques"] == ["T1543.003"]
    assert doc["unknown_covers"] == {"11111111-2222-4333-8444-555555555555": ["NOT-AN-ITEM"]}


def test_build_coverage_joins_rules_checks_and_samples():
    info = RuleInfo(rule_id="r1", title="t", tags=("attack.t1569.002",), covers=("PT-CR-523",), name="smb")
    cases = {"positives": [{"rule": "smb", "samples": ["fixture:a.jsonl", "fixture:a.jsonl", "eas:x.evtx"]}]}
    rows = {r.item: r for r in build_coverage([(info, "detection")], {"check": ("M1047",)}, cases)}
    assert rows["PT-CR-523"].tested_on == ["fixture:a.jsonl", "eas:x.evtx"]
    assert rows["PT-CR-523"].techniques == ["T1569.002"]
    assert rows["M1047"].audit_checks == ["check"] and rows["M1047"].covered
    assert not rows["PT-CR-257"].covered
    assert samples_by_rule(cases) == {"smb": ["fixture:a.jsonl", "eas:x.evtx"]}
    assert unknown_covers([info]) == {}


def test_markdown_table_lists_every_item():
    result = _run("--markdown")
    assert result.exit_code == 0
    lines = [
        line for line in result.output.splitlines() if line.startswith("| ") and not line.startswith("| Item")
    ]
    assert [line.split(" | ")[0][2:] for line in lines] == list(BRIEF_IDS)


def test_rows_name_the_item_in_words_and_tell_claims_from_building_blocks():
    doc = json.loads(_run("--json").output)
    items = {row["item"]: row for row in doc["items"]}
    assert items["PT-CR-589"]["title"] == "Sysinternals PsExec remote execution"
    roles = {r["name"]: r["role"] for r in items["PT-CR-589"]["rules"]}
    assert roles["svc_install_psexec_system"] == "claims"
    assert roles["share_admin_executable_write"] == "contributes"  # an ADMIN$ write is no PsExec verdict
    for item, row in items.items():
        if not item.startswith("M"):  # every log-observable item has rules whose alerts assert it
            assert row["claimed"], f"{item} is only built from building blocks"
    markdown = _run("--markdown").output
    assert "| PT-CR-589 | Sysinternals PsExec remote execution |" in markdown
    assert "`share_admin_executable_write` (building block)" in markdown

"""Rule loading through the command line: a missing `--rules` path is a usage error, a broken YAML rule
is named with its line and column, `hunt --strict` refuses to run on any refused rule, and `rules check`
says per rule whether the SQL back end runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import REPO

EXAMPLES = REPO / "examples"
GOOD = """title: Test service PSEXESVC
id: 6d1c0f3e-2222-4a6b-9c1d-000000000001
status: test
logsource: {product: windows, service: system}
detection:
    selection: {EventID: 7045, ServiceName: 'PSEXESVC'}
    condition: selection
level: high
"""
BROKEN = """title: Broken
id: 6d1c0f3e-2222-4a6b-9c1d-000000000002
detection:
    selection: {EventID: 7045
    condition: selection
"""
CIDR = """title: From the lab network
id: 6d1c0f3e-2222-4a6b-9c1d-000000000003
status: test
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4624, IpAddress|cidr: '10.0.0.0/8'}
    condition: selection
level: low
"""


def svchunt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svchunt.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "300"}, timeout=300)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "good.yml").write_text(GOOD)
    (folder / "broken.yml").write_text(BROKEN)
    (folder / "cidr.yml").write_text(CIDR)
    return folder


@pytest.mark.parametrize("command", [
    ["hunt", str(EXAMPLES), "--rules", "/typo/rules"],
    ["watch", str(EXAMPLES), "--once", "--rules", "/typo/rules"],
    ["rules", "check", "/typo/rules"],
    ["coverage", "--rules", "/typo/rules"],
])
def test_a_rules_path_that_does_not_exist_is_a_usage_error(command, tmp_path):
    r = svchunt(*command, *(["--state", str(tmp_path / "s")] if command[0] == "watch" else []))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "/typo/rules" in r.stderr and "does not exist" in r.stderr


def test_a_broken_yaml_rule_is_named_with_line_and_column(rules, tmp_path):
    r = svchunt("rules", "check", str(rules), "--json")
    assert r.returncode == 0, r.stderr
    refused = {Path(x["path"]).name: x["reason"] for x in orjson.loads(r.stdout)["refused"]}
    assert list(refused) == ["broken.yml"]
    # libyaml and PyYAML word the problem differently; both point at line 5 (the unclosed mapping's end)
    assert re.fullmatch(r"not valid YAML at line 5, column \d+: .*'}'.* \(while parsing a flow mapping\)",
                        refused["broken.yml"])
    # hunt goes on with the rules that loaded, and names the broken one in its summary
    r = svchunt("hunt", str(EXAMPLES), "--no-builtin", "--rules", str(rules), "--jsonl", str(tmp_path / "a.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "broken.yml" in r.stdout and "not valid YAML at line 5, column" in r.stdout
    assert (tmp_path / "a.jsonl").read_bytes()


def test_hunt_strict_refuses_to_run_on_a_refused_rule(rules, tmp_path):
    out = tmp_path / "a.jsonl"
    r = svchunt("hunt", str(EXAMPLES), "--rules", str(rules), "--strict", "--jsonl", str(out))
    assert r.returncode == 2 and not out.exists()
    assert "--strict: 1 rule(s) refused" in r.stderr and "broken.yml" in r.stderr and "line 5, column" in r.stderr
    (rules / "broken.yml").unlink()
    r = svchunt("hunt", str(EXAMPLES), "--rules", str(rules), "--strict", "--jsonl", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()


def test_rules_check_says_which_rules_run_on_sql(rules):
    (rules / "broken.yml").unlink()
    r = svchunt("rules", "check", str(rules), "--json")
    report = orjson.loads(r.stdout)
    by_name = {Path(x["path"]).name: (x["sql"], x["sql_reason"]) for x in report["rules"]}
    assert by_name == {"good.yml": (True, None), "cidr.yml": (False, "Cidr has no portable SQL form")}
    assert report["rules_on_sql"] == 1
    text = svchunt("rules", "check", str(rules)).stdout
    assert "SQL back end: 1 of 2 loaded rules run on SQL" in text and "From the lab network" in text

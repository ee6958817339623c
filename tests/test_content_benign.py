"""Ordinary administration that touches services (tests/fixtures/benign, one file per scenario): the
default pack claims no attack tool and raises nothing above `low` on any of it. An administrator's PsExec
is PsExec: it is claimed as such by default and silenced by the site's allowlist (account, host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from svchunt.engine.hunt import HuntOptions, run_hunt
from svchunt.model import LEVEL_RANK

BENIGN = FIXTURES / "benign"
TOOL_ITEMS = {
    "PT-CR-589", "PT-CR-226", "PT-CR-523", "PT-CR-752", "PT-CR-1356", "PT-CR-1363", "PT-CR-1838",
    "PT-CR-1355", "PT-CR-217", "PT-CR-2632",
}  # fmt: skip
ALLOWLIST = str(BENIGN / "admin_allowlist.yml")
SCENARIOS = sorted(p.name for p in BENIGN.glob("*.jsonl"))


def _hunt(name: str, allowlists: list[str] | None = None):
    result = run_hunt(HuntOptions(paths=[str(BENIGN / name)], allowlists=allowlists or [], workers=1, use_cache=False))
    assert not result.problems and not result.refused
    assert result.stats.records_read > 5
    return result


def test_every_scenario_has_its_file():
    assert SCENARIOS == sorted([
        "admin_psexec.jsonl", "agent_service_dacl.jsonl", "defender_platform_update.jsonl", "msi_service_install.jsonl",
        "pdq_deploy.jsonl", "pnputil_vendor_driver.jsonl", "scanner_temp_service.jsonl", "sccm_client_push.jsonl",
    ])  # fmt: skip


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "admin_psexec.jsonl"])
def test_benign_scenario_claims_no_tool_and_stays_low(name: str):
    alerts = _hunt(name).alerts
    tools = sorted({(a.rule.name, i) for a in alerts for i in a.rule.claims if i in TOOL_ITEMS})
    above = sorted({(a.rule.name, a.rule.level) for a in alerts if LEVEL_RANK[a.rule.level] > LEVEL_RANK["low"]})
    assert tools == [] and above == []


def test_admin_psexec_is_psexec_until_the_site_allowlists_it():
    default = _hunt("admin_psexec.jsonl").alerts
    claimed = {i for a in default for i in a.rule.claims}
    assert {"PT-CR-589", "PT-CR-217"} <= claimed
    assert claimed & TOOL_ITEMS == {"PT-CR-589", "PT-CR-217"}  # PsExec, and no other tool
    assert all("allowlist" in " ".join(a.rule.falsepositives) or "svchunt_admin" in " ".join(a.rule.falsepositives)
               for a in default if set(a.rule.claims) & TOOL_ITEMS)
    tuned = _hunt("admin_psexec.jsonl", [ALLOWLIST]).alerts
    assert tuned, "generic evidence of the remote service stays (low)"
    assert not {i for a in tuned for i in a.rule.claims} & TOOL_ITEMS
    assert max(LEVEL_RANK[a.rule.level] for a in tuned) <= LEVEL_RANK["low"]


def test_allowlisting_only_the_account_leaves_what_names_no_account(tmp_path: Path):
    """System 7045 and Sysmon on the target name no account: an account-only allowlist silences the
    4697, 5145 and source-side alerts, not those; documented in the rules' false-positive text."""
    accounts = tmp_path / "accounts.yml"
    accounts.write_text("svchunt_admin_accounts: ['adm-deploy']\n")
    left = {a.rule.name for a in _hunt("admin_psexec.jsonl", [str(accounts)]).alerts if set(a.rule.claims) & TOOL_ITEMS}
    assert "svc_install_psexec_security" not in left and "share_psexec_pipe" not in left
    assert "proc_psexec_client" not in left and "reg_psexec_eula_accepted" not in left
    assert {"svc_install_psexec_system", "proc_psexesvc_started"} <= left


def test_an_allowlist_for_another_admin_silences_nothing(tmp_path: Path):
    other = tmp_path / "other.yml"
    other.write_text("svchunt_admin_accounts: ['adm-other']\nsvchunt_admin_hosts: ['JUMP07']\n")
    before = {a.alert_id for a in _hunt("admin_psexec.jsonl").alerts}
    after = {a.alert_id for a in _hunt("admin_psexec.jsonl", [str(other)]).alerts}
    assert before == after

"""Incidents: alerts grouped per host into attack stories (svchunt.correlate.incidents).

Membership is asserted on the example logs we ship (one story per attack there) and on the shared real
EVTX samples (one tool run on one host is one incident); the grouping's invariants (every alert in exactly
one incident, independent of order, deterministic ids) are checked as properties with hypothesis.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from conftest import REPO, shared
from hypothesis import given, settings
from hypothesis import strategies as st

from svchunt.correlate.incident_keys import alert_keys, command_key
from svchunt.correlate.incidents import build_incidents
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.model import Alert, Evidence, RuleInfo


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset(HuntOptions(paths=[]))


def _hunt(ruleset, *paths):
    return run_hunt(HuntOptions(paths=[str(p) for p in paths], workers=1), ruleset).alerts


def _rule(rule_id: str, level: str = "medium", claims: tuple[str, ...] = ()) -> RuleInfo:
    return RuleInfo(rule_id=rule_id, title=f"rule {rule_id}", level=level, claims=claims, covers=claims)


def _alert(n: int, ts: str, host: str = "WS1", rule: RuleInfo | None = None, **fields) -> Alert:
    return Alert(
        rule=rule or _rule(f"r{n}"),
        timestamp=ts,
        computer=host,
        evidence=[Evidence("log.jsonl", n, fields.get("EventID"), fields.get("Channel"), ts, line=n)],
        fields={"Computer": host, **fields},
    )


def _membership(incidents) -> set[frozenset[str]]:
    return {frozenset(i.alert_ids) for i in incidents}


# ---------------------------------------------------------------- the example logs in examples/
def test_examples_one_incident_per_attack(ruleset):
    alerts = _hunt(ruleset, REPO / "examples")
    incidents = build_incidents(alerts)
    by_id = {a.alert_id: a for a in alerts}

    def story(host: str, *, service: str | None = None) -> frozenset[str]:
        """The alerts of one attack, picked by host and, where the host had two attacks, by service."""
        out = set()
        for a in alerts:
            if a.computer != host:
                continue
            names = {str(a.fields.get("ServiceName") or "").lower(), str(a.fields.get("path") or "")}
            if service is None or service in names or (service == "updatersvc" and a.kind == "correlation"):
                out.add(a.alert_id)
        return frozenset(out)

    expected = {
        story("FS01.corp.example.org"),  # PsExec: ADMIN$ copy, svcctl, 7045, Sysmon 13/1/17 — all 20 alerts
        story("APP07.corp.example.org", service="btobto"),  # Impacket smbexec
        story("APP07.corp.example.org", service="updatersvc"),  # service planted in C:\Users\Public (+ burst)
        story("WS12.corp.example.org", service="ahxkrbwq"),  # Cobalt Strike-style ADMIN$ service
        story("WS12.corp.example.org", service="gigabyte driver"),  # driver from a temp folder
    }
    assert len(story("FS01.corp.example.org")) == 20
    assert _membership(incidents) == expected
    assert sum(len(i.alert_ids) for i in incidents) == len(alerts)

    titles = {i.host.split(".")[0]: [] for i in incidents}
    for inc in incidents:
        titles[inc.host.split(".")[0]].append(inc.title)
    psexec = next(i for i in incidents if i.host.startswith("FS01"))
    assert psexec.title == (
        "Sysinternals PsExec remote execution from 10.20.4.17 (WS12) as CORP\\helpdesk.adm: service PSEXESVC"
    )
    assert psexec.level == "high" and psexec.sources["addresses"] == ["10.20.4.17"]
    assert "WS12" in psexec.sources["workstations"] and psexec.services == ["PSEXESVC"]
    assert {"T1543.003", "T1569.002", "T1021.002"} <= set(psexec.techniques)
    assert any(t.startswith("Impacket smbexec") for t in titles["APP07"])
    # Most severe first, then earliest: the two critical incidents lead.
    assert [i.level for i in incidents] == ["critical", "critical", "high", "high", "medium"]
    assert incidents[0].start < incidents[1].start
    # The burst correlation (an aggregate) joined the UpdaterSvc story but did not pull the smbexec one in.
    planted = next(i for i in incidents if "UpdaterSvc" in i.services)
    assert {by_id[a].kind for a in planted.alert_ids} == {"detection", "correlation"}
    assert planted.title.startswith("Windows service installed outside system folders")


# ---------------------------------------------------------------- real attack samples
SINGLE_TOOL = (
    "Lateral Movement/LM_renamed_psexecsvc_5145.evtx",  # PsExec, renamed service, seen in 5145
    "Lateral Movement/remote_file_copy_system_proc_file_write_sysmon_11.evtx",  # PSEXESVC copied and run
    "Lateral Movement/LM_REMCOM_5145_TargetHost.evtx",  # RemCom, three runs from one source
    "Lateral Movement/LM_5145_Remote_FileCopy.evtx",  # two files copied to ADMIN$ by one session
    "Defense Evasion/DE_renamed_psexec_service_sysmon_17_18.evtx",  # PsExec -r svchost: both pipe ends
    "Privilege Escalation/sysmon_privesc_psexec_dwell.evtx",  # PsExec -s locally: client, pipes, service
    "Privilege Escalation/privesc_unquoted_svc_sysmon_1_11.evtx",  # C:\program.exe dropped and started
    "Privilege Escalation/sysmon_13_1_meterpreter_getsystem_NamedPipeImpersonation.evtx",
    "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",  # sc create, ImagePath, service runs
)


@pytest.mark.parametrize("sample", SINGLE_TOOL)
def test_single_tool_sample_is_one_incident_per_host(ruleset, sample):
    path = shared("evtx-attack-samples", *sample.split("/"))
    alerts = _hunt(ruleset, path)
    assert len(alerts) >= 2, "the sample must give several alerts for this test to mean anything"
    incidents = build_incidents(alerts)
    hosts = {(a.computer or "").lower() for a in alerts}
    assert len(incidents) == len(hosts) == 1, [i.title for i in incidents]
    assert sorted(incidents[0].alert_ids) == sorted(a.alert_id for a in alerts)


def test_psexec_sample_title_names_tool_source_and_account(ruleset):
    path = shared("evtx-attack-samples", "Lateral Movement", "LM_renamed_psexecsvc_5145.evtx")
    (inc,) = build_incidents(_hunt(ruleset, path))
    assert inc.title == "Sysinternals PsExec remote execution from 10.0.2.16 (NLLT108334) as IEWIN7\\IEUser"
    assert inc.sources["workstations"] == ["NLLT108334"]  # from the PsExec pipe names <svc>-<host>-<pid>


def test_separate_services_on_one_host_stay_apart(ruleset):
    # Three services (spoolfool, spoolsv, remotesvc) created at different times with nothing shared.
    path = shared("evtx-attack-samples", "Lateral Movement", "LM_Remote_Service02_7045.evtx")
    incidents = build_incidents(_hunt(ruleset, path))
    assert sorted(s.lower() for i in incidents for s in i.services) == ["remotesvc", "spoolfool", "spoolsv"]
    assert all(len(i.services) == 1 for i in incidents)


# ---------------------------------------------------------------- keys and gaps
def test_spellings_of_one_binary_join():
    copy = _alert(1, "2024-01-01T10:00:00.000000Z", EventID=5145, Channel="Security",
                  ShareName="\\\\*\\ADMIN$", ShareLocalPath="\\??\\C:\\Windows", RelativeTargetName="EVIL.exe")
    install = _alert(2, "2024-01-01T10:00:01.000000Z", EventID=7045, Channel="System",
                     ServiceName="X1", ImagePath="%SystemRoot%\\evil.exe")
    run = _alert(3, "2024-01-01T10:00:02.000000Z", EventID=1, Channel="Microsoft-Windows-Sysmon/Operational",
                 Image="C:\\WINDOWS\\Evil.EXE", ParentImage="C:\\Windows\\System32\\services.exe")
    other = _alert(4, "2024-01-01T10:00:03.000000Z", EventID=7045, Channel="System",
                   ServiceName="other", ImagePath="C:\\Windows\\good.exe")
    incidents = build_incidents([copy, install, run, other])
    assert _membership(incidents) == {
        frozenset({copy.alert_id, install.alert_id, run.alert_id}),
        frozenset({other.alert_id}),
    }  # fmt: skip


def test_service_name_case_and_quotes_join_and_hosts_never_do():
    a = _alert(1, "2024-01-01T10:00:00.000000Z", EventID=7045, ServiceName="UpdSvc")
    b = _alert(2, "2024-01-01T10:05:00.000000Z", EventID=13,
               TargetObject="HKLM\\System\\CurrentControlSet\\Services\\updsvc\\ImagePath")
    c = _alert(3, "2024-01-01T10:06:00.000000Z", EventID=7036, param1='"UPDSVC"')
    elsewhere = _alert(4, "2024-01-01T10:00:00.000000Z", host="WS2", EventID=7045, ServiceName="UpdSvc")
    incidents = build_incidents([a, b, c, elsewhere])
    assert _membership(incidents) == {frozenset({a.alert_id, b.alert_id, c.alert_id}), frozenset({elsewhere.alert_id})}


def test_hub_processes_and_machine_logons_do_not_glue():
    # Two unrelated services started by services.exe, both as SYSTEM (logon 0x3e7), minutes apart.
    common = {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "LogonId": "0x3e7",
              "ParentImage": "C:\\Windows\\System32\\services.exe", "ParentProcessId": 600,
              "ParentProcessGuid": "{11111111-0000-0000-0000-000000000001}"}  # fmt: skip
    a = _alert(1, "2024-01-01T10:00:00.000000Z", Image="C:\\Windows\\System32\\cmd.exe",
               CommandLine="cmd.exe /c whoami", ProcessGuid="{aa}", **common)
    b = _alert(2, "2024-01-01T10:02:00.000000Z", Image="C:\\Windows\\System32\\cmd.exe",
               CommandLine="cmd.exe /c ipconfig", ProcessGuid="{bb}", **common)
    assert len(build_incidents([a, b])) == 2


def test_shell_service_joins_the_process_it_starts():
    # smbexec-like: the service's whole command line is what services.exe runs.
    svc = _alert(1, "2024-01-01T10:00:00.000000Z", EventID=7045, ServiceName="BTOBTO",
                 ImagePath="%COMSPEC% /Q /c echo whoami ^> \\\\127.0.0.1\\C$\\__output")
    proc = _alert(2, "2024-01-01T10:00:01.000000Z", EventID=1, Channel="Microsoft-Windows-Sysmon/Operational",
                  Image="C:\\Windows\\System32\\cmd.exe", ParentImage="C:\\Windows\\System32\\services.exe",
                  CommandLine="C:\\Windows\\system32\\cmd.exe /Q /c echo whoami ^> \\\\127.0.0.1\\C$\\__output")
    assert len(build_incidents([svc, proc])) == 1
    assert command_key("%COMSPEC% /c x") == command_key('"C:\\Windows\\System32\\cmd.exe"  /C  X')


def test_gap_splits_one_key_over_time_but_chains_join():
    base = dict(EventID=7045, ServiceName="svc1")
    early = _alert(1, "2024-01-01T10:00:00.000000Z", **base)
    late = _alert(2, "2024-01-01T13:00:01.000000Z", **base)  # 3 h later: beyond the 2 h service gap
    assert len(build_incidents([early, late])) == 2
    middle = _alert(3, "2024-01-01T11:30:00.000000Z", **base)  # 1.5 h from each: one chain
    assert len(build_incidents([early, middle, late])) == 1


def test_aggregate_correlation_attaches_without_merging():
    a = _alert(1, "2024-01-01T10:00:00.000000Z", EventID=7045, ServiceName="one")
    b = _alert(2, "2024-01-01T10:01:00.000000Z", EventID=7045, ServiceName="two")
    burst = Alert(
        rule=_rule("burst", "low", ("PT-CR-523",)), timestamp=a.timestamp, computer="WS1",
        evidence=[a.evidence[0], b.evidence[0], b.evidence[0]], fields={"count": 3, "Computer": "WS1"},
        kind="correlation", group={"Computer": "WS1"}, extra={"correlation_type": "event_count"},
    )  # fmt: skip
    incidents = build_incidents([a, b, burst])
    assert len(incidents) == 2
    holder = next(i for i in incidents if burst.alert_id in i.alert_ids)
    assert b.alert_id in holder.alert_ids  # most of its evidence is there
    other = next(i for i in incidents if i is not holder)
    assert holder.related == [other.incident_id] and other.related == [holder.incident_id]
    # An aggregate names no incident: "three installs in 5 minutes" does not make them Impacket.
    assert "Impacket" not in holder.title
    temporal = replace(burst, extra={"correlation_type": "temporal_ordered"})
    assert len(build_incidents([a, b, temporal])) == 1  # a temporal chain does say they are one story


def test_title_prefers_a_narrow_tool_claim_and_skips_informational():
    vague = _rule("v", "high", ("PT-CR-1363", "PT-CR-1356", "PT-CR-226", "PT-CR-589"))
    narrow = _rule("n", "medium", ("PT-CR-589",))
    info = _rule("i", "informational", ("PT-CR-1355",))
    a = _alert(1, "2024-01-01T10:00:00.000000Z", rule=vague, EventID=7045, ServiceName="PSEXESVC")
    b = _alert(2, "2024-01-01T10:00:01.000000Z", rule=narrow, EventID=7045, ServiceName="PSEXESVC")
    c = _alert(3, "2024-01-01T10:00:02.000000Z", rule=info, EventID=7045, ServiceName="PSEXESVC")
    (inc,) = build_incidents([a, b, c])
    assert inc.title == "Sysinternals PsExec remote execution: service PSEXESVC"
    (only_vague,) = build_incidents([a])
    assert only_vague.title.startswith("rule v")  # no narrow claim: the top alert's rule title
    (only_info,) = build_incidents([c])
    assert only_info.title.startswith("rule i") and only_info.level == "informational"


def test_keys_normalise_numbers_and_skip_machine_sessions():
    hexa = _alert(1, "2024-01-01T10:00:00.000000Z", SubjectLogonId="0x5C1E3A2")
    dec = _alert(2, "2024-01-01T10:00:00.000000Z", LogonId=str(0x5C1E3A2))
    system = _alert(3, "2024-01-01T10:00:00.000000Z", SubjectLogonId="0x3e7")
    assert ("logon", "0x5c1e3a2") in alert_keys(hexa) & alert_keys(dec)
    assert not any(kind == "logon" for kind, _ in alert_keys(system))


# ---------------------------------------------------------------- properties
HOSTS = ["WS1", "ws1", "DC01", None]
SERVICES = ["PSEXESVC", "psexesvc", "BTOBTO", "Upd Svc", None]
IPS = ["10.0.0.5", "10.0.0.6", "-", None]
LOGONS = ["0x1a2b", "0x3e7", "6699", None]
IMAGES = ["%SystemRoot%\\PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "C:\\Users\\Public\\x.exe", None]


@st.composite
def alert_sets(draw) -> list[Alert]:
    n = draw(st.integers(min_value=1, max_value=25))
    alerts = []
    for i in range(n):
        fields = {"EventID": draw(st.sampled_from([7045, 5145, 1, 13]))}
        for name, pool in (("ServiceName", SERVICES), ("IpAddress", IPS), ("SubjectLogonId", LOGONS),
                           ("ImagePath", IMAGES)):  # fmt: skip
            value = draw(st.sampled_from(pool))
            if value is not None:
                fields[name] = value
        minute = draw(st.integers(min_value=0, max_value=600))
        ts = None if draw(st.integers(0, 20)) == 0 else f"2024-01-01T{minute // 60:02d}:{minute % 60:02d}:00.000000Z"
        host = draw(st.sampled_from(HOSTS))
        rule = _rule(f"r{draw(st.integers(0, 4))}", draw(st.sampled_from(["low", "high", "critical"])),
                     tuple(draw(st.lists(st.sampled_from(["PT-CR-589", "PT-CR-523", "DS0019.creation"]), max_size=3))))
        alert = _alert(i, ts or "", host=host or "", rule=rule, **fields)
        alert.timestamp, alert.computer = ts, host
        kind = draw(st.sampled_from(["detection", "detection", "event_count", "temporal"]))
        if kind != "detection" and alerts:
            others = draw(st.lists(st.sampled_from(alerts), min_size=1, max_size=3))
            alert.kind, alert.extra = "correlation", {"correlation_type": kind}
            alert.evidence = [e for o in others for e in o.evidence]
        alerts.append(alert)
    return alerts


@settings(max_examples=150, deadline=None)
@given(alert_sets(), st.randoms(use_true_random=False))
def test_every_alert_in_exactly_one_incident_whatever_the_order(alerts, rnd: random.Random):
    incidents = build_incidents(alerts)
    ids = [aid for inc in incidents for aid in inc.alert_ids]
    assert sorted(ids) == sorted({a.alert_id for a in alerts})  # each alert once, none lost
    shuffled = alerts[:]
    rnd.shuffle(shuffled)
    again = build_incidents(shuffled + shuffled[:3])  # order and repeats do not matter
    assert [i.to_dict() for i in again] == [i.to_dict() for i in incidents]
    for inc in incidents:
        assert inc.incident_id.startswith("inc-") and inc.alert_ids
        hosts = {a.computer.lower() for a in inc.alerts if a.kind == "detection" and a.computer}
        assert len(hosts) <= 1  # never two target hosts in one story (host-less alerts are attached)
        assert inc.level == max((a.rule.level for a in inc.alerts), key=["low", "high", "critical"].index)

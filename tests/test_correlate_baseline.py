"""The "new service" baseline and fleet stacking over a DuckDB state file."""

from __future__ import annotations

from test_correlate_support import event, rule, sig

from svchunt.correlate.baseline import ServiceBaseline
from svchunt.model import Signal

INSTALL = rule("service_install_7045")
DAY = 86400.0


def _install(day: float, host: str, name: str, image: str, record: int | None = None) -> Signal:
    return sig(INSTALL, event(day * DAY, source=f"{host}-System.evtx", record=record, Computer=host,
                              EventID=7045, ServiceName=name, ImagePath=image))


def test_first_run_builds_baseline_then_flags_new_services(tmp_path):
    state = str(tmp_path / "state.duckdb")
    with ServiceBaseline(state) as baseline:
        first = baseline.process([_install(0, "HOST1", "Spooler", r"C:\Windows\System32\spoolsv.exe"),
                                  _install(1, "HOST1", "WinDefend", r'"C:\ProgramData\MsMpEng.exe"')])
    assert first.alerts == []
    assert first.notes == ["baseline built for host host1 (2 services); no new-service alerts on a host's first run"]

    with ServiceBaseline(state) as baseline:  # reopened: the history persisted
        second = baseline.process([
            _install(10, "host1", "spooler", r"c:\windows\system32\spoolsv.exe"),  # seen 10 days before
            _install(10, "host1", "evil", r"C:\Users\Public\e.exe", record=500),
            _install(10, "host1", "evil", r"C:\Users\Public\e.exe", record=501),  # same install, second event
            _install(40, "host1", "WinDefend", r"C:\ProgramData\MsMpEng.exe"),  # last seen 39 days before
        ])
    assert [(a.fields["service_name"], len(a.evidence)) for a in second.alerts] == [("evil", 2), ("windefend", 1)]
    assert all(a.kind == "baseline" and a.computer == "host1" for a in second.alerts)
    assert second.notes == []


def test_rerun_of_same_input_is_stable(tmp_path):
    state = str(tmp_path / "s.duckdb")
    day0 = [_install(0, "h", "a", "a.exe")]
    later = [_install(5, "h", "b", "b.exe"), _install(6, "h", "b", "b.exe"), _install(50, "h", "b", "b.exe")]
    with ServiceBaseline(state) as baseline:
        assert baseline.process(day0).alerts == []
        runs = [[a.alert_id for a in baseline.process(later).alerts] for _ in range(2)]
        assert baseline.process(day0).alerts == []  # the first run's period stays baseline
    assert runs[0] == runs[1] and len(runs[0]) == 2  # day 5 (+6 as evidence) and day 50


def test_sysmon_imagepath_and_service_covers(tmp_path):
    reg = rule("registry_service_imagepath")
    custom = type(reg)(rule_id="custom", title="custom", covers=("DS0009.new-service",))
    with ServiceBaseline(None) as baseline:
        baseline.process([_install(0, "h", "x", "x.exe")])
        result = baseline.process([
            sig(reg, event(DAY, EventID=13, Computer="h", Details=r"C:\Temp\Payload.EXE",
                           TargetObject=r"HKLM\System\CurrentControlSet\Services\Updater\ImagePath")),
            sig(custom, event(DAY, Computer="h", ServiceName="other", ImagePathNormalised=r"c:\tools\o.exe")),
            sig(reg, event(DAY, EventID=1, Computer="h", Image="cmd.exe")),  # not a service signal
            sig(INSTALL, event(DAY, EventID=7045, ServiceName="nohost", Computer=None)),
        ])
    found = {(a.fields["service_name"], a.fields["image"]) for a in result.alerts}
    assert found == {("updater", r"c:\temp\payload.exe"), ("other", r"c:\tools\o.exe")}
    assert result.notes == ["1 signal(s) skipped by the baseline: service signal without baseline key: "
                            "no Computer field (rule service_install_7045)"]


def test_fleet_stacking(tmp_path):
    state = str(tmp_path / "fleet.duckdb")
    hosts = [f"h{i}" for i in range(5)]
    common = [_install(0, h, "agent", r"c:\program files\agent\agent.exe") for h in hosts]
    with ServiceBaseline(state, rare_hosts=2) as baseline:
        small = baseline.process(common[:4] + [_install(0, "h0", "odd", r"c:\odd.exe")])
        assert small.alerts == []  # fleet of 4 < 5: no stacking
        result = baseline.process(common[4:] + [_install(1, "h4", "odd", r"c:\odd.exe"),
                                                _install(1, "h3", "rare", r"c:\rare.exe")])
    rare = [a for a in result.alerts if a.rule.rule_id == "svchunt-baseline-rare-image"]
    assert {(a.fields["image"], a.fields["host_count"]) for a in rare} == {(r"c:\odd.exe", 2), (r"c:\rare.exe", 1)}
    assert all(a.fields["fleet_size"] == 5 for a in rare)
    odd = next(a for a in rare if a.fields["image"] == r"c:\odd.exe")
    assert odd.fields["hosts"] == ["h0", "h4"] and odd.computer == "h4"
    assert any("baseline built for host h4" in note for note in result.notes)

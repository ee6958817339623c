"""On lab recordings with no service activity, the built-in content stays quiet.

The OTRF recordings are WMI/MSBuild lateral movement and account backdoors with a domain's
background noise (DFSR, Group Policy, Defender, Sysmon): nothing there installs or hijacks a
service, so any alert from the default pack would be a false positive an analyst has to read.
"""

from __future__ import annotations

from conftest import shared

from svchunt.engine.hunt import HuntOptions, run_hunt


def test_default_pack_raises_nothing_on_otrf_lab_noise():
    otrf = shared("otrf")
    zips = sorted(str(p) for p in otrf.glob("*.zip"))
    result = run_hunt(HuntOptions(paths=zips, workers=1))
    assert result.stats.records_read > 10_000
    assert not result.problems
    assert [(a.rule.title, a.evidence[0].record_id) for a in result.alerts] == []

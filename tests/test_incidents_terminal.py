"""The terminal summary: incidents table first, then the per-alert timeline, then counts and written files."""

from __future__ import annotations

import re
import sys

import pytest
from conftest import FIXTURES, REPO
from rich.console import Console

from svchunt.engine.hunt import HuntOptions, run_hunt
from svchunt.outputs import terminal

sys.path.insert(0, str(FIXTURES / "outputs"))
import synthetic  # noqa: E402


def _render(result, width: int = 220, **kw) -> str:
    console = Console(record=True, width=width, color_system=None)
    terminal.render_summary(result, console, **kw)
    return console.export_text()


@pytest.fixture(scope="module")
def examples():
    return run_hunt(HuntOptions(paths=[str(REPO / "examples")], workers=1))


@pytest.mark.parametrize("width", [80, 220])
def test_incidents_first_then_timeline_with_titles_and_telling_fields(examples, width):
    text = _render(examples, width=width, wrote=[("HTML report", "out/report.html")])
    order = [text.index(t) for t in ("Incidents (5)", "Timeline", "Alerts by level", "Run", "wrote HTML report")]
    assert order == sorted(order)
    incidents = text[: text.index("Timeline")]
    # Most severe first: both critical incidents before the high ones, the medium one last.
    assert incidents.index("Impacket smbexec") < incidents.index("Sysinternals PsExec") < incidents.index(
        "UpdaterSvc"
    )
    assert "10.20.4.17" in incidents and "CORP\\helpdesk.adm" in incidents
    timeline = text[text.index("Timeline") : text.index("Alerts by level")]
    flat = re.sub(r"\s+", "", timeline)  # narrow consoles fold long cells over lines
    # One row per alert, the rule's title (not its id) and the field that tells what happened.
    assert "SysinternalsPsExecnamedpipe" in flat and "5d8e2f31-9a4c" not in timeline
    for telling in ("PipeName:\\PSEXESVC-WS12-4412-stdin", "ImagePath:%SystemRoot%\\PSEXESVC.exe",
                    "RelativeTargetName:\\\\*\\ADMIN$\\PSEXESVC.exe", "TargetFilename:C:\\Windows\\PSEXESVC.exe"):  # fmt: skip
        assert telling in flat, telling
    assert timeline.count("#3") == 20  # every FS01 alert points at the PsExec incident
    assert "out/report.html" in text


def test_timeline_default_limit_and_flags():
    big = synthetic.many_alerts(terminal.TIMELINE_LIMIT + 1, hosts=5)
    text = _render(big, max_rows=5)
    assert "Timeline (" not in text and "--timeline shows it" in text
    forced = _render(big, max_rows=5, timeline=True)
    assert forced.count("WS00") > terminal.TIMELINE_LIMIT  # every alert has its row
    small = synthetic.sample_result()
    assert "Timeline (" in _render(small) and "Timeline (" not in _render(small, timeline=False)


def test_hostile_strings_are_escaped_in_incidents_and_timeline():
    result = synthetic.sample_result()
    esc = "evil\x1b]0;pwned\x07\u202etxt.exe"
    result.alerts[0].fields["ServiceName"] = esc
    result.alerts[0].fields["ImagePath"] = esc
    result.alerts[0].computer = "WS01\x1b[2J"
    text = _render(result)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "evil\\x1b]0;pwned\\x07\\u202etxt.exe" in text  # visible escapes, in the incident and timeline
    assert text.count("evil\\x1b]0;pwned") >= 2
    assert "[link=https://evil.example]click[/link]" in text  # rich markup printed as text


def test_no_alerts_says_so():
    result = synthetic.sample_result()
    result.alerts = []
    text = _render(result)
    assert "No alerts." in text and "Incidents" not in text and re.search(r"incidents\s+0", text)

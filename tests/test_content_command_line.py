"""The command-line parser and the SDDL effect behind the ServiceCommand* fields (unit level)."""

from __future__ import annotations

import base64

import pytest

from svchunt.normalise.command_line import (
    module_log_text,
    parse_powershell,
    parse_process,
    powershell_text,
    split_args,
)
from svchunt.normalise.derived import add_derived, psexec_source_host
from svchunt.normalise.sddl_effect import sddl_effect

SC = "C:\\Windows\\System32\\sc.exe"


def _one(image: str, command: str, original: str | None = None):
    ops = parse_process(image, original, command)
    assert len(ops) == 1, ops
    return ops[0]


@pytest.mark.parametrize("command", [
    "sc config WinDefend start= disabled",
    "sc  config  WinDefend  start=  disabled",
    "SC.EXE CONFIG WinDefend START= DISABLED",
    '"C:\\Windows\\system32\\sc.exe" config "WinDefend" start=disabled',
    "sc config WinDefend start =disabled",
])  # fmt: skip
def test_sc_spellings_give_the_same_operation(command):
    op = _one(SC, command)
    assert (op.tool, op.verb, op.service.lower(), op.start_type) == ("sc", "config", "windefend", "disabled")


def test_sc_remote_host_binpath_and_failure():
    op = _one(SC, 'sc \\\\WS03 config Fax binPath= "cmd.exe /c C:\\a.bat"')
    assert (op.host, op.bin_path) == ("WS03", "cmd.exe /c C:\\a.bat")
    op = _one(SC, 'sc failure Spooler reset= 0 actions= run/1000 command= "C:\\r.exe"')
    assert (op.verb, op.failure_command, op.failure_actions) == ("failure", "C:\\r.exe", "run/1000")
    assert parse_process(SC, None, "sc query Spooler") == []  # queries change nothing


def test_renamed_sc_is_recognised_by_original_file_name():
    assert _one("C:\\Temp\\x.exe", "x.exe config A binpath= c:\\a.exe", "sc.exe").bin_path == "c:\\a.exe"


def test_a_wrapper_is_not_counted_twice():
    """cmd.exe /c sc ... starts sc.exe, whose own event carries the operation."""
    assert parse_process("C:\\Windows\\System32\\cmd.exe", None, "cmd /c sc config X start= disabled") == []


def test_registry_writes_under_services():
    op = _one("C:\\Windows\\System32\\reg.exe",
              'reg add "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Spooler" /v FailureCommand /d C:\\r.exe /f')
    assert (op.verb, op.service, op.reg_value, op.failure_command) == ("set-value", "Spooler", "FailureCommand", "C:\\r.exe")
    op = _one("C:\\Windows\\System32\\reg.exe", "reg add \\\\WS03\\HKLM\\SYSTEM\\ControlSet001\\Services\\X /v Start /t REG_DWORD /d 4")
    assert (op.host, op.start_type) == ("WS03", "disabled")
    assert parse_process("C:\\Windows\\System32\\reg.exe", None, "reg add HKCU\\Software\\X /v Start /d 4") == []


def test_binary_security_descriptor_written_with_reg_is_turned_into_sddl():
    from svchunt.audit.sddl import parse_sddl, to_binary

    blob = to_binary(parse_sddl("D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)")).hex()
    op = _one("C:\\Windows\\System32\\reg.exe",
              f"reg add HKLM\\SYSTEM\\CurrentControlSet\\Services\\X\\Security /v Security /t REG_BINARY /d {blob} /f")
    assert op.sddl == "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)"


def test_powershell_cmdlets_pipelines_aliases_and_encoded_commands():
    ops = parse_powershell("Get-Service WinDefend | Set-Service -StartupType Disabled; Stop-Service -Name Sense", native=False)
    assert [(o.verb, o.service, o.start_type) for o in ops] == [("config", "WinDefend", "disabled"), ("stop", "Sense", None)]
    (op,) = parse_powershell("New-Service upd 'C:\\Users\\Public\\u.exe' -St Automatic", native=False)
    assert (op.verb, op.service, op.bin_path, op.start_type) == ("create", "upd", "C:\\Users\\Public\\u.exe", "auto")
    script = base64.b64encode("Set-Service -Name WinDefend -StartupType Disabled".encode("utf-16-le")).decode()
    assert powershell_text(f"powershell -nop -w hidden -enc {script}") == "Set-Service -Name WinDefend -StartupType Disabled"
    ops = parse_process("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", None, f"powershell -EncodedCommand {script}")
    assert [(o.verb, o.start_type) for o in ops] == [("config", "disabled")]


def test_powershell_command_text_is_not_mistaken_for_switches():
    text = "powershell.exe Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Services\\Fax -Name ImagePath -Value 'cmd /c a.bat'"
    assert powershell_text(text).startswith("Set-ItemProperty")
    (op,) = parse_process("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", None, text)
    assert (op.verb, op.service, op.bin_path) == ("set-value", "Fax", "cmd /c a.bat")


def test_wmi_forms():
    (op,) = parse_powershell("(Get-WmiObject Win32_Service -Filter \"Name='Fax'\").Change($null, 'cmd /c calc.exe')", native=False)
    assert (op.tool, op.verb, op.service, op.bin_path) == ("wmi", "config", "Fax", "cmd /c calc.exe")
    op = _one("C:\\Windows\\System32\\wbem\\WMIC.exe", 'wmic service call create "upd","upd","C:\\ProgramData\\u.exe"')
    assert (op.verb, op.service, op.bin_path) == ("create", "upd", "C:\\ProgramData\\u.exe")
    op = _one("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic /node:WS03 service where name='Sense' call ChangeStartMode Disabled")
    assert (op.host, op.service, op.start_type) == ("WS03", "Sense", "disabled")


def test_module_log_bindings_become_commands():
    text = module_log_text('CommandInvocation(Set-Service): "Set-Service"\r\n'
                           'ParameterBinding(Set-Service): name="Name"; value="WinDefend"\r\n'
                           "ParameterBinding(Set-Service): name=\"StartupType\"; value=\"Disabled\"")
    assert text == "Set-Service -Name 'WinDefend' -StartupType 'Disabled'"


def test_quotes_in_args():
    assert split_args('a "b c" \\"d') == ["a", "b c", '"d']
    assert split_args("a 'b c' 'it''s'", powershell=True) == ["a", "b c", "it's"]


@pytest.mark.parametrize("sddl, effects", [
    ("D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)", {"hidden", "admins-denied"}),
    ("D:(D;;DCLCWPDTSD;;;IU)(D;;DCLCWPDTSD;;;SU)(D;;DCLCWPDTSD;;;BA)(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWRPWPDTLOCRRC;;;SY)"
     "(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)", {"hidden", "admins-denied"}),
    ("D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLOCRRC;;;IU)", set()),
    ("D:(A;;CCLCSWRPLOCRRC;;;BA)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)(A;;CCLCSWLOCRRC;;;IU)", {"admins-denied"}),
    ("D:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;WD)", {"weak"}),
    ("D:NO_ACCESS_CONTROL", {"weak"}),
    ("not an sddl", {"unreadable"}),
])  # fmt: skip
def test_sddl_effect(sddl, effects):
    assert set(sddl_effect(sddl).effects) == effects


def test_derived_fields_on_events():
    event = {"EventID": 4688, "Channel": "Security", "NewProcessName": SC,
             "CommandLine": 'sc  sdset UpdSvc "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)"'}  # fmt: skip
    add_derived(event)
    assert event["ServiceCommandVerb"] == "sdset" and event["ServiceCommandService"] == "UpdSvc"
    assert "hidden" in event["ServiceSddlEffect"] and "administrators" in event["ServiceSddlHiddenFrom"]
    other = {"EventID": 1, "Channel": "svchunt/EDR-API", "Image": SC, "CommandLine": "sc config X start= disabled"}
    add_derived(other)
    assert "ServiceCommandVerb" not in other  # EventID 1 of another channel is not a process creation
    assert psexec_source_host("\\PSEXESVC-WS01-4120-stdin") == "WS01"
    assert psexec_source_host("blabla-NLLT108334-37048-stderr") == "NLLT108334"
    assert psexec_source_host("\\mojo.5688.8052-stdin") is None and psexec_source_host("\\PSEXESVC") is None

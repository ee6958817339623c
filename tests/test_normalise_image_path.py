"""normalise_image_path: every spelling of a service binary -> one lower-case path (detection brief §0)."""

from __future__ import annotations

import pytest

from svchunt.normalise.image_path import executable_part, normalise_image_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # PsExec: environment variable, and Sysmon 13's doubled percent signs
        ("%SystemRoot%\\PSEXESVC.exe", "c:\\windows\\psexesvc.exe"),
        ("%%SystemRoot%%\\PSEXESVC.exe", "c:\\windows\\psexesvc.exe"),
        ("%windir%\\abcdEFGH.exe", "c:\\windows\\abcdefgh.exe"),
        ("%systemroot%\\abcdefgh.exe", "c:\\windows\\abcdefgh.exe"),
        # command lines: the executable only
        ("%COMSPEC% /c ping -n 1 127.0.0.1 > \\\\.\\pipe\\WinPwnagePipe", "c:\\windows\\system32\\cmd.exe"),
        ("%%COMSPEC%% /c echo x", "c:\\windows\\system32\\cmd.exe"),
        (
            "%COMSPEC% /Q /c echo cd ^> \\\\127.0.0.1\\C$\\__output 2^>^&1 > %TEMP%\\execute.bat "
            "& %COMSPEC% /Q /c %TEMP%\\execute.bat & del %TEMP%\\execute.bat",
            "c:\\windows\\system32\\cmd.exe",
        ),
        (
            "%COMSPEC% /b /c start /b /min powershell -nop -w hidden -encodedcommand SQBFAFgA",
            "c:\\windows\\system32\\cmd.exe",
        ),
        ("C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "c:\\windows\\system32\\svchost.exe"),
        ("rundll32.exe C:\\Users\\x\\AppData\\Local\\Temp\\a.dll,a /p:svc", "rundll32.exe"),
        ("powershell.exe -nop -w hidden -enc AAAA", "powershell.exe"),
        ("cmd /c whoami", "cmd"),
        # quoted paths with spaces
        ('"C:\\Program Files\\Vendor App\\agent.exe" --service', "c:\\program files\\vendor app\\agent.exe"),
        ('"C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe" /svc',
         "c:\\program files (x86)\\google\\update\\googleupdate.exe"),
        ('"C:\\unterminated\\path.exe', "c:\\unterminated\\path.exe"),
        # unquoted paths with spaces: up to the first executable ending
        ("C:\\Program Files\\Vendor App\\agent.exe -k run", "c:\\program files\\vendor app\\agent.exe"),
        ("C:\\Program Files\\Vendor App\\agent.exe", "c:\\program files\\vendor app\\agent.exe"),
        ("%ProgramFiles%\\My Tool\\svc.exe /run", "c:\\program files\\my tool\\svc.exe"),
        ("%ProgramData%\\Microsoft\\Windows Defender\\Platform\\4.18\\MsMpEng.exe",
         "c:\\programdata\\microsoft\\windows defender\\platform\\4.18\\msmpeng.exe"),
        # kernel and NT-style paths
        ("\\SystemRoot\\System32\\drivers\\evil.sys", "c:\\windows\\system32\\drivers\\evil.sys"),
        ("SystemRoot\\System32\\drivers\\npf.sys", "c:\\windows\\system32\\drivers\\npf.sys"),
        ("System32\\drivers\\RTCore64.sys", "c:\\windows\\system32\\drivers\\rtcore64.sys"),
        ("system32\\DRIVERS\\vmci.sys", "c:\\windows\\system32\\drivers\\vmci.sys"),
        ("\\??\\C:\\Windows\\Temp\\gdrv.sys", "c:\\windows\\temp\\gdrv.sys"),
        ("\\??\\C:\\Program Files\\x\\y.sys", "c:\\program files\\x\\y.sys"),
        # no drive letter (Masky), UNC (Cobalt Strike, Impacket on a non-ADMIN$ share)
        ('\\Windows\\Temp\\qwertyui.exe /ca:"DC01\\corp-CA" /template:"User" /output:"\\Windows\\Temp\\a.jpg"',
         "c:\\windows\\temp\\qwertyui.exe"),
        ("\\\\127.0.0.1\\ADMIN$\\a1b2c3d.exe", "\\\\127.0.0.1\\admin$\\a1b2c3d.exe"),
        ("\\\\FS01\\Share\\tools\\x.exe", "\\\\fs01\\share\\tools\\x.exe"),
        # bare names keep no directory
        ("cmd.exe", "cmd.exe"),
        ("calc.exe", "calc.exe"),
        # user-writable folders and scripts
        ("C:\\Users\\Public\\x.exe", "c:\\users\\public\\x.exe"),
        ("C:\\Users\\IEUser\\Desktop\\info.rar\\jjs.exe", "c:\\users\\ieuser\\desktop\\info.rar\\jjs.exe"),
        ("c:\\windows\\temp\\BRIGHT_SOUND.exe", "c:\\windows\\temp\\bright_sound.exe"),
        ("C:\\Temp\\run me.bat arg", "c:\\temp\\run me.bat"),
        ("C:\\ProgramData\\x\\payload.ps1", "c:\\programdata\\x\\payload.ps1"),
        ("C:/Windows/Temp/x.exe", "c:\\windows\\temp\\x.exe"),
        # unknown variables are kept as written (lower case)
        ("%TEMP%\\x.exe", "%temp%\\x.exe"),
        ("%SystemDrive%\\x.exe", "c:\\x.exe"),
        ("", ""),
        ("   ", ""),
    ],
)  # fmt: skip
def test_normalise_image_path(raw: str, expected: str) -> None:
    assert normalise_image_path(raw) == expected


def test_executable_part_keeps_case_and_stops_at_arguments() -> None:
    assert executable_part("C:\\Program Files\\A B\\Svc.exe -x") == "C:\\Program Files\\A B\\Svc.exe"
    # a path with spaces that never reaches an executable ending keeps only its first token
    assert executable_part("C:\\Program Files\\tool --flag") == "C:\\Program"


def test_normalisation_is_idempotent() -> None:
    for raw in ("%SystemRoot%\\PSEXESVC.exe", "\\??\\C:\\x.sys", "C:\\Program Files\\A B\\c.exe -k"):
        once = normalise_image_path(raw)
        assert normalise_image_path(once) == once

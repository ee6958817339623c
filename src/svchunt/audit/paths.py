"""ImagePath / ServiceDll normalisation and classification of where a binary lives (brief §0, §3, §10)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What the variables expand to in the context a service starts in (LocalSystem, so TEMP is the Windows one);
# per-user folders keep a `%USERNAME%` marker because the user is unknown offline.
ENV = {
    "systemroot": r"C:\Windows",
    "windir": r"C:\Windows",
    "systemdrive": "C:",
    "programfiles": r"C:\Program Files",
    "programfiles(x86)": r"C:\Program Files (x86)",
    "programw6432": r"C:\Program Files",
    "commonprogramfiles": r"C:\Program Files\Common Files",
    "commonprogramfiles(x86)": r"C:\Program Files (x86)\Common Files",
    "programdata": r"C:\ProgramData",
    "allusersprofile": r"C:\ProgramData",
    "comspec": r"C:\Windows\System32\cmd.exe",
    "temp": r"C:\Windows\Temp",
    "tmp": r"C:\Windows\Temp",
    "public": r"C:\Users\Public",
    "userprofile": r"C:\Users\%USERNAME%",
    "appdata": r"C:\Users\%USERNAME%\AppData\Roaming",
    "localappdata": r"C:\Users\%USERNAME%\AppData\Local",
    "homepath": r"\Users\%USERNAME%",
}

_VAR = re.compile(r"%([^%\\\s]+)%")
_EXE = re.compile(r"^(.*?\.(?:exe|sys|dll|com|bat|cmd|scr|ps1|vbs|js|hta|cpl|ocx|drv))(?=\s|$|,)", re.IGNORECASE)

SYSTEM_DIRS = (
    "c:\\windows\\system32\\",
    "c:\\windows\\syswow64\\",
    "c:\\windows\\sysnative\\",
    "c:\\windows\\winsxs\\",
    "c:\\windows\\microsoft.net\\",
    "c:\\windows\\servicing\\",
    "c:\\windows\\systemapps\\",
    "c:\\windows\\immersivecontrolpanel\\",
    "c:\\windows\\ehome\\",
)
# Sub-folders of system folders that standard users can write to: a binary there is not "in System32" for trust.
WRITABLE_SYSTEM_SUBDIRS = (
    "c:\\windows\\system32\\spool\\drivers\\color\\",
    "c:\\windows\\system32\\tasks\\",
    "c:\\windows\\system32\\microsoft\\crypto\\rsa\\machinekeys\\",
    "c:\\windows\\syswow64\\tasks\\",
    "c:\\windows\\temp\\",
    "c:\\windows\\tasks\\",
    "c:\\windows\\tracing\\",
    "c:\\windows\\registration\\crmlog\\",
)
USER_WRITABLE_MARKERS = (
    "\\users\\",
    "\\appdata\\",
    "\\temp\\",
    "\\tmp\\",
    "\\perflogs\\",
    "\\desktop\\",
    "\\downloads\\",
    "\\$recycle.bin\\",
    "%username%",
)
PROGRAM_FILES = ("c:\\program files\\", "c:\\program files (x86)\\")
# ProgramData is writable by users (they may create folders) but vendors install there: only these subfolders are
# treated as managed, the rest is user-writable.
PROGRAMDATA_MANAGED = (
    "c:\\programdata\\microsoft\\windows defender\\",
    "c:\\programdata\\microsoft\\windows defender advanced threat protection\\",
)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0:0:0:0:0:0:0:1", "."}


@dataclass(slots=True, frozen=True)
class ResolvedPath:
    raw: str
    path: str | None  # the executable as Windows would see it, expanded (C:\...) or UNC; None when empty
    args: str
    quoted: bool
    location: str  # system | windows-root | program-files | user-writable | network | other | relative | none

    @property
    def basename(self) -> str:
        if not self.path:
            return ""
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]

    @property
    def directory(self) -> str:
        if not self.path or "\\" not in self.path:
            return ""
        return self.path.rsplit("\\", 1)[0]


def expand(text: str, extra: dict[str, str] | None = None) -> str:
    env = dict(ENV)
    if extra:
        env.update({k.lower(): v for k, v in extra.items()})

    def repl(match: re.Match[str]) -> str:
        return env.get(match.group(1).lower(), match.group(0))

    return _VAR.sub(repl, text)


def _canonical(path: str, is_driver: bool) -> str:
    path = path.replace("/", "\\")
    low = path.lower()
    if low.startswith("\\??\\unc\\"):
        return "\\\\" + path[8:]
    if low.startswith("\\??\\") or low.startswith("\\\\?\\"):
        path = path[4:]
        low = path.lower()
        if low.startswith("unc\\"):
            return "\\\\" + path[4:]
    if low.startswith("\\systemroot\\"):
        return "C:\\Windows\\" + path[12:]
    if low.startswith("\\windows\\"):  # Masky-style path without drive letter
        return "C:" + path
    if re.match(r"^(system32|syswow64)\\", low):
        return "C:\\Windows\\" + path
    if is_driver and "\\" in path and not re.match(r"^[a-z]:\\|^\\\\", low):
        return "C:\\Windows\\" + path.lstrip("\\")
    return path


def split_command(raw: str) -> tuple[str, str, bool]:
    """(executable, arguments, quoted) of a command line as the SCM would launch it."""
    text = raw.strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        if end == -1:
            return text[1:], "", True
        return text[1:end], text[end + 1 :].strip(), True
    match = _EXE.match(text)
    if match:
        return match.group(1), text[match.end() :].strip(), False
    head, _, tail = text.partition(" ")
    return head, tail.strip(), False


def classify(path: str | None) -> str:
    if not path:
        return "none"
    low = path.lower()
    if low.startswith("\\\\") and not low.startswith("\\\\.\\"):
        return "network"
    if not re.match(r"^[a-z]:\\", low):
        return "relative"
    if any(low.startswith(d) for d in WRITABLE_SYSTEM_SUBDIRS):
        return "user-writable"
    if any(low.startswith(d) for d in SYSTEM_DIRS):
        return "system"
    if low.startswith("c:\\windows\\") and low.count("\\") == 2:
        return "windows-root"
    if low.startswith("c:\\programdata\\"):
        return "program-files" if any(low.startswith(d) for d in PROGRAMDATA_MANAGED) else "user-writable"
    if any(m in low for m in USER_WRITABLE_MARKERS):
        return "user-writable"
    if any(low.startswith(d) for d in PROGRAM_FILES):
        return "program-files"
    if low.startswith("c:\\windows\\"):
        return "windows-other"
    return "other"


def resolve(raw: str | None, is_driver: bool = False, service_name: str | None = None) -> ResolvedPath:
    """Normalise an ImagePath/ServiceDll value. A driver without ImagePath loads `System32\\drivers\\<name>.sys`."""
    if raw is None or not str(raw).strip():
        if is_driver and service_name:
            path = f"C:\\Windows\\System32\\drivers\\{service_name}.sys"
            return ResolvedPath(raw or "", path, "", False, "system")
        return ResolvedPath(raw or "", None, "", False, "none")
    raw = str(raw)
    exe, args, quoted = split_command(expand(raw))
    path = _canonical(exe, is_driver)
    return ResolvedPath(raw, path, args, quoted, classify(path))


def unc_parts(path: str) -> tuple[str, str] | None:
    """(host, share) of a UNC path."""
    if not path.startswith("\\\\") or path.startswith("\\\\.\\"):
        return None
    parts = path[2:].split("\\")
    return (parts[0], parts[1] if len(parts) > 1 else "")


def interception_points(raw: str) -> list[str]:
    """For an unquoted path with spaces: the files Windows tries first (`C:\\Program.exe`, ...)."""
    text = expand(raw.strip())
    if text.startswith('"'):
        return []
    exe, _, _ = split_command(text)
    out = []
    for index, char in enumerate(exe):
        if char == " ":
            prefix = exe[:index]
            if "\\" in prefix:
                out.append(prefix + ".exe")
    return out

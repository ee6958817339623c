"""Reduce a service ImagePath / ServiceFileName / Sysmon 13 `Details` to the executable it runs.

Detection content compares directories and file names, so every spelling Windows accepts for the same
binary (`%SystemRoot%\\x.exe`, `\\SystemRoot\\x.exe`, `\\??\\C:\\Windows\\x.exe`, `C:\\Windows\\x.exe -k y`,
Sysmon's `%%SystemRoot%%\\x.exe`) must come out as one lower-case string: `c:\\windows\\x.exe`.
Pure string work, no regex: this runs once per service event.
"""

from __future__ import annotations

# Endings that mark the end of an unquoted executable path; a path with spaces is only taken that far.
EXECUTABLE_ENDINGS = (".exe", ".sys", ".dll", ".bat", ".cmd", ".ps1")

# Tokens that start an argument, a redirection or a command separator: an unquoted path never continues
# into one of these, so `%COMSPEC% /Q /c echo x > y.bat` stops at `%COMSPEC%`.
_ARGUMENT_STARTS = ("/", "-", "^", ">", "<", "&", "|", "2>", "1>")

# Environment variables a service ImagePath may use, as SCM / the LocalSystem account expands them.
ENVIRONMENT = {
    "%systemroot%": "c:\\windows",
    "%windir%": "c:\\windows",
    "%comspec%": "c:\\windows\\system32\\cmd.exe",
    "%programfiles%": "c:\\program files",
    "%programfiles(x86)%": "c:\\program files (x86)",
    "%programw6432%": "c:\\program files",
    "%commonprogramfiles%": "c:\\program files\\common files",
    "%commonprogramfiles(x86)%": "c:\\program files (x86)\\common files",
    "%programdata%": "c:\\programdata",
    "%allusersprofile%": "c:\\programdata",
    "%systemdrive%": "c:",
    "%public%": "c:\\users\\public",
}

# Prefixes of NT / kernel-style paths and of paths without a drive letter, in the order they are tried.
_PREFIXES = (
    ("\\??\\unc\\", "\\\\"),
    ("\\\\?\\unc\\", "\\\\"),
    ("\\??\\", ""),
    ("\\\\?\\", ""),
    ("\\\\.\\globalroot\\systemroot\\", "c:\\windows\\"),
    ("\\systemroot\\", "c:\\windows\\"),
    ("systemroot\\", "c:\\windows\\"),
    ("system32\\", "c:\\windows\\system32\\"),
    ("syswow64\\", "c:\\windows\\syswow64\\"),
)


def executable_part(command: str) -> str:
    """The executable of a command line as written: quotes removed, arguments dropped, case kept.

    Unquoted paths with spaces (`C:\\Program Files\\A B\\svc.exe -k x`) are taken up to the first
    token that ends with an executable extension, as the Windows loader would try them; a command that
    never reaches such an ending keeps only its first token (`cmd /c ...` -> `cmd`).
    """
    text = command.strip()
    if not text:
        return ""
    if text[0] == '"':
        end = text.find('"', 1)
        return text[1:end].strip() if end > 0 else text[1:].strip()
    tokens = text.split()
    first = tokens[0]
    if len(tokens) == 1 or first.lower().endswith(EXECUTABLE_ENDINGS):
        return first
    if "\\" in first:
        candidate = first
        for token in tokens[1:]:
            if token.startswith(_ARGUMENT_STARTS):
                break
            candidate = f"{candidate} {token}"
            if token.lower().endswith(EXECUTABLE_ENDINGS):
                return candidate
    return first


def _expand(path: str) -> str:
    start = path.find("%")
    while start != -1:
        end = path.find("%", start + 1)
        if end == -1:
            break
        name = path[start : end + 1]
        value = ENVIRONMENT.get(name)
        if value is None:
            start = end  # unknown variable: keep it, look for the next one
            continue
        path = path[:start] + value + path[end + 1 :]
        start = path.find("%", start + len(value))
    return path


def normalise_image_path(raw: str) -> str:
    """Lower-case executable path of a service ImagePath-like value (see module docstring).

    Returns "" for an empty value. Bare names (`cmd.exe`) stay bare: the directory is unknown.
    UNC paths stay UNC (`\\\\host\\share\\x.exe`). A path without a drive (`\\Windows\\Temp\\x.exe`)
    gets `c:`, as services resolve it against the system drive.
    """
    if not raw:
        return ""
    text = raw.replace("%%", "%") if "%%" in raw else raw  # Sysmon 13 doubles `%` in values
    path = executable_part(text).strip().strip('"').lower().replace("/", "\\")
    if not path:
        return ""
    if "%" in path:
        path = _expand(path)
    for prefix, replacement in _PREFIXES:
        if path.startswith(prefix):
            path = replacement + path[len(prefix) :]
            break
    if path.startswith("\\") and not path.startswith("\\\\"):
        path = "c:" + path
    return path

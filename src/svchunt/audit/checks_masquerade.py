"""Check 7: names, display names and binaries that imitate Windows components (brief §28)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry

COVERS = ("SEED.masquerade", "DS0019.creation", "M1047")
MIN_NAME_LENGTH = 5
# Core processes whose name alone is worth checking wherever they sit (Program Files included).
CORE_BINARIES = {"svchost.exe", "lsass.exe", "services.exe", "csrss.exe", "winlogon.exe", "smss.exe", "wininit.exe",
                 "spoolsv.exe", "explorer.exe", "lsm.exe", "taskhost.exe", "taskhostw.exe", "dllhost.exe", "conhost.exe",
                 "rundll32.exe", "cmd.exe"}
# Where a genuine-looking binary is still suspicious: vendors install into Program Files, Windows into System32.
SUSPECT_LOCATIONS = {"user-writable", "network", "other", "windows-root", "relative", "windows-other"}  # shorter names (Ntfs/Npfs, Beep) are one edit from each other by chance


@dataclass(slots=True)
class WindowsList:
    names: dict[str, dict] = field(default_factory=dict)  # lower name -> {name, display_names, images}
    display_names: dict[str, str] = field(default_factory=dict)  # lower display name -> service name
    binaries: dict[str, set[str]] = field(default_factory=dict)  # lower basename -> lower folders
    deletes: dict[str, set[str]] = field(default_factory=dict)  # deletion neighbourhood -> names


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=1)
def load_windows_list() -> WindowsList:
    data = json.loads(resources.files("svchunt.data").joinpath("windows_services.json").read_text("utf-8"))
    out = WindowsList()
    for key, item in data["services"].items():
        out.names[key] = item
        for display in item["display_names"]:
            out.display_names.setdefault(display.lower(), item["name"])
        for variant in _deletions(key) | {key}:
            out.deletes.setdefault(variant, set()).add(key)
    out.binaries = {k: set(v) for k, v in data["binaries"].items()}
    return out


def edit_distance_le1(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one insertion, deletion, substitution or adjacent swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    if la > lb:
        a, b = b, a
    return any(b[:i] + b[i + 1 :] == a for i in range(len(b)))


def near_names(name: str, windows: WindowsList) -> list[str]:
    key = name.lower()
    candidates: set[str] = set()
    for variant in _deletions(key) | {key}:
        candidates |= windows.deletes.get(variant, set())
    return sorted(windows.names[c]["name"] for c in candidates if c != key and edit_distance_le1(key, c))


def check_masquerade(entry: ServiceEntry, windows: WindowsList | None = None) -> list[Finding]:
    windows = windows or load_windows_list()
    out: list[Finding] = []
    image = entry.image_path
    path = (image.path or "").lower() if image else ""
    base = image.basename.lower() if image else ""
    folder = path.rpartition("\\")[0]
    key = entry.name.lower()
    known = windows.names.get(key)

    location = image.location if image else "none"
    wrong_folder = base and windows.binaries.get(base) and folder and folder not in windows.binaries[base]
    if wrong_folder and (base in CORE_BINARIES or location in SUSPECT_LOCATIONS):
        out.append(Finding("masquerade", "high", f"Windows binary name {base} in the wrong folder", COVERS, entry.name,
                           entry.key_path, "ImagePath", image.raw if image else None,
                           f"{base} belongs in {', '.join(sorted(windows.binaries[base]))}, this one is in {folder}",
                           [entry.control_set]))
    if known is not None and image is not None and location in SUSPECT_LOCATIONS:
        out.append(Finding("masquerade", "high", "Windows service name with a non-system binary", COVERS, entry.name,
                           entry.key_path, "ImagePath", image.raw,
                           f"{known['name']} is a Windows service whose binary is "
                           f"{', '.join(known['images'][:2])}; this one points to {image.path}", [entry.control_set]))
    if known is None and len(key) >= MIN_NAME_LENGTH:
        near = near_names(entry.name, windows)
        if near:
            severity = "medium" if location in SUSPECT_LOCATIONS else "low"
            out.append(Finding("masquerade", severity, "service name one edit away from a Windows service", COVERS,
                               entry.name, entry.key_path, None, entry.name,
                               f"{entry.name!r} differs by one character from {', '.join(near)}",
                               [entry.control_set], {"similar_to": near}))
    display = (entry.display_name or "").lower()
    owner = windows.display_names.get(display)
    if owner and owner.lower() != key:
        severity = "medium" if location in SUSPECT_LOCATIONS else "low"
        out.append(Finding("masquerade", severity, "display name of a Windows service on another service", COVERS,
                           entry.name, entry.key_path, "DisplayName", entry.display_name,
                           f"{entry.display_name!r} is the display name of the Windows service {owner}",
                           [entry.control_set]))
    return out

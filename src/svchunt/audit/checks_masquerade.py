"""Check 7: names, display names and binaries that imitate Windows components (brief §28)."""

from __future__ import annotations

from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.stock import StockList, deletions, load_stock, stock_key

COVERS = ("SEED.masquerade", "DS0019.creation", "M1047")
# Shorter names (Ntfs/Npfs, Beep) are one edit from each other by chance.
MIN_NAME_LENGTH = 5
# Core processes whose name alone is worth checking wherever they sit (Program Files included).
CORE_BINARIES = {"svchost.exe", "lsass.exe", "services.exe", "csrss.exe", "winlogon.exe", "smss.exe", "wininit.exe",
                 "spoolsv.exe", "explorer.exe", "lsm.exe", "taskhost.exe", "taskhostw.exe", "dllhost.exe", "conhost.exe",
                 "rundll32.exe", "cmd.exe"}
# Where a genuine-looking binary is still suspicious: vendors install into Program Files, Windows into System32.
SUSPECT_LOCATIONS = {"user-writable", "network", "other", "windows-root", "relative", "windows-other"}


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


def near_names(name: str, windows: StockList) -> list[str]:
    key = name.lower()
    candidates: set[str] = set()
    for variant in deletions(key) | {key}:
        candidates |= windows.deletes.get(variant, set())
    return sorted(windows.services[c].name for c in candidates if c != key and edit_distance_le1(key, c))


def check_masquerade(entry: ServiceEntry, windows: StockList | None = None) -> list[Finding]:
    windows = windows or load_stock()
    out: list[Finding] = []
    if not entry.runnable:
        return out  # a key without Type never starts: there is nothing to pass off as Windows
    image = entry.image_path
    path = (image.path or "").lower() if image else ""
    base = image.basename.lower() if image else ""
    folder = path.rpartition("\\")[0]
    key = stock_key(entry.name, entry.type)
    known = windows.services.get(key)

    location = image.location if image else "none"
    wrong_folder = base and windows.binaries.get(base) and folder and folder not in windows.binaries[base]
    if wrong_folder and (base in CORE_BINARIES or location in SUSPECT_LOCATIONS):
        out.append(Finding("masquerade", "high", f"Windows binary name {base} in the wrong folder", COVERS, entry.name,
                           entry.key_path, "ImagePath", image.raw if image else None,
                           f"{base} belongs in {', '.join(sorted(windows.binaries[base]))}, this one is in {folder}",
                           [entry.control_set]))
    if known is not None and image is not None and location in SUSPECT_LOCATIONS and path not in known.paths:
        out.append(Finding("masquerade", "high", "Windows service name with a non-system binary", COVERS, entry.name,
                           entry.key_path, "ImagePath", image.raw,
                           f"{known.name} is a Windows service whose binary is "
                           f"{', '.join(known.paths[:2])}; this one points to {image.path}", [entry.control_set]))
    if known is not None:
        return out  # a stock name with its own display name: the similarity checks below are about other names
    if len(key) >= MIN_NAME_LENGTH:
        near = near_names(key, windows)
        if near:
            # A sibling name whose binary also sits among Windows' own (LSI_SAS3 next to LSI_SAS2, WfpLwf next to
            # WfpLwfs) is how Windows names families of components; imitations live elsewhere.
            severity = "medium" if location in SUSPECT_LOCATIONS else "info" if location == "system" else "low"
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

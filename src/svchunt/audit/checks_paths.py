"""Checks 1-3: where the image/ServiceDll lives, shells in the command, unquoted paths (PT-CR-257/1752/2632)."""

from __future__ import annotations

import re

from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.paths import LOOPBACK_HOSTS, ResolvedPath, interception_points, unc_parts
from svchunt.audit.stock import StockList, load_stock

_SHELL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("cmd /c or /k", re.compile(r"(^|[\\\s\"'])cmd(\.exe)?[\"']?\s+(/\w+\s+)*/[ck]\b", re.IGNORECASE)),
    ("%COMSPEC%", re.compile(r"%%?comspec%%?", re.IGNORECASE)),
    ("PowerShell", re.compile(r"(^|[\\\s\"'])(powershell|pwsh)(\.exe)?\b", re.IGNORECASE)),
    ("encoded PowerShell", re.compile(r"\s-e(nc(odedcommand)?)?\s+[A-Za-z0-9+/=]{8,}", re.IGNORECASE)),
    ("mshta", re.compile(r"(^|[\\\s\"'])mshta(\.exe)?\b", re.IGNORECASE)),
    ("rundll32", re.compile(r"(^|[\\\s\"'])rundll32(\.exe)?\b", re.IGNORECASE)),
    ("regsvr32", re.compile(r"(^|[\\\s\"'])regsvr32(\.exe)?\b", re.IGNORECASE)),
    ("script host", re.compile(r"(^|[\\\s\"'])[wc]script(\.exe)?\b", re.IGNORECASE)),
    ("certutil/bitsadmin", re.compile(r"(^|[\\\s\"'])(certutil|bitsadmin)(\.exe)?\b", re.IGNORECASE)),
    ("named-pipe redirect", re.compile(r"\\\\\.\\pipe\\", re.IGNORECASE)),
    ("command chaining", re.compile(r"&&|\|\||\^>|\s>\s*\S|\s\|\s")),
]

COVERS_LOCATION = ("PT-CR-257", "DS0019.creation", "M1047")
# A shell command line is no one tool's mark (smbexec, psexec_psh, getsystem all use one): the tool is named by the
# attribution check, from the hunt rules.
SHELL_COVERS = ("PT-CR-257", "DS0009.services-cmd", "DS0019.creation", "M1047")


def _location_finding(entry: ServiceEntry, resolved: ResolvedPath, value_name: str, key_path: str) -> Finding | None:
    what = "driver" if entry.is_driver else ("ServiceDll" if value_name == "ServiceDll" else "service binary")
    loc = resolved.location
    path = resolved.path or ""
    if loc == "network":
        host, share = unc_parts(path) or ("", "")
        admin_share = share.endswith("$")
        loopback = host.lower() in LOOPBACK_HOSTS
        covers = ["PT-CR-1752", "DS0019.creation", "M1047"]
        if admin_share:
            covers.insert(1, "PT-CR-2632")
        severity = "critical" if admin_share else "high"
        why = f"{what} is loaded from a network path (host {host!r}, share {share!r})"
        if admin_share and loopback:
            why += ": loopback admin share, the Cobalt Strike/Meterpreter getsystem shape"
        elif admin_share:
            why += ": admin share, the PsExec-style remote service shape"
        return Finding("image-location", severity, f"{what} on a network path", tuple(covers), entry.name, key_path,
                       value_name, resolved.raw, why, [entry.control_set])
    if loc == "user-writable":
        return Finding("image-location", "high", f"{what} in a user-writable or temp folder", COVERS_LOCATION, entry.name,
                       key_path, value_name, resolved.raw,
                       f"{what} {path} is in a folder standard users or any process can write to", [entry.control_set])
    if loc == "other":
        return Finding("image-location", "medium", f"{what} outside Windows and Program Files", COVERS_LOCATION,
                       entry.name, key_path, value_name, resolved.raw,
                       f"{what} {path} is outside the Windows system folders and Program Files", [entry.control_set])
    if loc == "windows-root" and not entry.is_driver:
        return Finding("image-location", "low", f"{what} directly in the Windows folder", COVERS_LOCATION, entry.name,
                       key_path, value_name, resolved.raw,
                       f"{path} sits in C:\\Windows itself, where PsExec/Impacket/Metasploit service binaries land",
                       [entry.control_set])
    if loc == "relative" and path and not entry.is_driver and "\\" not in path:
        return Finding("image-location", "low", f"{what} without a directory", COVERS_LOCATION, entry.name, key_path,
                       value_name, resolved.raw, f"{path} has no directory: found through the search path",
                       [entry.control_set])
    if entry.is_driver and loc in ("program-files", "windows-other"):
        return None
    return None


def check_location(entry: ServiceEntry, stock: StockList | None = None) -> list[Finding]:
    out = []
    stock_entry = (stock or load_stock()).get(entry.name, entry.type)
    stock_paths = set(stock_entry.paths) if stock_entry is not None else set()
    for role, resolved, key_path in (("ImagePath", entry.image_path, entry.key_path),
                                     ("ServiceDll", entry.service_dll, entry.service_dll_key or entry.key_path)):
        if resolved is None or (resolved.path or "").lower() in stock_paths:
            continue  # absent, or exactly where Windows puts this service's binary (WinHttpAutoProxySvc: winhttp.dll)
        found = _location_finding(entry, resolved, role, key_path)
        if found:
            out.append(found)
    return out


def shell_markers(command: str) -> list[str]:
    return [label for label, pattern in _SHELL_PATTERNS if pattern.search(command)]


def check_shell(entry: ServiceEntry) -> list[Finding]:
    if entry.image_path is None or not entry.image_path.raw:
        return []
    markers = shell_markers(entry.image_path.raw)
    if not markers:
        return []
    return [Finding("shell-command", "high", "service command runs a shell or script host",
                    SHELL_COVERS, entry.name, entry.key_path, "ImagePath", entry.image_path.raw,
                    "ImagePath is a command line using " + ", ".join(markers), [entry.control_set],
                    {"markers": markers})]


def check_unquoted(entry: ServiceEntry) -> list[Finding]:
    image = entry.image_path
    if image is None or not image.raw or image.quoted or entry.is_driver:
        return []
    points = interception_points(image.raw)
    # Only absolute paths can be intercepted by a file earlier in the path.
    points = [p for p in points if re.match(r"^[A-Za-z]:\\", p)]
    if not points:
        return []
    return [Finding("unquoted-path", "medium", "unquoted service path with spaces",
                    ("SEED.masquerade", "M1047"), entry.name, entry.key_path, "ImagePath", image.raw,
                    "Windows tries " + ", ".join(points) + " before the real binary", [entry.control_set],
                    {"interception_points": points})]

"""Check 8: kernel drivers that are known-vulnerable (LOLDrivers) or unsigned/invalidly signed (M1045, §25)."""

from __future__ import annotations

from svchunt.audit.findings import SEVERITIES, Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.loldrivers import LolDriver, LolDrivers
from svchunt.audit.stock import StockList, load_stock

COVERS = ("DS0027.driver-load", "M1045", "M1040")
# A listed file name in a folder where nobody installs drivers is worse than one among System32's drivers.
_ODD_LOCATIONS = {"user-writable", "network", "other", "relative", "windows-root"}


def _hash_finding(entry: ServiceEntry, info: dict, algo: str, driver: LolDriver, value: str | None) -> Finding:
    malicious = "malicious" in driver.category.lower()
    return Finding("loldriver", "critical" if malicious else "high",
                   f"{'malicious' if malicious else 'vulnerable'} driver from the LOLDrivers list", COVERS,
                   entry.name, entry.key_path, "ImagePath", value,
                   f"{info['found']} {algo.upper()} {info['hashes'][algo]} is LOLDrivers {driver.id} "
                   f"({driver.category}; {driver.names})", [entry.control_set],
                   {"sha256": info["hashes"]["sha256"], "loldrivers_id": driver.id, "matched_by": algo,
                    "confidence": "high"})


def _name_finding(entry: ServiceEntry, lol: LolDrivers, drivers: list[LolDriver], why_no_hash: str,
                  value: str | None) -> Finding:
    image = entry.image_path
    base = image.basename if image else ""
    malicious = any("malicious" in d.category.lower() for d in drivers)
    # Severity from where the file sits; the confidence is stated apart, because a name is not a version.
    severity = "high" if image is not None and image.location in _ODD_LOCATIONS else "low"
    if malicious:
        severity = SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]
    ids = [d.id for d in drivers if d.id]
    listed = f"LOLDrivers {', '.join(ids)}" if ids else f"the list {lol.path}"
    kind = "malicious" if malicious else "vulnerable"
    return Finding("loldriver", severity, f"driver file name {base} is on the LOLDrivers list (name only: lower "
                   "confidence)", COVERS, entry.name, entry.key_path, "ImagePath", value,
                   f"{base} at {image.path if image else '?'} is the file name of {listed} "
                   f"({kind} driver); {why_no_hash}, so this is a match by file name only — lower confidence: a "
                   f"fixed version or an unrelated driver can share the name. Confirm with the file's hash "
                   f"(--root)", [entry.control_set],
                   {"loldrivers_ids": ids, "matched_by": "file name", "confidence": "low",
                    "why_no_hash": why_no_hash})


def check_driver(entry: ServiceEntry, lol: LolDrivers | None, stock: StockList | None = None,
                 root_given: bool = False) -> list[Finding]:
    if not entry.is_driver:
        return []
    info = entry.files.get("image")
    value = entry.image_path.raw if entry.image_path else None
    out = []
    if lol is not None and info and "hashes" in info:
        match = lol.lookup(info["hashes"])
        if match:
            out.append(_hash_finding(entry, info, match[0], match[1], value))
    elif lol is not None and entry.image_path is not None and entry.image_path.basename:
        drivers = lol.lookup_name(entry.image_path.basename)
        stock_entry = (stock or load_stock()).get(entry.name, entry.type)
        at_stock_path = stock_entry is not None and (entry.image_path.path or "").lower() in stock_entry.paths
        # LOLDrivers lists vulnerable builds of Windows' own afd.sys/csc.sys: a name match on the stock driver
        # at its stock path says nothing without the hash.
        if drivers and not at_stock_path:
            if not root_given:
                why = "no file to hash (no --root given)"
            elif info and info.get("found"):
                why = "the file under --root could not be hashed"
            else:
                why = "the file is not under --root"
            out.append(_name_finding(entry, lol, drivers, why, value))
    signature = info.get("signature") if info else None
    if signature and signature["status"] in ("unsigned", "invalid"):
        severity = "high" if entry.start in (0, 1, 2) else "medium"
        out.append(Finding("driver-signature", severity, f"{signature['status']} kernel driver",
                           ("DS0027.driver-load", "M1045"), entry.name, entry.key_path, "ImagePath", value,
                           f"{info['found']}: {signature['detail']}", [entry.control_set],
                           {"sha256": info["hashes"]["sha256"], "signature": signature["status"]}))
    return out

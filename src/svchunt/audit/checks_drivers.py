"""Check 8: kernel drivers that are known-vulnerable (LOLDrivers) or unsigned/invalidly signed (M1045, §25)."""

from __future__ import annotations

from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.loldrivers import LolDrivers


def check_driver(entry: ServiceEntry, lol: LolDrivers | None) -> list[Finding]:
    if not entry.is_driver:
        return []
    info = entry.files.get("image")
    if not info or "hashes" not in info:
        return []
    out = []
    value = entry.image_path.raw if entry.image_path else None
    if lol is not None:
        match = lol.lookup(info["hashes"])
        if match:
            algo, driver = match
            malicious = "malicious" in driver.category.lower()
            out.append(Finding("loldriver", "critical" if malicious else "high",
                               f"{'malicious' if malicious else 'vulnerable'} driver from the LOLDrivers list",
                               ("DS0027.driver-load", "M1045", "M1040"), entry.name, entry.key_path, "ImagePath", value,
                               f"{info['found']} {algo.upper()} {info['hashes'][algo]} is LOLDrivers {driver.id} "
                               f"({driver.category}; {driver.names})", [entry.control_set],
                               {"sha256": info["hashes"]["sha256"], "loldrivers_id": driver.id}))
    signature = info.get("signature")
    if signature and signature["status"] in ("unsigned", "invalid"):
        severity = "high" if entry.start in (0, 1, 2) else "medium"
        out.append(Finding("driver-signature", severity, f"{signature['status']} kernel driver",
                           ("DS0027.driver-load", "M1045"), entry.name, entry.key_path, "ImagePath", value,
                           f"{info['found']}: {signature['detail']}", [entry.control_set],
                           {"sha256": info["hashes"]["sha256"], "signature": signature["status"]}))
    return out

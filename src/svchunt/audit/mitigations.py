"""Check 9: platform mitigations visible in the hives — test-signing/DSE (M1028), the vulnerable driver blocklist and
the ASR rule for vulnerable signed drivers (M1040). Each is on/off/unknown with the value read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from svchunt.audit.findings import Finding
from svchunt.audit.hive import RegistrySource

ASR_VULN_DRIVERS = "56a863a9-875e-4185-98a7-b882c64b5ce5"
ASR_PSEXEC_WMI = "d1e49aac-8f56-4280-b9ba-993a6d77406c"
ASR_STATES = {"0": "off", "1": "on (block)", "2": "on (audit)", "6": "on (warn)"}
ASR_KEYS = (
    "Policies\\Microsoft\\Windows Defender\\Windows Defender Exploit Guard\\ASR\\Rules",
    "Microsoft\\Windows Defender\\Windows Defender Exploit Guard\\ASR\\Rules",
)


@dataclass(slots=True)
class Mitigation:
    id: str
    name: str
    state: str  # on | off | unknown (with detail)
    key_path: str | None
    value_name: str | None
    value: Any
    detail: str
    covers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state, "key_path": self.key_path,
                "value_name": self.value_name, "value": self.value, "detail": self.detail, "covers": list(self.covers)}


def _boot_options(system: RegistrySource, cs: str) -> list[Mitigation]:
    path = f"{cs}\\Control"
    key = system.key(path)
    options = key.get("SystemStartOptions") if key else None
    if options is None:
        return [Mitigation("test-signing", "Driver signature enforcement / test-signing", "unknown", path,
                           "SystemStartOptions", None, "SystemStartOptions not present", ("M1028", "M1045"))]
    upper = str(options).upper()
    flags = [f for f in ("TESTSIGNING", "DISABLE_INTEGRITY_CHECKS", "NOINTEGRITYCHECKS", "DEBUG") if f in upper]
    weakening = [f for f in flags if f != "DEBUG"]
    state = "off" if weakening else "on"
    detail = ("boot options of the last boot weaken driver signing: " + ", ".join(flags)) if weakening else (
        "no TESTSIGNING / DISABLE_INTEGRITY_CHECKS in the last boot's options" + (" (kernel debugging on)" if flags else ""))
    return [Mitigation("test-signing", "Driver signature enforcement (no test-signing)", state, path,
                       "SystemStartOptions", options, detail, ("M1028", "M1045"))]


def _blocklist(system: RegistrySource, cs: str) -> Mitigation:
    path = f"{cs}\\Control\\CI\\Config"
    key = system.key(path)
    value = key.get("VulnerableDriverBlocklistEnable") if key else None
    if value is None:
        detail = ("value absent: on by default since Windows 11 22H2, off before; HVCI/Smart App Control also enforce it"
                  if key else "Control\\CI\\Config absent (older Windows or no CI configuration)")
        return Mitigation("vulnerable-driver-blocklist", "Microsoft vulnerable driver blocklist", "unknown", path,
                          "VulnerableDriverBlocklistEnable", None, detail, ("M1040", "M1045"))
    state = "on" if value == 1 else "off"
    return Mitigation("vulnerable-driver-blocklist", "Microsoft vulnerable driver blocklist", state, path,
                      "VulnerableDriverBlocklistEnable", value, f"VulnerableDriverBlocklistEnable = {value}",
                      ("M1040", "M1045"))


def _hvci(system: RegistrySource, cs: str) -> Mitigation:
    path = f"{cs}\\Control\\DeviceGuard\\Scenarios\\HypervisorEnforcedCodeIntegrity"
    key = system.key(path)
    value = key.get("Enabled") if key else None
    if value is None:
        return Mitigation("hvci", "Memory integrity (HVCI)", "unknown", path, "Enabled", None,
                          "not configured in the hive", ("M1028", "M1040"))
    return Mitigation("hvci", "Memory integrity (HVCI)", "on" if value == 1 else "off", path, "Enabled", value,
                      f"Enabled = {value}", ("M1028", "M1040"))


def _asr(software: RegistrySource | None, rule: str, mid: str, name: str) -> Mitigation:
    if software is None:
        return Mitigation(mid, name, "unknown", None, rule, None, "no --software hive given", ("M1040",))
    for path in ASR_KEYS:
        key = software.key(path)
        if key is None:
            continue
        value = key.get(rule)
        if value is not None:
            state = ASR_STATES.get(str(value).strip(), f"unknown ({value})")
            return Mitigation(mid, name, "off" if state == "off" else ("on" if state.startswith("on") else "unknown"),
                              "SOFTWARE\\" + path, rule, value, f"ASR rule state {value}: {state}", ("M1040",))
    return Mitigation(mid, name, "off", "SOFTWARE\\" + ASR_KEYS[0], rule, None,
                      "rule not configured in the SOFTWARE hive (Intune/MDM settings elsewhere are not visible)",
                      ("M1040",))


def read_mitigations(system: RegistrySource, software: RegistrySource | None, current: str | None) -> list[Mitigation]:
    if current is None:
        return []
    out = _boot_options(system, current)
    out.append(_blocklist(system, current))
    out.append(_hvci(system, current))
    out.append(_asr(software, ASR_VULN_DRIVERS, "asr-vulnerable-drivers",
                    "ASR: block abuse of exploited vulnerable signed drivers"))
    out.append(_asr(software, ASR_PSEXEC_WMI, "asr-psexec-wmi", "ASR: block process creations from PsExec and WMI"))
    return out


def mitigation_findings(mitigations: list[Mitigation]) -> list[Finding]:
    """Explicitly weakened settings become findings; 'unknown' stays in the mitigations table only."""
    out = []
    for m in mitigations:
        if m.id == "test-signing" and m.state == "off":
            out.append(Finding("mitigation", "high", "driver signature enforcement weakened", m.covers, None,
                               m.key_path or "", m.value_name, m.value, m.detail))
        elif m.id == "vulnerable-driver-blocklist" and m.state == "off":
            out.append(Finding("mitigation", "medium", "vulnerable driver blocklist disabled", m.covers, None,
                               m.key_path or "", m.value_name, m.value, m.detail))
    return out

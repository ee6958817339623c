"""Checks 5-6: hidden services (`sc sdset` deny ACEs, §27) and weak service permissions (M1018), on the ACE model."""

from __future__ import annotations

import re

from svchunt.audit import sddl
from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry

A = sddl.SID_ALIASES
# Tokens of the people who look for services: an elevated admin, an interactive user, a service account.
ADMIN_TOKEN = {A["BA"], A["IU"], A["AU"], A["WD"], A["BU"]}
USER_TOKEN = {A["IU"], A["AU"], A["WD"], A["BU"]}
HIDING_TRUSTEES = {A["IU"]: "IU", A["SU"]: "SU", A["BA"]: "BA", A["AU"]: "AU", A["WD"]: "WD", A["BU"]: "BU"}
# Principals that are not administrators (SIDs of single accounts are handled by pattern below).
NON_ADMIN = {A["WD"], A["AU"], A["BU"], A["IU"], A["AN"], A["BG"], A["NU"], A["AC"], "S-1-15-2-2"}
_DOMAIN_NON_ADMIN = re.compile(r"^S-1-5-21-\d+-\d+-\d+-(513|514|515|\d{4,})$")

CHANGE_RIGHTS = sddl.SERVICE_CHANGE_CONFIG | sddl.WRITE_DAC | sddl.WRITE_OWNER
START_RIGHTS = sddl.SERVICE_START
HIDE_RIGHTS = sddl.SERVICE_QUERY_STATUS | sddl.SERVICE_QUERY_CONFIG


def _is_non_admin(sid: str) -> bool:
    return sid in NON_ADMIN or bool(_DOMAIN_NON_ADMIN.match(sid))


def _security_key(entry: ServiceEntry) -> str:
    return entry.key_path + "\\Security"


def check_hidden(entry: ServiceEntry) -> list[Finding]:
    sd = entry.security
    if sd is None or not sd.dacl_present or sd.dacl is None:
        return []
    denied_to = {
        name: sddl.rights_to_sddl(mask)
        for sid, name in HIDING_TRUSTEES.items()
        if (mask := sddl.denied_rights(sd, sid)) & HIDE_RIGHTS
    }
    admin = sddl.effective_access(sd, ADMIN_TOKEN)
    out = []
    if denied_to or not admin & sddl.SERVICE_QUERY_STATUS:
        if denied_to:
            why = "DACL denies query/enumerate to " + ", ".join(f"{k} ({v})" for k, v in sorted(denied_to.items()))
        else:
            why = "no ACE lets administrators or interactive users query the service status (allow-only-SYSTEM DACL)"
        why += ": the service is missing from sc query, Get-Service and services.msc but still runs"
        out.append(Finding("hidden-service", "high", "service hidden by its security descriptor",
                           ("SEED.sdset-hidden", "M1018", "DS0019.modification"), entry.name, _security_key(entry),
                           "Security", entry.sddl, why, [entry.control_set],
                           {"admin_rights": sddl.rights_to_sddl(admin), "denied_to": denied_to}))
    elif sddl.denied_rights(sd, A["BA"]) & (sddl.SERVICE_STOP | sddl.DELETE | sddl.SERVICE_CHANGE_CONFIG):
        out.append(Finding("hidden-service", "medium", "administrators denied stop/delete/reconfigure",
                           ("SEED.sdset-hidden", "M1018"), entry.name, _security_key(entry), "Security", entry.sddl,
                           "DACL denies BA " + sddl.rights_to_sddl(sddl.denied_rights(sd, A["BA"])) +
                           ": the service cannot be stopped or removed by administrators", [entry.control_set]))
    return out


def check_weak(entry: ServiceEntry) -> list[Finding]:
    sd = entry.security
    if sd is None:
        return []
    if sd.dacl_present and sd.dacl is None:
        return [Finding("weak-permissions", "critical", "service has a NULL DACL", ("M1018",), entry.name,
                        _security_key(entry), "Security", entry.sddl,
                        "no DACL: everyone has full control, including changing the binary path", [entry.control_set])]
    changers: dict[str, str] = {}
    starters: dict[str, str] = {}
    for ace in sd.dacl or []:
        if not ace.is_allow or ace.inherit_only or not _is_non_admin(ace.sid):
            continue
        granted = sddl.effective_access(sd, {ace.sid})
        name = sddl.sid_to_sddl(ace.sid)
        if granted & CHANGE_RIGHTS:
            changers[name] = sddl.rights_to_sddl(granted & (CHANGE_RIGHTS | sddl.SERVICE_START | sddl.SERVICE_STOP))
        elif granted & START_RIGHTS:
            starters[name] = sddl.rights_to_sddl(granted & (sddl.SERVICE_START | sddl.SERVICE_STOP))
    out = []
    if changers:
        out.append(Finding("weak-permissions", "high", "non-administrators can reconfigure the service", ("M1018",),
                           entry.name, _security_key(entry), "Security", entry.sddl,
                           "DACL grants " + ", ".join(f"{k}: {v}" for k, v in sorted(changers.items())) +
                           " (change config / write DAC / write owner = run any binary as the service account)",
                           [entry.control_set], {"principals": changers}))
    if starters:
        out.append(Finding("weak-permissions", "low", "non-administrators can start the service", ("M1018",),
                           entry.name, _security_key(entry), "Security", entry.sddl,
                           "DACL grants " + ", ".join(f"{k}: {v}" for k, v in sorted(starters.items())),
                           [entry.control_set], {"principals": starters}))
    return out

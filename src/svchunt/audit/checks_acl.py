"""Checks 5-6: hidden services (`sc sdset` deny ACEs, §27) and weak service permissions (M1018), on the ACE model."""

from __future__ import annotations

import re

from svchunt.audit import acl_words, sddl
from svchunt.audit.findings import Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.stock import StockList, StockService, load_stock

A = sddl.SID_ALIASES
# Tokens of the people who look for services: an elevated admin, an interactive user, a service account.
ADMIN_TOKEN = {A["BA"], A["IU"], A["AU"], A["WD"], A["BU"]}
USER_TOKEN = {A["IU"], A["AU"], A["WD"], A["BU"]}
HIDING_TRUSTEES = {A["IU"]: "IU", A["SU"]: "SU", A["BA"]: "BA", A["AU"]: "AU", A["WD"]: "WD", A["BU"]: "BU"}
# Principals that are not administrators (SIDs of single accounts are handled by pattern below).
NON_ADMIN = {A["WD"], A["AU"], A["BU"], A["IU"], A["AN"], A["BG"], A["NU"], A["AC"], "S-1-15-2-2"}
_DOMAIN_NON_ADMIN = re.compile(r"^S-1-5-21-\d+-\d+-\d+-(513|514|515|\d{4,})$")

CHANGE_RIGHTS = sddl.SERVICE_CHANGE_CONFIG | sddl.WRITE_DAC | sddl.WRITE_OWNER
HIDE_RIGHTS = sddl.SERVICE_QUERY_STATUS | sddl.SERVICE_QUERY_CONFIG


def is_non_admin(sid: str) -> bool:
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


def _stock_reference(stock_entry: StockService | None) -> str:
    if stock_entry is not None:
        return f"the stock DACL of the Windows service {stock_entry.name}"
    return "the DACL the SCM gives a new service (non-administrators may only query it)"


def check_weak(entry: ServiceEntry, stock: StockList | None = None) -> list[Finding]:
    """Rights non-administrators hold beyond what a stock install grants them for this service.

    The reference is the service's own entry in the stock baseline when it is a Windows service, else the SCM's
    default descriptor: a stock install stays quiet, a loosened DACL (sc sdset, an installer) stands out.
    """
    sd = entry.security
    if sd is None:
        return []
    if sd.dacl_present and sd.dacl is None:
        return [Finding("weak-permissions", "critical", "Everyone has full control of the service (NULL DACL)", ("M1018",),
                        entry.name, _security_key(entry), "Security", entry.sddl,
                        "the descriptor has no DACL: anyone can change the configuration, including the program it "
                        "runs", [entry.control_set])]
    stock_entry = (stock or load_stock()).get(entry.name, entry.type)
    allowed = stock_entry.permissions if stock_entry is not None else {}
    changers: dict[str, int] = {}
    starters: dict[str, int] = {}
    for ace in sd.dacl or []:
        if not ace.is_allow or ace.inherit_only or not is_non_admin(ace.sid):
            continue
        granted = sddl.effective_access(sd, {ace.sid}) & acl_words.WORDED_RIGHTS
        extra = granted & ~allowed.get(ace.sid, 0)
        if extra & CHANGE_RIGHTS:
            changers[ace.sid] = granted
        elif extra:
            starters[ace.sid] = granted
    out = []
    account = entry.object_name or "LocalSystem"
    reference = _stock_reference(stock_entry)
    # Start/stop rights on a Windows service were loosened from what Windows ships (sc sdset): low. On another
    # vendor's service they are that vendor's choice and run only its own program: info.
    start_severity = "low" if stock_entry is not None else "info"
    for group, severity, consequence in (
        (changers, "high", f"changing the configuration, or the permissions or owner that allow it, chooses the "
                           f"program it runs as {account}"),
        (starters, start_severity, "starting or stopping runs or halts its own program: it does not choose what "
                                   "runs"),
    ):
        if not group:
            continue
        sentences = [acl_words.grant_sentence(sid, mask) for sid, mask in sorted(group.items())]
        title = "; ".join(sentences)
        principals = {sddl.sid_to_sddl(sid): sddl.rights_to_sddl(mask) for sid, mask in sorted(group.items())}
        stock_rights = {sddl.sid_to_sddl(sid): sddl.rights_to_sddl(allowed[sid] & acl_words.WORDED_RIGHTS)
                        for sid in group if allowed.get(sid, 0) & acl_words.WORDED_RIGHTS}
        out.append(Finding("weak-permissions", severity, title, ("M1018",), entry.name, _security_key(entry),
                           "Security", entry.sddl, f"{title} ({consequence}); this departs from {reference}",
                           [entry.control_set], {"principals": principals, "stock_rights": stock_rights}))
    return out

"""What a service security descriptor set from the command line does to the people who manage services.

`sc sdset NAME "D:(D;;DCLCWPDTSD;;;BA)..."` hides a service with deny ACEs, but an allow-only DACL such as
`D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)` hides it just as well: nothing grants administrators the right to see
it. Rules therefore judge the descriptor's *effect*, evaluated with the audit's SDDL model
(`svchunt.audit.sddl`, the same code that judges service keys in a hive), never its text.

Effects (a descriptor can have several):
- `hidden`: administrators or interactive users cannot query the service's status, so it is missing from
  `sc query`, `Get-Service` and services.msc while it keeps running;
- `admins-denied`: administrators can see it but cannot stop, delete or reconfigure it;
- `weak`: a principal that is not an administrator (Everyone, Authenticated Users, Users, Interactive ...)
  may reconfigure it (change config, write DAC, write owner) — any user can then run code as the service;
- `unreadable`: the text is not an SDDL string the model can read (reported, never guessed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from svchunt.audit import sddl

_A = sddl.SID_ALIASES
# Tokens of the people who look for and manage services.
ADMIN_TOKEN = frozenset({_A["BA"], _A["IU"], _A["AU"], _A["WD"], _A["BU"]})
USER_TOKEN = frozenset({_A["IU"], _A["AU"], _A["WD"], _A["BU"]})
NON_ADMINS = (("WD", _A["WD"]), ("AU", _A["AU"]), ("BU", _A["BU"]), ("IU", _A["IU"]), ("AN", _A["AN"]),
              ("BG", _A["BG"]), ("NU", _A["NU"]))  # fmt: skip

MANAGE_RIGHTS = sddl.SERVICE_STOP | sddl.DELETE | sddl.SERVICE_CHANGE_CONFIG
CHANGE_RIGHTS = sddl.SERVICE_CHANGE_CONFIG | sddl.WRITE_DAC | sddl.WRITE_OWNER


@dataclass(slots=True)
class SddlEffect:
    effects: list[str] = field(default_factory=list)
    hidden_from: list[str] = field(default_factory=list)  # "administrators", "interactive users"
    admins_denied: str = ""  # rights administrators lose, in SDDL letters (e.g. "WPSD")
    weak_for: list[str] = field(default_factory=list)  # "WD: DC WD"
    error: str = ""


def sddl_effect(text: str) -> SddlEffect:
    out = SddlEffect()
    try:
        sd = sddl.parse_sddl(text.strip().strip("\"'"))
    except (sddl.SecurityDescriptorError, ValueError) as exc:
        out.effects.append("unreadable")
        out.error = str(exc)
        return out
    if not sd.dacl_present:
        return out  # `sc sdset` with only an owner or a SACL leaves the DACL as it was
    admin = sddl.effective_access(sd, set(ADMIN_TOKEN))
    user = sddl.effective_access(sd, set(USER_TOKEN))
    if not admin & sddl.SERVICE_QUERY_STATUS:
        out.hidden_from.append("administrators")
    if not user & sddl.SERVICE_QUERY_STATUS:
        out.hidden_from.append("interactive users")
    if out.hidden_from:
        out.effects.append("hidden")
    lost = MANAGE_RIGHTS & ~admin
    if lost:
        out.admins_denied = sddl.rights_to_sddl(lost)
        out.effects.append("admins-denied")
    for name, sid in NON_ADMINS:
        granted = sddl.effective_access(sd, {sid}) & CHANGE_RIGHTS
        if granted:
            out.weak_for.append(f"{name}: {sddl.rights_to_sddl(granted)}")
    if out.weak_for:
        out.effects.append("weak")
    return out

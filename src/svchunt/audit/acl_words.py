"""Service rights in words: "Authenticated Users can change the configuration and start it".

The raw SDDL stays in the finding's evidence; what a reader sees first is who gains which right.
"""

from __future__ import annotations

import re

from svchunt.audit import sddl

A = sddl.SID_ALIASES
PRINCIPAL_NAMES = {
    A["WD"]: "Everyone",
    A["AU"]: "Authenticated Users",
    A["BU"]: "Users",
    A["IU"]: "Interactive users",
    A["AN"]: "Anonymous logons",
    A["BG"]: "Guests",
    A["NU"]: "Network logons",
    A["AC"]: "All application packages",
    "S-1-15-2-2": "All restricted application packages",
}
_DOMAIN_RIDS = {"513": "Domain Users", "514": "Domain Guests", "515": "Domain Computers"}
_DOMAIN = re.compile(r"^S-1-5-21-\d+-\d+-\d+-(\d+)$")

# (right, phrase, takes "it"): phrases are listed in this order, object phrases first.
_PHRASES = (
    (sddl.SERVICE_CHANGE_CONFIG, "change the configuration", False),
    (sddl.WRITE_DAC, "change the permissions", False),
    (sddl.WRITE_OWNER, "take ownership", False),
    (sddl.SERVICE_START, "start", True),
    (sddl.SERVICE_STOP, "stop", True),
    (sddl.SERVICE_PAUSE_CONTINUE, "pause", True),
    (sddl.DELETE, "delete", True),
)
WORDED_RIGHTS = 0
for _bit, _, _ in _PHRASES:
    WORDED_RIGHTS |= _bit


def principal_name(sid: str) -> str:
    if sid in PRINCIPAL_NAMES:
        return PRINCIPAL_NAMES[sid]
    match = _DOMAIN.match(sid)
    if match:
        return _DOMAIN_RIDS.get(match.group(1), f"account {sid}")
    return sddl.sid_to_sddl(sid)


def rights_in_words(mask: int) -> str:
    """`change the configuration and start it`, `start and stop it`; "" when none of the worded rights is set."""
    words = [(phrase, takes_it) for bit, phrase, takes_it in _PHRASES if mask & bit]
    if not words:
        return ""
    phrases = [phrase for phrase, _ in words]
    text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return text + " it" if words[-1][1] else text


def grant_sentence(sid: str, mask: int) -> str:
    return f"{principal_name(sid)} can {rights_in_words(mask)}"

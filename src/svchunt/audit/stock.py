"""What a stock Windows install looks like: service names, binaries, DACL grants and recovery programs.

The facts come from `svchunt/data/windows_services.json`, generated from the clean SYSTEM hives of
`../shared/data/hives` by `scripts/build_windows_service_list.py` (derived facts, not a copy of a hive),
plus the documented defaults below. Checks compare a service with its stock entry and report only where it
departs, so a stock install stays quiet and a tampered stock service still stands out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from svchunt.audit import sddl

# The descriptor the SCM gives a service created without one (CreateService with no security attributes, as
# `sc create` does): SYSTEM and administrators manage it, interactive and service logons may only query it.
DEFAULT_SERVICE_SDDL = (
    "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWLOCRRC;;;SU)"
)

# Folders only Windows and Microsoft products install into. System32\drivers is not one of them for this
# purpose (every vendor's driver lands there), see `is_stock_candidate`.
MICROSOFT_FOLDERS = (
    "c:\\program files\\windows defender\\",
    "c:\\program files\\windows defender advanced threat protection\\",
    "c:\\program files\\windows media player\\",
    "c:\\program files\\windows mail\\",
    "c:\\program files\\windows photo viewer\\",
    "c:\\program files\\internet explorer\\",
    "c:\\program files\\common files\\microsoft shared\\",
    "c:\\program files (x86)\\common files\\microsoft shared\\",
    "c:\\program files (x86)\\windows media player\\",
    "c:\\program files (x86)\\internet explorer\\",
    "c:\\programdata\\microsoft\\windows defender\\",
)

# Per-user service instances are the template's name plus `_<hex LUID>` (Windows 10: CDPUserSvc_1d05b).
USER_SERVICE_INSTANCE = 0x80
_INSTANCE_SUFFIX = re.compile(r"^(.+)_[0-9a-f]{4,8}$", re.IGNORECASE)
# Third-party driver packages are installed as oem<N>.inf, so a display name pointing at one is a vendor's.
_VENDOR_INF = re.compile(r"^@oem\d+\.inf,", re.IGNORECASE)


def stock_key(name: str, service_type: int | None) -> str:
    """The name a service is known by in the stock list: a per-user instance maps to its template."""
    key = name.lower()
    if service_type is not None and service_type & USER_SERVICE_INSTANCE:
        match = _INSTANCE_SUFFIX.match(key)
        if match:
            return match.group(1)
    return key


def in_microsoft_folder(path: str | None) -> bool:
    return bool(path) and path.lower().startswith(MICROSOFT_FOLDERS)  # type: ignore[union-attr]


def inbox_resource(text: str | None) -> bool:
    """A MUI reference (`@%SystemRoot%\\system32\\x.dll,-100`, `@x.inf,%Name%;...`) that is not a vendor's INF."""
    return bool(text) and text.startswith("@") and not _VENDOR_INF.match(text)  # type: ignore[union-attr]


@dataclass(slots=True)
class StockService:
    name: str
    display_names: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # lower resolved ImagePath / ServiceDll paths seen
    permissions: dict[str, int] = field(default_factory=dict)  # non-admin SID -> rights some clean hive grants
    failure_programs: list[str] = field(default_factory=list)  # lower resolved FailureCommand programs
    hives: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StockList:
    services: dict[str, StockService] = field(default_factory=dict)  # stock_key -> entry
    display_names: dict[str, str] = field(default_factory=dict)  # lower display name -> service name
    binaries: dict[str, set[str]] = field(default_factory=dict)  # lower basename -> lower folders
    deletes: dict[str, set[str]] = field(default_factory=dict)  # deletion neighbourhood -> stock keys
    source: str = ""

    def get(self, name: str, service_type: int | None = None) -> StockService | None:
        return self.services.get(stock_key(name, service_type))


def deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _rights(text: str) -> int:
    return sddl._parse_rights(text)


def from_json(data: dict) -> StockList:
    out = StockList(source=data.get("source", ""))
    for key, item in data["services"].items():
        permissions = {sddl._parse_sid_text(sid): _rights(rights) for sid, rights in item.get("permissions", {}).items()}
        entry = StockService(item["name"], list(item.get("display_names", [])), list(item.get("paths", [])),
                             permissions, list(item.get("failure_programs", [])), list(item.get("hives", [])))
        out.services[key] = entry
        for display in entry.display_names:
            out.display_names.setdefault(display.lower(), entry.name)
        for variant in deletions(key) | {key}:
            out.deletes.setdefault(variant, set()).add(key)
    out.binaries = {k: set(v) for k, v in data["binaries"].items()}
    return out


@lru_cache(maxsize=1)
def load_stock() -> StockList:
    text = resources.files("svchunt.data").joinpath("windows_services.json").read_text("utf-8")
    return from_json(json.loads(text))


@lru_cache(maxsize=1)
def default_descriptor() -> sddl.SecurityDescriptor:
    return sddl.parse_sddl(DEFAULT_SERVICE_SDDL)

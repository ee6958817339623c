"""Security descriptors of service keys: one ACE model fed by the binary form (registry) or SDDL text (`sc sdshow`).

The hidden/weak checks evaluate this model, never the SDDL string, so that `(D;;LC;;;BA)`, `(D;;0x4;;;S-1-5-32-544)`
and the same ACE in binary all mean the same thing.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

# Service-specific access rights (winsvc.h) and the standard rights that matter for services.
SERVICE_QUERY_CONFIG = 0x0001
SERVICE_CHANGE_CONFIG = 0x0002
SERVICE_QUERY_STATUS = 0x0004
SERVICE_ENUMERATE_DEPENDENTS = 0x0008
SERVICE_START = 0x0010
SERVICE_STOP = 0x0020
SERVICE_PAUSE_CONTINUE = 0x0040
SERVICE_INTERROGATE = 0x0080
SERVICE_USER_DEFINED_CONTROL = 0x0100
DELETE = 0x00010000
READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000
WRITE_OWNER = 0x00080000
SERVICE_ALL_ACCESS = 0x000F01FF
GENERIC_ALL = 0x10000000
GENERIC_EXECUTE = 0x20000000
GENERIC_WRITE = 0x40000000
GENERIC_READ = 0x80000000

# How the SCM maps generic rights for service objects.
_GENERIC_MAP = {
    GENERIC_READ: READ_CONTROL | SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS | SERVICE_INTERROGATE
    | SERVICE_ENUMERATE_DEPENDENTS,
    GENERIC_WRITE: READ_CONTROL | SERVICE_CHANGE_CONFIG,
    GENERIC_EXECUTE: READ_CONTROL | SERVICE_START | SERVICE_STOP | SERVICE_PAUSE_CONTINUE
    | SERVICE_USER_DEFINED_CONTROL,
    GENERIC_ALL: SERVICE_ALL_ACCESS,
}

# SDDL right letters as `sc sdshow` prints them for services.
RIGHTS: dict[str, int] = {
    "CC": SERVICE_QUERY_CONFIG,
    "DC": SERVICE_CHANGE_CONFIG,
    "LC": SERVICE_QUERY_STATUS,
    "SW": SERVICE_ENUMERATE_DEPENDENTS,
    "RP": SERVICE_START,
    "WP": SERVICE_STOP,
    "DT": SERVICE_PAUSE_CONTINUE,
    "LO": SERVICE_INTERROGATE,
    "CR": SERVICE_USER_DEFINED_CONTROL,
    "SD": DELETE,
    "RC": READ_CONTROL,
    "WD": WRITE_DAC,
    "WO": WRITE_OWNER,
    "GA": GENERIC_ALL,
    "GX": GENERIC_EXECUTE,
    "GW": GENERIC_WRITE,
    "GR": GENERIC_READ,
    "FA": 0x001F01FF,
    "KA": 0x000F003F,
}
_RIGHT_ORDER = ["CC", "DC", "LC", "SW", "RP", "WP", "DT", "LO", "CR", "SD", "RC", "WD", "WO", "GA", "GX", "GW", "GR"]

SID_ALIASES: dict[str, str] = {
    "WD": "S-1-1-0",
    "CO": "S-1-3-0",
    "CG": "S-1-3-1",
    "NU": "S-1-5-2",
    "IU": "S-1-5-4",
    "SU": "S-1-5-6",
    "AN": "S-1-5-7",
    "PS": "S-1-5-10",
    "AU": "S-1-5-11",
    "RC": "S-1-5-12",
    "SY": "S-1-5-18",
    "LS": "S-1-5-19",
    "NS": "S-1-5-20",
    "BA": "S-1-5-32-544",
    "BU": "S-1-5-32-545",
    "BG": "S-1-5-32-546",
    "PU": "S-1-5-32-547",
    "AO": "S-1-5-32-548",
    "SO": "S-1-5-32-549",
    "PO": "S-1-5-32-550",
    "BO": "S-1-5-32-551",
    "RE": "S-1-5-32-552",
    "RD": "S-1-5-32-555",
    "NO": "S-1-5-32-556",
    "MU": "S-1-5-32-558",
    "LU": "S-1-5-32-559",
    "IS": "S-1-5-32-568",
    "ER": "S-1-5-32-573",
    "AC": "S-1-15-2-1",
    "ME": "S-1-16-8192",
    "HI": "S-1-16-12288",
    "SI": "S-1-16-16384",
    "LW": "S-1-16-4096",
    "OW": "S-1-3-4",
}
SID_NAMES = {sid: alias for alias, sid in SID_ALIASES.items()}

ACE_TYPES = {"A": 0x00, "D": 0x01, "AU": 0x02, "AL": 0x03, "OA": 0x05, "OD": 0x06, "ML": 0x11}
ACE_TYPE_NAMES = {v: k for k, v in ACE_TYPES.items()}
ACE_FLAGS = {"OI": 0x01, "CI": 0x02, "NP": 0x04, "IO": 0x08, "ID": 0x10, "SA": 0x40, "FA": 0x80}

SE_DACL_PRESENT = 0x0004
SE_SACL_PRESENT = 0x0010
SE_SELF_RELATIVE = 0x8000


class SecurityDescriptorError(ValueError):
    """The binary or SDDL descriptor could not be parsed; the message says where."""


@dataclass(slots=True, frozen=True)
class Ace:
    type: int  # 0 allow, 1 deny, 2 audit, ...
    flags: int
    mask: int
    sid: str

    @property
    def is_allow(self) -> bool:
        return self.type in (0x00, 0x05)

    @property
    def is_deny(self) -> bool:
        return self.type in (0x01, 0x06)

    @property
    def inherit_only(self) -> bool:
        return bool(self.flags & 0x08)


@dataclass(slots=True)
class SecurityDescriptor:
    owner: str | None = None
    group: str | None = None
    dacl: list[Ace] | None = None  # None = no DACL present (a NULL DACL: everyone has full access)
    sacl: list[Ace] | None = None
    control: int = SE_SELF_RELATIVE
    dacl_present: bool = True
    notes: list[str] = field(default_factory=list)

    def to_sddl(self) -> str:
        out = []
        if self.owner:
            out.append("O:" + sid_to_sddl(self.owner))
        if self.group:
            out.append("G:" + sid_to_sddl(self.group))
        if self.dacl_present:
            out.append("D:" + ("NO_ACCESS_CONTROL" if self.dacl is None else "".join(_ace_to_sddl(a) for a in self.dacl)))
        if self.sacl is not None:
            out.append("S:" + "".join(_ace_to_sddl(a) for a in self.sacl))
        return "".join(out)


def map_generic(mask: int) -> int:
    """Expand GENERIC_* bits with the service generic mapping; other bits stay."""
    out = mask & 0x0FFFFFFF
    for bit, mapped in _GENERIC_MAP.items():
        if mask & bit:
            out |= mapped
    return out


def sid_to_sddl(sid: str) -> str:
    return SID_NAMES.get(sid, sid)


def rights_to_sddl(mask: int) -> str:
    rest = mask
    out = []
    for name in _RIGHT_ORDER:
        bit = RIGHTS[name]
        if rest & bit == bit:
            out.append(name)
            rest &= ~bit
    if rest:
        return f"0x{mask:x}"
    return "".join(out)


def _ace_to_sddl(ace: Ace) -> str:
    flags = "".join(name for name, bit in ACE_FLAGS.items() if ace.flags & bit)
    return f"({ACE_TYPE_NAMES.get(ace.type, hex(ace.type))};{flags};{rights_to_sddl(ace.mask)};;;{sid_to_sddl(ace.sid)})"


# ---------------------------------------------------------------- binary form


def _sid_from_bytes(data: bytes, offset: int) -> str:
    if offset + 8 > len(data):
        raise SecurityDescriptorError(f"SID at offset {offset} runs past the end ({len(data)} bytes)")
    revision, count = data[offset], data[offset + 1]
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    end = offset + 8 + 4 * count
    if revision != 1 or count > 15 or end > len(data):
        raise SecurityDescriptorError(f"bad SID at offset {offset} (revision {revision}, {count} sub-authorities)")
    subs = struct.unpack_from(f"<{count}I", data, offset + 8)
    return "S-1-" + str(authority) + "".join(f"-{s}" for s in subs)


def sid_to_bytes(sid: str) -> bytes:
    sid = SID_ALIASES.get(sid, sid)
    parts = sid.split("-")
    if len(parts) < 3 or parts[0] != "S":
        raise SecurityDescriptorError(f"bad SID {sid!r}")
    subs = [int(p) for p in parts[3:]]
    return bytes([int(parts[1]), len(subs)]) + int(parts[2]).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def _acl_from_bytes(data: bytes, offset: int) -> list[Ace]:
    if offset + 8 > len(data):
        raise SecurityDescriptorError(f"ACL at offset {offset} runs past the end")
    _rev, _sbz, _size, count, _sbz2 = struct.unpack_from("<BBHHH", data, offset)
    aces = []
    pos = offset + 8
    for index in range(count):
        if pos + 4 > len(data):
            raise SecurityDescriptorError(f"ACE {index} at offset {pos} runs past the end")
        ace_type, ace_flags, ace_size = struct.unpack_from("<BBH", data, pos)
        if ace_size < 8 or pos + ace_size > len(data):
            raise SecurityDescriptorError(f"ACE {index} at offset {pos} has bad size {ace_size}")
        mask = struct.unpack_from("<I", data, pos + 4)[0]
        sid_at = pos + 8
        if ace_type in (0x05, 0x06, 0x07):  # object ACEs carry GUIDs before the SID
            obj_flags = struct.unpack_from("<I", data, pos + 8)[0]
            sid_at = pos + 12 + (16 if obj_flags & 1 else 0) + (16 if obj_flags & 2 else 0)
        aces.append(Ace(ace_type, ace_flags, mask, _sid_from_bytes(data, sid_at)))
        pos += ace_size
    return aces


def parse_binary(data: bytes) -> SecurityDescriptor:
    """Self-relative SECURITY_DESCRIPTOR (the `Security` value of a service's `Security` subkey)."""
    if len(data) < 20:
        raise SecurityDescriptorError(f"descriptor is {len(data)} bytes, shorter than its 20-byte header")
    revision, _sbz, control, o_owner, o_group, o_sacl, o_dacl = struct.unpack_from("<BBHIIII", data, 0)
    if revision != 1:
        raise SecurityDescriptorError(f"descriptor revision {revision}, expected 1")
    if not control & SE_SELF_RELATIVE:
        raise SecurityDescriptorError("descriptor is not self-relative")
    sd = SecurityDescriptor(control=control)
    sd.owner = _sid_from_bytes(data, o_owner) if o_owner else None
    sd.group = _sid_from_bytes(data, o_group) if o_group else None
    sd.dacl_present = bool(control & SE_DACL_PRESENT)
    sd.dacl = _acl_from_bytes(data, o_dacl) if sd.dacl_present and o_dacl else None
    if control & SE_SACL_PRESENT and o_sacl:
        sd.sacl = _acl_from_bytes(data, o_sacl)
    return sd


def _acl_to_bytes(aces: list[Ace]) -> bytes:
    body = b""
    for ace in aces:
        sid = sid_to_bytes(ace.sid)
        body += struct.pack("<BBHI", ace.type, ace.flags, 8 + len(sid), ace.mask) + sid
    return struct.pack("<BBHHH", 2, 0, 8 + len(body), len(aces), 0) + body


def to_binary(sd: SecurityDescriptor) -> bytes:
    """Self-relative binary form: used to build test fixtures and for round-trip checks."""
    control = SE_SELF_RELATIVE
    parts: list[bytes] = []
    offset = 20
    offsets = {"owner": 0, "group": 0, "sacl": 0, "dacl": 0}
    if sd.sacl is not None:
        control |= SE_SACL_PRESENT
        blob = _acl_to_bytes(sd.sacl)
        offsets["sacl"], offset = offset, offset + len(blob)
        parts.append(blob)
    if sd.dacl_present:
        control |= SE_DACL_PRESENT
        if sd.dacl is not None:
            blob = _acl_to_bytes(sd.dacl)
            offsets["dacl"], offset = offset, offset + len(blob)
            parts.append(blob)
    for key, sid in (("owner", sd.owner), ("group", sd.group)):
        if sid:
            blob = sid_to_bytes(sid)
            offsets[key], offset = offset, offset + len(blob)
            parts.append(blob)
    header = struct.pack("<BBHIIII", 1, 0, control, offsets["owner"], offsets["group"], offsets["sacl"], offsets["dacl"])
    return header + b"".join(parts)


# ---------------------------------------------------------------- SDDL text

_SECTION = re.compile(r"([OGDS]):")
_ACE = re.compile(r"\(([^()]*)\)")


def _parse_sid_text(text: str) -> str:
    text = text.strip()
    if text.upper() in SID_ALIASES:
        return SID_ALIASES[text.upper()]
    if re.fullmatch(r"S-1-\d+(-\d+)*", text, re.IGNORECASE):
        return "S" + text[1:]
    raise SecurityDescriptorError(f"unknown SID {text!r}")


def _parse_rights(text: str) -> int:
    text = text.strip()
    if text.lower().startswith("0x"):
        return int(text, 16)
    if text.isdigit():
        return int(text)
    if len(text) % 2:
        raise SecurityDescriptorError(f"bad rights {text!r}")
    mask = 0
    for i in range(0, len(text), 2):
        token = text[i : i + 2].upper()
        if token not in RIGHTS:
            raise SecurityDescriptorError(f"unknown right {token!r} in {text!r}")
        mask |= RIGHTS[token]
    return mask


def _parse_flags(text: str) -> int:
    flags = 0
    for i in range(0, len(text), 2):
        token = text[i : i + 2].upper()
        if token not in ACE_FLAGS:
            raise SecurityDescriptorError(f"unknown ACE flag {token!r}")
        flags |= ACE_FLAGS[token]
    return flags


def _parse_acl_text(text: str) -> list[Ace]:
    aces = []
    for match in _ACE.finditer(text):
        fields = match.group(1).split(";")
        if len(fields) < 6:
            raise SecurityDescriptorError(f"ACE ({match.group(1)}) has {len(fields)} fields, expected 6")
        kind = fields[0].strip().upper()
        if kind not in ACE_TYPES:
            raise SecurityDescriptorError(f"unknown ACE type {kind!r}")
        aces.append(Ace(ACE_TYPES[kind], _parse_flags(fields[1].strip()), _parse_rights(fields[2]), _parse_sid_text(fields[5])))
    return aces


def parse_sddl(text: str) -> SecurityDescriptor:
    """`O:..G:..D:(..)S:(..)` as printed by `sc sdshow` or passed to `sc sdset`."""
    text = text.strip()
    sd = SecurityDescriptor(dacl_present=False)
    sections = list(_SECTION.finditer(text))
    if not sections or sections[0].start() != 0:
        raise SecurityDescriptorError(f"not an SDDL string: {text[:60]!r}")
    for index, match in enumerate(sections):
        end = sections[index + 1].start() if index + 1 < len(sections) else len(text)
        body = text[match.end() : end]
        kind = match.group(1)
        if kind == "O":
            sd.owner = _parse_sid_text(body)
        elif kind == "G":
            sd.group = _parse_sid_text(body)
        else:
            acl_flags, _, _ = body.partition("(")
            if kind == "D":
                sd.dacl_present = True
                sd.dacl = None if "NO_ACCESS_CONTROL" in acl_flags.upper() else _parse_acl_text(body)
            else:
                sd.sacl = _parse_acl_text(body)
    return sd


# ---------------------------------------------------------------- evaluation


def effective_access(sd: SecurityDescriptor, token_sids: set[str]) -> int:
    """Rights the DACL grants a token with these SIDs, walking ACEs in order like AccessCheck does."""
    if not sd.dacl_present or sd.dacl is None:
        return SERVICE_ALL_ACCESS
    granted = 0
    denied = 0
    for ace in sd.dacl:
        if ace.inherit_only or ace.sid not in token_sids:
            continue
        mask = map_generic(ace.mask)
        if ace.is_deny:
            denied |= mask & ~granted
        elif ace.is_allow:
            granted |= mask & ~denied
    return granted


def denied_rights(sd: SecurityDescriptor, sid: str) -> int:
    """Rights removed from a SID by deny ACEs naming it (whatever allow ACEs follow)."""
    out = 0
    for ace in sd.dacl or []:
        if ace.is_deny and ace.sid == sid and not ace.inherit_only:
            out |= map_generic(ace.mask)
    return out

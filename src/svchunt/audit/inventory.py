"""Every service and driver of every ControlSet, with the values the checks need."""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from svchunt.audit import sddl
from svchunt.audit.hive import KeyView, RegistrySource
from svchunt.audit.paths import ResolvedPath, resolve
from svchunt.model import Problem

TYPE_NAMES = {
    0x1: "kernel driver",
    0x2: "file system driver",
    0x4: "adapter",
    0x8: "recognizer driver",
    0x10: "own process",
    0x20: "share process",
}
START_NAMES = {0: "boot", 1: "system", 2: "auto", 3: "demand", 4: "disabled"}
FAILURE_ACTION_NAMES = {0: "none", 1: "restart", 2: "reboot", 3: "run command"}


@dataclass(slots=True)
class FailureAction:
    type: int
    delay_ms: int

    @property
    def name(self) -> str:
        return FAILURE_ACTION_NAMES.get(self.type, f"unknown {self.type}")


@dataclass(slots=True)
class ServiceEntry:
    control_set: str
    name: str
    key_path: str
    last_write: str | None
    display_name: str | None = None
    description: str | None = None
    type: int | None = None
    start: int | None = None
    image_path: ResolvedPath | None = None
    service_dll: ResolvedPath | None = None
    service_dll_key: str | None = None
    object_name: str | None = None
    failure_command: str | None = None
    failure_actions: list[FailureAction] = field(default_factory=list)
    failure_reset_seconds: int | None = None
    security: sddl.SecurityDescriptor | None = None
    sddl: str | None = None
    delayed_auto_start: bool = False
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # "image"/"dll" -> hashes, signature, found path

    @property
    def is_driver(self) -> bool:
        return self.type is not None and bool(self.type & 0x3) and not self.type & 0x30

    @property
    def runnable(self) -> bool:
        """A key the SCM can start: it has a Type. Keys without one are leftovers or parameter-only keys."""
        return self.type is not None

    @property
    def type_name(self) -> str | None:
        if self.type is None:
            return None
        names = [name for bit, name in TYPE_NAMES.items() if self.type & bit]
        if self.type & 0x40 or self.type & 0x80:
            names.append("user service")
        return ", ".join(names) or hex(self.type)

    @property
    def start_name(self) -> str | None:
        return None if self.start is None else START_NAMES.get(self.start, str(self.start))

    def to_dict(self) -> dict[str, Any]:
        def path(p: ResolvedPath | None) -> dict[str, Any] | None:
            return None if p is None else {"raw": p.raw, "resolved": p.path, "args": p.args, "location": p.location}

        return {
            "control_set": self.control_set,
            "name": self.name,
            "key_path": self.key_path,
            "last_write": self.last_write,
            "display_name": self.display_name,
            "description": self.description,
            "type": self.type,
            "type_name": self.type_name,
            "start": self.start,
            "start_name": self.start_name,
            "image_path": path(self.image_path),
            "service_dll": path(self.service_dll),
            "object_name": self.object_name,
            "failure_command": self.failure_command,
            "failure_actions": [{"type": a.name, "delay_ms": a.delay_ms} for a in self.failure_actions],
            "failure_reset_seconds": self.failure_reset_seconds,
            "sddl": self.sddl,
            "files": self.files,
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-16-le", errors="replace").rstrip("\x00")
    return str(value).rstrip("\x00")


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def parse_failure_actions(data: Any) -> tuple[int | None, list[FailureAction]]:
    """SERVICE_FAILURE_ACTIONS as the SCM stores it: 5 DWORD header then (type, delay) pairs."""
    if isinstance(data, str):
        try:
            data = bytes.fromhex(data)
        except ValueError:
            return None, []
    if not isinstance(data, bytes | bytearray) or len(data) < 20:
        return None, []
    reset, _msg, _cmd, count, _ptr = struct.unpack_from("<5I", data, 0)
    count = min(count, (len(data) - 20) // 8)
    actions = [FailureAction(*struct.unpack_from("<II", data, 20 + 8 * i)) for i in range(count)]
    return reset, actions


def control_sets(source: RegistrySource) -> tuple[list[str], str | None]:
    """All `ControlSetNNN` keys, and which one `Select\\Current` points at."""
    names = sorted(n for n in source.subkeys("") if re.fullmatch(r"controlset\d{3}", n, re.IGNORECASE))
    current = None
    select = source.key("Select")
    if select is not None and isinstance(select.get("Current"), int):
        wanted = f"ControlSet{select.get('Current'):03d}".lower()
        current = next((n for n in names if n.lower() == wanted), None)
    return names, current


def read_service(source: RegistrySource, control_set: str, view: KeyView) -> ServiceEntry:
    entry = ServiceEntry(control_set=control_set, name=view.name, key_path=view.path, last_write=view.last_write)
    entry.display_name = _text(view.get("DisplayName"))
    entry.description = _text(view.get("Description"))
    entry.type = _int(view.get("Type"))
    entry.start = _int(view.get("Start"))
    entry.object_name = _text(view.get("ObjectName"))
    entry.delayed_auto_start = _int(view.get("DelayedAutostart")) == 1
    image = view.get("ImagePath")
    if image is not None or entry.is_driver:
        entry.image_path = resolve(_text(image), is_driver=entry.is_driver, service_name=view.name)
    entry.failure_command = _text(view.get("FailureCommand")) or None
    if view.get("FailureActions") is not None:
        entry.failure_reset_seconds, entry.failure_actions = parse_failure_actions(view.get("FailureActions"))
    dll = view.get("ServiceDll")
    dll_key = view.path
    params = source.key(view.path + "\\Parameters")
    if params is not None and params.get("ServiceDll") is not None:
        dll, dll_key = params.get("ServiceDll"), params.path
    if dll is not None and _text(dll):
        entry.service_dll = resolve(_text(dll))
        entry.service_dll_key = dll_key
    security = source.key(view.path + "\\Security")
    blob = security.get("Security") if security is not None else None
    if isinstance(blob, str):  # regipy hands back hex when it trimmed; be tolerant
        try:
            blob = bytes.fromhex(blob)
        except ValueError:
            blob = None
    if isinstance(blob, bytes | bytearray) and blob:
        try:
            entry.security = sddl.parse_binary(bytes(blob))
            entry.sddl = entry.security.to_sddl()
        except sddl.SecurityDescriptorError as exc:
            source.problems.append(Problem(source.label, f"key {view.path}\\Security", f"Security value unreadable: {exc}"))
    return entry


def read_inventory(source: RegistrySource) -> tuple[list[str], str | None, list[ServiceEntry]]:
    sets, current = control_sets(source)
    if not sets:
        source.problems.append(Problem(source.label, "file", "no ControlSetNNN key: not a SYSTEM hive, or its root is damaged"))
    entries: list[ServiceEntry] = []
    for control_set in sets:
        base = f"{control_set}\\Services"
        for name in source.subkeys(base):
            if not name or not name.isprintable() or "\ufffd" in name:
                shown = repr(name[:40]) + ("…" if len(name) > 40 else "")
                source.problems.append(
                    Problem(source.label, f"key {base}", f"damaged subkey record (name {shown}, {len(name)} chars) skipped")
                )
                continue
            view = source.key(f"{base}\\{name}")
            if view is None:
                source.problems.append(Problem(source.label, f"key {base}\\{name}", "listed but unreadable"))
                continue
            entries.append(read_service(source, control_set, view))
    return sets, current, entries


def entry_from_dict(data: dict[str, Any]) -> dict[str, Any]:
    """Baseline files are our own JSON: keep them as dicts, only this shape is relied upon."""
    return data


__all__ = ["ServiceEntry", "FailureAction", "read_inventory", "control_sets", "parse_failure_actions", "asdict"]

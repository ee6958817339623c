"""Fields added to an event once, at read time, so that rules and correlations never recompute them.

- Security 4688 also gets Sigma's process_creation names (`Image`, `ParentImage`).
- Security 4657 also gets Sysmon-style registry names (`TargetObject`, `Details`, `Image`).
- Service installs (System 7045, Security 4697, Sysmon 13 on `...\\ImagePath`, 4657 on `ImagePath`) get
  `ImagePathNormalised` (see image_path.py) and `ImagePathCommand` (the raw command, `%%` undoubled).
- Process creation (Sysmon 1, Security 4688) of sc/reg/wmic/net/PowerShell and PowerShell logs (4103 module,
  4104 script block, 800 classic pipeline) get `ServiceCommand*` fields: the service operations the command
  performs, parsed once (see service_fields.py and command_line.py).
- PsExec-style pipes (Sysmon 17/18 `PipeName`, 5145 `RelativeTargetName` on IPC$) named
  `<service>-<SRCHOST>-<PID>-stdin|stdout|stderr` get `PsExecSourceHost` (the client's host name).
- Sysmon events with `User` (`DOMAIN\\name`) get `UserAccount` (`name`), the form allowlists use.
- Registry events (Sysmon 12/13/14, 4657) under `...\\ControlSet\\Services\\<name>` get `ServiceKeyName`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from svchunt.normalise.command_line import process_tool
from svchunt.normalise.image_path import normalise_image_path
from svchunt.normalise.service_fields import (
    SERVICE_FIELDS,
    add_module_log_fields,
    add_process_fields,
    add_script_fields,
)

SYSMON = "Microsoft-Windows-Sysmon/Operational"
_PIPE_SUFFIXES = ("-stdin", "-stdout", "-stderr")
_SERVICE_KEY = re.compile(r"(?i)\\(?:currentcontrolset|controlset\d{3})\\services\\([^\\]+)")


def _service_key_name(fields: dict[str, Any]) -> None:
    target = fields.get("TargetObject")
    if isinstance(target, str) and (m := _SERVICE_KEY.search(target)):
        fields["ServiceKeyName"] = m.group(1)

_REGISTRY_ROOTS = (
    ("\\registry\\machine\\", "HKLM\\"),
    ("\\registry\\user\\", "HKU\\"),
)


def registry_path(object_name: str) -> str:
    """`\\REGISTRY\\MACHINE\\SYSTEM\\...` (4657 ObjectName) -> `HKLM\\SYSTEM\\...` (Sysmon TargetObject)."""
    low = object_name[:19].lower()
    for prefix, short in _REGISTRY_ROOTS:
        if low.startswith(prefix):
            return short + object_name[len(prefix) :]
    return object_name


def _service_image(fields: dict[str, Any], raw: Any, undouble: bool) -> None:
    if not isinstance(raw, str):
        return
    fields["ImagePathNormalised"] = normalise_image_path(raw)
    fields["ImagePathCommand"] = raw.replace("%%", "%") if undouble else raw


def _security_4688(fields: dict[str, Any]) -> None:
    new = fields.get("NewProcessName")
    if new is not None and "Image" not in fields:
        fields["Image"] = new
    parent = fields.get("ParentProcessName")
    if parent is not None and "ParentImage" not in fields:
        fields["ParentImage"] = parent
    add_process_fields(fields)


def _user_account(fields: dict[str, Any]) -> None:
    user = fields.get("User")
    if user.__class__ is str and (cut := user.rfind("\\")) >= 0:
        fields["UserAccount"] = user[cut + 1 :]


def _sysmon_1(fields: dict[str, Any]) -> None:
    # every Sysmon process creation passes here: keep the no-tool path to a few dict lookups
    if fields.get("Channel") != SYSMON:
        return
    _user_account(fields)
    add_process_fields(fields)


def psexec_source_host(pipe: str) -> str | None:
    """`\\PSEXESVC-WS01-4120-stdin` / `blabla-WS01-4120-stdout` -> `WS01` (PsExec names pipes after its client)."""
    if not pipe.endswith(_PIPE_SUFFIXES):
        return None
    parts = pipe.lstrip("\\").rsplit("-", 3)
    if len(parts) != 4 or not parts[2].isdigit() or not parts[0] or not parts[1]:
        return None
    return parts[1]


def _sysmon_pipe(fields: dict[str, Any]) -> None:
    if fields.get("Channel") != SYSMON:
        return
    pipe = fields.get("PipeName")
    if isinstance(pipe, str) and (host := psexec_source_host(pipe)):
        fields["PsExecSourceHost"] = host
    _user_account(fields)


def _security_5145(fields: dict[str, Any]) -> None:
    name = fields.get("RelativeTargetName")
    if isinstance(name, str) and name.endswith(_PIPE_SUFFIXES) and (host := psexec_source_host(name)):
        fields["PsExecSourceHost"] = host


def _security_4657(fields: dict[str, Any]) -> None:
    name = fields.get("ObjectName")
    value_name = fields.get("ObjectValueName")
    if isinstance(name, str) and "TargetObject" not in fields:
        target = registry_path(name)
        # Sysmon's TargetObject ends with the value name; 4657 keeps it apart.
        if isinstance(value_name, str) and value_name:
            target = f"{target}\\{value_name}"
        fields["TargetObject"] = target
    if "NewValue" in fields and "Details" not in fields:
        fields["Details"] = fields["NewValue"]
    if "ProcessName" in fields and "Image" not in fields:
        fields["Image"] = fields["ProcessName"]
    if isinstance(value_name, str) and value_name.lower() == "imagepath":
        _service_image(fields, fields.get("NewValue"), undouble=False)
    _service_key_name(fields)


def _system_7045(fields: dict[str, Any]) -> None:
    _service_image(fields, fields.get("ImagePath"), undouble=False)


def _security_4697(fields: dict[str, Any]) -> None:
    _service_image(fields, fields.get("ServiceFileName"), undouble=False)


def _sysmon_13(fields: dict[str, Any]) -> None:
    target = fields.get("TargetObject")
    if isinstance(target, str) and target[-10:].lower() == "\\imagepath":
        _service_image(fields, fields.get("Details"), undouble=True)
    _service_key_name(fields)
    _user_account(fields)


def _sysmon_registry(fields: dict[str, Any]) -> None:
    _service_key_name(fields)
    _user_account(fields)


def _is_powershell(fields: dict[str, Any]) -> bool:
    channel = fields.get("Channel")
    return isinstance(channel, str) and "powershell" in channel.lower()


def _powershell_4104(fields: dict[str, Any]) -> None:
    if _is_powershell(fields):
        add_script_fields(fields, fields.get("ScriptBlockText"))


def _powershell_4103(fields: dict[str, Any]) -> None:
    if _is_powershell(fields):
        add_module_log_fields(fields, fields.get("Payload"), None)


def _powershell_800(fields: dict[str, Any]) -> None:
    if not _is_powershell(fields):
        return
    data = fields.get("Data")
    if isinstance(data, list):
        # classic pipeline event: [command line, context, details (CommandInvocation/ParameterBinding lines)]
        script = data[0] if data and isinstance(data[0], str) else None
        details = "\n".join(d for d in data[1:] if isinstance(d, str))
        add_module_log_fields(fields, details, script)
    elif isinstance(data, str):
        add_module_log_fields(fields, data, data)


_BY_EVENT_ID = {
    1: _sysmon_1,
    4688: _security_4688,
    4657: _security_4657,
    7045: _system_7045,
    4697: _security_4697,
    12: _sysmon_registry,
    13: _sysmon_13,
    14: _sysmon_registry,
    17: _sysmon_pipe,
    18: _sysmon_pipe,
    5145: _security_5145,
    4103: _powershell_4103,
    4104: _powershell_4104,
    800: _powershell_800,
}


# The fields each EventID's handler may add or change, whatever the channel: a raw record can stand in for
# its normalised event on every other field (engine.matcher.Matcher.record_filter). Kept apart from the
# handlers so that the test over the samples (tests/test_raw_prefilter.py) can hold them to it.
_IMAGE_PATH = frozenset({"ImagePathNormalised", "ImagePathCommand"})
_REGISTRY = frozenset({"ServiceKeyName", "UserAccount"})
_PIPE = frozenset({"PsExecSourceHost", "UserAccount"})
WRITES: dict[int, frozenset[str]] = {
    1: SERVICE_FIELDS | {"UserAccount"},
    4688: SERVICE_FIELDS | {"Image", "ParentImage"},
    4657: _IMAGE_PATH | {"TargetObject", "Details", "Image", "ServiceKeyName"},
    7045: _IMAGE_PATH,
    4697: _IMAGE_PATH,
    12: _REGISTRY,
    13: _IMAGE_PATH | _REGISTRY,
    14: _REGISTRY,
    17: _PIPE,
    18: _PIPE,
    5145: frozenset({"PsExecSourceHost"}),
    4103: SERVICE_FIELDS,
    4104: SERVICE_FIELDS,
    800: SERVICE_FIELDS,
}


def written_fields(event_id: int | None) -> frozenset[str]:
    """The fields `add_derived` may write on an event of this EventID (of any channel)."""
    return WRITES.get(event_id, frozenset()) if event_id is not None else frozenset()


_USER_ONLY = frozenset({"useraccount"})
_PROCESS_WRITES = frozenset(name.lower() for name in WRITES[1])


def _process_gate(fields: dict[str, Any]) -> frozenset[str]:
    # `_sysmon_1`'s writes: UserAccount, and the ServiceCommand* fields only for a service tool, as
    # `add_process_fields` decides it
    command = fields.get("CommandLine")
    if command.__class__ is str and command:
        image = fields.get("Image")
        original = fields.get("OriginalFileName")
        tool = process_tool(
            image if image.__class__ is str else None, original if original.__class__ is str else None, command
        )
        if tool is not None:
            return _PROCESS_WRITES
    return _USER_ONLY


# For some EventIDs, a cheap answer from an event's fields before derivation (its EventData): which of the
# fields in WRITES (lower-cased) the handler may write on it. A Sysmon process creation of anything but a
# service tool gets no ServiceCommand* field, and a record of it can be judged on its raw fields.
GATES: dict[int, Callable[[dict[str, Any]], frozenset[str]]] = {1: _process_gate}


def add_derived(fields: dict[str, Any]) -> None:
    """Add the derived fields in place; a dict lookup for events that need nothing."""
    handler = _BY_EVENT_ID.get(fields.get("EventID"))  # type: ignore[arg-type]
    if handler is not None:
        handler(fields)

"""`ServiceCommand*` event fields: the service operations a command line or PowerShell log performs.

Set only when the event holds at least one operation. One operation gives scalar values; an event with
several (a script block, `sc config X ... & sc start X` in one PowerShell line) gives lists, which Sigma
rules match element by element. Fields:

- `ServiceCommandVerb`: create | config | failure | sdset | delete | description | start | stop | control |
  set-value | delete-value | create-key | delete-key (registry forms);
- `ServiceCommandTool`: sc | powershell | wmi | reg | net;
- `ServiceCommandService` (the first operation's service: one value, for correlation group-by),
  `ServiceCommandServices` (all of them), `ServiceCommandHost` (remote computer, `\\\\host` / -ComputerName);
- `ServiceCommandBinPath` and `ServiceCommandBinPathNormalised` (the executable, as `ImagePathNormalised`),
  `ServiceCommandStartType` (auto | delayed-auto | demand | disabled | boot | system), `ServiceCommandDisabled`
  (services set to disabled), `ServiceCommandFailureCommand`, `ServiceCommandFailureActions`,
  `ServiceCommandRegValue` (value written under `...\\Services\\<name>`, e.g. `ImagePath`,
  `Parameters\\ServiceDll`), `ServiceCommandAccount`;
- `ServiceCommandSddl` and its effect, judged by sddl_effect.py: `ServiceSddlEffect` (hidden | admins-denied |
  weak | unreadable), `ServiceSddlHiddenFrom`, `ServiceSddlAdminsDenied`, `ServiceSddlWeakFor`, `ServiceSddlError`.
"""

from __future__ import annotations

from typing import Any

from svchunt.normalise.command_line import (
    ServiceOp,
    has_service_hint,
    module_log_text,
    parse_powershell,
    parse_process,
    process_tool,
)
from svchunt.normalise.image_path import normalise_image_path


def add_process_fields(fields: dict[str, Any]) -> None:
    command = fields.get("CommandLine")
    if command.__class__ is not str or not command:
        return
    image = fields.get("Image")
    original = fields.get("OriginalFileName")
    image = image if image.__class__ is str else None
    original = original if original.__class__ is str else None
    if process_tool(image, original, command) is None:
        return
    ops = parse_process(image, original, command)
    if ops:
        set_fields(fields, ops)


def add_script_fields(fields: dict[str, Any], text: Any) -> None:
    """PowerShell script text (4104): cmdlets, registry and WMI calls, and sc.exe/reg/wmic/net run from it."""
    if not isinstance(text, str) or not has_service_hint(text):
        return
    ops = parse_powershell(text, native=True)
    if ops:
        set_fields(fields, ops)


def add_module_log_fields(fields: dict[str, Any], details: Any, script: Any) -> None:
    """PowerShell module logging (4103 Payload) or the classic pipeline event (800)."""
    ops: list[ServiceOp] = []
    if isinstance(details, str) and "ParameterBinding(" in details and has_service_hint(details):
        ops.extend(parse_powershell(module_log_text(details), native=False))
    if isinstance(script, str) and has_service_hint(script):
        ops.extend(parse_powershell(script, native=True))
    if ops:
        set_fields(fields, ops)


# Every field `set_fields` may write: what a reader must not judge from a raw record (derived.WRITES).
SERVICE_FIELDS = frozenset({
    "ServiceCommandVerb", "ServiceCommandTool", "ServiceCommandService", "ServiceCommandServices",
    "ServiceCommandHost", "ServiceCommandBinPath", "ServiceCommandBinPathNormalised", "ServiceCommandStartType",
    "ServiceCommandDisabled", "ServiceCommandFailureCommand", "ServiceCommandFailureActions",
    "ServiceCommandRegValue", "ServiceCommandAccount", "ServiceCommandSddl", "ServiceSddlEffect",
    "ServiceSddlHiddenFrom", "ServiceSddlAdminsDenied", "ServiceSddlWeakFor", "ServiceSddlError",
})  # fmt: skip


def _one_or_list(values: list[Any]) -> Any:
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct


def set_fields(fields: dict[str, Any], ops: list[ServiceOp]) -> None:
    unique = list({_identity(op): op for op in ops}.values())
    columns: dict[str, Any] = {
        "ServiceCommandVerb": _one_or_list([op.verb for op in unique]),
        "ServiceCommandTool": _one_or_list([op.tool for op in unique]),
        "ServiceCommandService": next((op.service for op in unique if op.service), None),
        "ServiceCommandServices": _one_or_list([op.service for op in unique]),
        "ServiceCommandHost": _one_or_list([op.host for op in unique]),
        "ServiceCommandBinPath": _one_or_list([op.bin_path for op in unique]),
        "ServiceCommandBinPathNormalised": _one_or_list(
            [normalise_image_path(op.bin_path) if op.bin_path else None for op in unique]
        ),
        "ServiceCommandStartType": _one_or_list([op.start_type for op in unique]),
        "ServiceCommandDisabled": _one_or_list([op.service for op in unique if op.start_type == "disabled"]),
        "ServiceCommandFailureCommand": _one_or_list([op.failure_command for op in unique]),
        "ServiceCommandFailureActions": _one_or_list([op.failure_actions for op in unique]),
        "ServiceCommandRegValue": _one_or_list([op.reg_value for op in unique]),
        "ServiceCommandAccount": _one_or_list([op.account for op in unique]),
    }
    sddls = [op.sddl for op in unique if op.sddl]
    if sddls:
        columns.update(_sddl_columns(sddls))
    for name, value in columns.items():
        if value is not None and value != "":
            fields[name] = value


def _sddl_columns(sddls: list[str]) -> dict[str, Any]:
    from svchunt.normalise.sddl_effect import sddl_effect  # only events that set a descriptor pay for it

    effects = [sddl_effect(text) for text in sddls]
    return {
        "ServiceCommandSddl": _one_or_list(sddls),
        "ServiceSddlEffect": _one_or_list([e for eff in effects for e in eff.effects]),
        "ServiceSddlHiddenFrom": _one_or_list([h for eff in effects for h in eff.hidden_from]),
        "ServiceSddlAdminsDenied": _one_or_list([eff.admins_denied or None for eff in effects]),
        "ServiceSddlWeakFor": _one_or_list([w for eff in effects for w in eff.weak_for]),
        "ServiceSddlError": _one_or_list([eff.error or None for eff in effects]),
    }


def _identity(op: ServiceOp) -> tuple:
    return (
        op.tool, op.verb, (op.service or "").lower(), (op.host or "").lower(), op.bin_path, op.start_type,
        op.failure_command, op.failure_actions, op.sddl, (op.reg_value or "").lower(), op.reg_data, op.account,
    )  # fmt: skip

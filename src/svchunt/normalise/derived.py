"""Fields added to an event once, at read time, so that rules and correlations never recompute them.

- Security 4688 also gets Sigma's process_creation names (`Image`, `ParentImage`).
- Security 4657 also gets Sysmon-style registry names (`TargetObject`, `Details`, `Image`).
- Service installs (System 7045, Security 4697, Sysmon 13 on `...\\ImagePath`, 4657 on `ImagePath`) get
  `ImagePathNormalised` (see image_path.py) and `ImagePathCommand` (the raw command, `%%` undoubled).
"""

from __future__ import annotations

from typing import Any

from svchunt.normalise.image_path import normalise_image_path

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


def _system_7045(fields: dict[str, Any]) -> None:
    _service_image(fields, fields.get("ImagePath"), undouble=False)


def _security_4697(fields: dict[str, Any]) -> None:
    _service_image(fields, fields.get("ServiceFileName"), undouble=False)


def _sysmon_13(fields: dict[str, Any]) -> None:
    target = fields.get("TargetObject")
    if isinstance(target, str) and target[-10:].lower() == "\\imagepath":
        _service_image(fields, fields.get("Details"), undouble=True)


_BY_EVENT_ID = {
    4688: _security_4688,
    4657: _security_4657,
    7045: _system_7045,
    4697: _security_4697,
    13: _sysmon_13,
}


def add_derived(fields: dict[str, Any]) -> None:
    """Add the derived fields in place; a dict lookup for events that need nothing."""
    handler = _BY_EVENT_ID.get(fields.get("EventID"))  # type: ignore[arg-type]
    if handler is not None:
        handler(fields)

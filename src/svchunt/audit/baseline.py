"""Check 10: what changed since an earlier audit (`--baseline FILE`, that audit's JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from svchunt.audit.findings import Finding

COMPARED = ("display_name", "type", "start", "image_path", "service_dll", "object_name", "failure_command",
            "failure_actions", "sddl")
COVERS = ("DS0019.creation", "DS0019.modification", "M1047")


class BaselineError(ValueError):
    pass


def _comparable(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for field in COMPARED:
        value = item.get(field)
        if isinstance(value, dict):  # paths: compare what is written in the registry
            value = value.get("raw")
        out[field] = value
    return out


def _index(inventory: list[dict[str, Any]], current: str | None) -> dict[str, dict[str, Any]]:
    """One row per service: the current control set's, or the first seen."""
    out: dict[str, dict[str, Any]] = {}
    for item in inventory:
        key = item["name"].lower()
        if key not in out or (current and item.get("control_set") == current):
            out[key] = item
    return out


def load_baseline(path: str | Path) -> dict[str, Any]:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read baseline ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("inventory"), list):
        raise BaselineError(f"{path}: not an svchunt audit JSON (no 'inventory' list)")
    return data


def diff(baseline: dict[str, Any], inventory: list[dict[str, Any]], current: str | None, label: str) -> list[Finding]:
    old = _index(baseline["inventory"], baseline.get("current_control_set"))
    new = _index(inventory, current)
    out = []
    for key in sorted(new.keys() - old.keys()):
        item = new[key]
        image = (item.get("image_path") or {}).get("raw")
        kind = "driver" if item.get("type") in (1, 2) else "service"
        out.append(Finding("baseline-added", "medium", f"{kind} added since the baseline", COVERS, item["name"],
                           item["key_path"], "ImagePath", image, f"not present in baseline {label}",
                           [item["control_set"]], {"last_write": item.get("last_write")}))
    for key in sorted(old.keys() - new.keys()):
        item = old[key]
        out.append(Finding("baseline-removed", "low", "service removed since the baseline", COVERS, item["name"],
                           item["key_path"], None, (item.get("image_path") or {}).get("raw"),
                           f"present in baseline {label}, gone now", [item.get("control_set", "")]))
    for key in sorted(new.keys() & old.keys()):
        before, after = _comparable(old[key]), _comparable(new[key])
        changed = {f: {"before": before[f], "after": after[f]} for f in COMPARED if before[f] != after[f]}
        if changed:
            severity = "medium" if {"image_path", "service_dll", "failure_command", "sddl"} & changed.keys() else "low"
            item = new[key]
            out.append(Finding("baseline-changed", severity, "service changed since the baseline", COVERS,
                               item["name"], item["key_path"], ", ".join(changed), str(sorted(changed.items())),
                               "changed: " + ", ".join(changed), [item["control_set"]],
                               {"changes": changed, "last_write": item.get("last_write")}))
    return out

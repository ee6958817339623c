"""Reading registry keys for the audit: offline hives through regipy, or the live registry through `winreg`.

Both sources expose the same tiny `KeyView` interface so that inventory and checks never know which one they read.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from svchunt.model import Problem

log = logging.getLogger(__name__)


@dataclass(slots=True)
class KeyView:
    """One registry key already read: its values, last-write time and how to reach its subkeys."""

    path: str  # e.g. `ControlSet001\Services\Spooler` (relative to the hive root)
    name: str
    last_write: str | None
    values: dict[str, Any]
    value_types: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """Value by name, case-insensitive like Windows."""
        if name in self.values:
            return self.values[name]
        low = name.lower()
        for key, value in self.values.items():
            if key.lower() == low:
                return value
        return default


class RegistrySource(Protocol):
    """What the audit needs from a registry: read a key, list subkey names."""

    label: str
    problems: list[Problem]

    def key(self, path: str) -> KeyView | None: ...

    def subkeys(self, path: str) -> list[str]: ...


# ------------------------------------------------------------------ offline hive (regipy)


def _patch_regipy() -> None:
    """regipy 6 reads `data_size` bytes even when the data is stored inline (size has bit 31 set), which copies the
    rest of the hive for every small DWORD: 25-30 s per SYSTEM hive. Reading nothing for inline data is what the
    callers expect anyway (they take the value from `data_offset`). Idempotent."""
    from regipy import registry

    if getattr(registry.NKRecord.read_value, "_svchunt", False):
        return

    def read_value(vk: Any, stream: Any) -> Any:
        size = vk.data_size
        data = b""
        if size < 0x80000000:
            stream.seek(registry.REGF_HEADER_SIZE + 4 + vk.data_offset)
            data = stream.read(size)
        return registry.VKRecord(value_type=vk.data_type, value_type_str=str(vk.data_type), value=data, size=size)

    read_value._svchunt = True  # type: ignore[attr-defined]
    registry.NKRecord.read_value = staticmethod(read_value)


def _filetime(value: int | None) -> str | None:
    if not value:
        return None
    from regipy.utils import convert_wintime

    try:
        return convert_wintime(value, as_json=True)
    except (ValueError, OverflowError):
        return None


def find_logs(hive: Path) -> list[Path]:
    """`.LOG1`/`.LOG2` beside the hive, matched case-insensitively (collections keep whatever case Windows used)."""
    wanted = {hive.name.lower() + ".log1": 0, hive.name.lower() + ".log2": 1}
    found = sorted(
        (p for p in hive.parent.iterdir() if p.name.lower() in wanted), key=lambda p: wanted[p.name.lower()]
    )
    return found


class HiveSource:
    """An offline hive file. Transaction logs beside it are applied to a temporary copy when the hive is dirty."""

    def __init__(self, path: str | Path, apply_logs: bool = True) -> None:
        from regipy.registry import RegistryHive

        _patch_regipy()
        logging.getLogger("regipy").setLevel(logging.CRITICAL)  # it logs every odd value at WARNING
        self.path = Path(path)
        self.label = str(path)
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.logs_applied: list[str] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._cache: dict[str, dict[str, Any]] = {}
        try:
            hive = RegistryHive(str(self.path))
        except Exception as exc:  # regipy raises construct/own errors alike on a broken header
            raise HiveError(f"{self.path}: not a readable registry hive ({exc})") from exc
        header = hive.header
        dirty = header.primary_sequence_num != header.secondary_sequence_num
        logs = find_logs(self.path) if apply_logs else []
        if dirty and logs:
            hive = self._apply(hive, logs)
        elif dirty:
            self.problems.append(
                Problem(
                    self.label,
                    "header",
                    f"hive is dirty (sequence {header.primary_sequence_num} != {header.secondary_sequence_num}) and "
                    "no .LOG1/.LOG2 beside it: recent changes may be missing",
                )
            )
        elif logs:
            self.notes.append(f"{self.label}: hive is clean, transaction logs not needed")
        self.hive = hive

    def _apply(self, hive: Any, logs: list[Path]) -> Any:
        from regipy.recovery import apply_transaction_logs
        from regipy.registry import RegistryHive

        self._tmp = tempfile.TemporaryDirectory(prefix="svchunt-hive-")
        restored = Path(self._tmp.name) / (self.path.name + ".restored")
        try:
            primary = logs[0]
            secondary = logs[1] if len(logs) > 1 else None
            _, pages = apply_transaction_logs(
                str(self.path), str(primary), str(secondary) if secondary else None, str(restored)
            )
            self.logs_applied = [str(p) for p in logs]
            self.notes.append(f"{self.label}: applied {', '.join(p.name for p in logs)} ({pages} dirty pages recovered)")
            return RegistryHive(str(restored))
        except Exception as exc:
            self.problems.append(
                Problem(self.label, "transaction logs", f"could not apply {', '.join(p.name for p in logs)}: {exc}")
            )
            return hive

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _children(self, path: str, node: Any) -> dict[str, Any]:
        """Subkeys of `node` by lower-case name, read once: a Services key has ~1000 children and finding each by a
        linear scan would be quadratic."""
        cached = self._cache.get(path.lower())
        if cached is not None:
            return cached
        children: dict[str, Any] = {}
        try:
            for sub in node.iter_subkeys() or []:
                children[sub.name.lower()] = sub
        except Exception as exc:
            self.problems.append(
                Problem(
                    self.label,
                    f"key {path or '(root)'}",
                    f"subkey list damaged: read {len(children)} of {node.subkey_count} subkeys ({exc})",
                )
            )
        self._cache[path.lower()] = children
        return children

    def _node(self, path: str) -> Any | None:
        node = self.hive.root
        walked = ""
        for part in [p for p in path.split("\\") if p]:
            node = self._children(walked, node).get(part.lower())
            walked = f"{walked}\\{part}" if walked else part
            if node is None:
                return None
        return node

    def key(self, path: str) -> KeyView | None:
        node = self._node(path)
        if node is None:
            return None
        values: dict[str, Any] = {}
        types: dict[str, str] = {}
        try:
            for value in node.iter_values(trim_values=False):
                values[value.name] = value.value
                types[value.name] = value.value_type
        except Exception as exc:
            self.problems.append(
                Problem(self.label, f"key {path}", f"values unreadable after {len(values)} of {node.values_count}: {exc}")
            )
        return KeyView(path, node.name, _filetime(node.header.last_modified), values, types)

    def subkeys(self, path: str) -> list[str]:
        node = self._node(path)
        if node is None:
            return []
        return [child.name for child in self._children(path.strip("\\"), node).values()]


class HiveError(Exception):
    """The hive cannot be opened at all."""


# ------------------------------------------------------------------ live registry (Windows only)

_REG_TYPES = {0: "REG_NONE", 1: "REG_SZ", 2: "REG_EXPAND_SZ", 3: "REG_BINARY", 4: "REG_DWORD", 7: "REG_MULTI_SZ", 11: "REG_QWORD"}


class LiveSource:
    """HKLM\\SYSTEM (or SOFTWARE) of the running host. `winreg` is injected so tests can pass a fake."""

    def __init__(self, root: str = "SYSTEM", winreg: Any = None) -> None:
        if winreg is None:
            import winreg as _winreg  # type: ignore[import-not-found]

            winreg = _winreg
        self.winreg = winreg
        self.root = root
        self.label = f"HKLM\\{root}"
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.logs_applied: list[str] = []

    def close(self) -> None:
        return None

    def _open(self, path: str) -> Any | None:
        full = self.root + ("\\" + path.strip("\\") if path.strip("\\") else "")
        try:
            return self.winreg.OpenKey(self.winreg.HKEY_LOCAL_MACHINE, full, 0, self.winreg.KEY_READ)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.problems.append(Problem(self.label, f"key {path}", f"cannot open: {exc}"))
            return None

    def key(self, path: str) -> KeyView | None:
        handle = self._open(path)
        if handle is None:
            return None
        with handle:
            n_sub, n_val, modified = self.winreg.QueryInfoKey(handle)
            values: dict[str, Any] = {}
            types: dict[str, str] = {}
            for index in range(n_val):
                try:
                    name, data, kind = self.winreg.EnumValue(handle, index)
                except OSError as exc:
                    self.problems.append(Problem(self.label, f"key {path}", f"value {index} unreadable: {exc}"))
                    continue
                values[name or "(default)"] = data
                types[name or "(default)"] = _REG_TYPES.get(kind, str(kind))
        name = path.rstrip("\\").rsplit("\\", 1)[-1]
        return KeyView(path, name, _filetime(modified // 1 if modified else None), values, types)

    def subkeys(self, path: str) -> list[str]:
        handle = self._open(path)
        if handle is None:
            return []
        with handle:
            n_sub = self.winreg.QueryInfoKey(handle)[0]
            return [self.winreg.EnumKey(handle, index) for index in range(n_sub)]


def iter_keys(source: RegistrySource, path: str) -> Iterator[KeyView]:
    for name in source.subkeys(path):
        view = source.key(f"{path}\\{name}")
        if view is not None:
            yield view

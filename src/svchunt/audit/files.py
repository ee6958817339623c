"""Finding a service's file inside a collected Windows volume (`--root`) and hashing it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class RootResolver:
    """Maps `C:\\Windows\\System32\\drivers\\x.sys` to `<root>/Windows/System32/drivers/x.sys` whatever the case of
    each component on disk (collections made on Windows keep Windows' mixed case; lookups here are exact)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._listing: dict[Path, dict[str, str]] = {}

    def _children(self, folder: Path) -> dict[str, str]:
        cached = self._listing.get(folder)
        if cached is None:
            try:
                cached = {name.lower(): name for name in os.listdir(folder)}
            except OSError:
                cached = {}
            self._listing[folder] = cached
        return cached

    def find(self, windows_path: str | None) -> Path | None:
        if not windows_path or windows_path.startswith("\\\\"):
            return None
        text = windows_path.replace("/", "\\")
        if len(text) > 1 and text[1] == ":":
            text = text[2:]
        current = self.root
        for part in [p for p in text.split("\\") if p]:
            name = self._children(current).get(part.lower())
            if name is None:
                return None
            current = current / name
        return current if current.is_file() else None


def hash_file(path: Path) -> dict[str, str]:
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            md5.update(chunk)
            sha1.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha1": sha1.hexdigest(), "sha256": sha256.hexdigest()}

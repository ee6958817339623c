"""Known-good lists, resolved into rules through Sigma placeholders (`field|expand: '%name%'`).

Built-in lists are text files in `svchunt/content/allowlists/NAME.txt` (one value per line, `#`
comments, Sigma wildcards). A tuning file (`--allowlist FILE`, YAML `NAME: [values]`) extends them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "content" / "allowlists"


class AllowlistError(ValueError):
    pass


@dataclass
class Allowlists:
    lists: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> list[str] | None:
        return self.lists.get(name)

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.lists):
            h.update(name.encode() + b"\0" + "\n".join(self.lists[name]).encode() + b"\1")
        return h.hexdigest()[:16]


def _read_text_list(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


# The known-vulnerable-driver hash list that rules match against Sysmon 6 `Hashes`
# ("SHA1=…,MD5=…,SHA256=…,IMPHASH=…"): a LOLDrivers CSV extends it (`--loldrivers`).
DRIVER_HASH_LIST = "svchunt_vulnerable_driver_hashes"
_HASH_PREFIX = {32: "MD5=", 40: "SHA1=", 64: "SHA256="}


def loldrivers_values(csv_path: str) -> list[str]:
    """Hash values of a LOLDrivers drivers.csv in the form Sysmon writes them (`SHA256=…`)."""
    from svchunt.audit.loldrivers import load

    try:
        drivers = load(csv_path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AllowlistError(f"{csv_path}: cannot read the LOLDrivers list: {exc}") from exc
    return sorted(_HASH_PREFIX[len(h)] + h.upper() for h in drivers.by_hash if len(h) in _HASH_PREFIX)


def load_allowlists(
    extra_files: list[str] | None = None, builtin: bool = True, loldrivers: str | None = None
) -> Allowlists:
    lists: dict[str, list[str]] = {}
    if builtin and BUILTIN_DIR.is_dir():
        for path in sorted(BUILTIN_DIR.glob("*.txt")):
            lists[path.stem] = _read_text_list(path)
    for file in extra_files or []:
        try:
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise AllowlistError(f"{file}: cannot read allowlist: {exc}") from exc
        if not isinstance(data, dict):
            raise AllowlistError(f"{file}: an allowlist file is a YAML mapping of NAME to a list of values")
        for name, values in data.items():
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
                raise AllowlistError(f"{file}: '{name}' must be a list of strings")
            lists.setdefault(str(name), []).extend(str(v) for v in values)
    if loldrivers:
        lists.setdefault(DRIVER_HASH_LIST, []).extend(loldrivers_values(loldrivers))
    return Allowlists(lists)

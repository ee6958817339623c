"""The LOLDrivers list (loldrivers.io `drivers.csv`): known vulnerable and malicious driver hashes (brief §25)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

HASH_COLUMNS = {
    "md5": ("KnownVulnerableSamples_MD5", "KnownVulnerableSamples_Authentihash_MD5"),
    "sha1": ("KnownVulnerableSamples_SHA1", "KnownVulnerableSamples_Authentihash_SHA1"),
    "sha256": ("KnownVulnerableSamples_SHA256", "KnownVulnerableSamples_Authentihash_SHA256"),
}
_HEX = re.compile(r"\b[0-9a-fA-F]{32,64}\b")
_HASH_ONLY = re.compile(r"^[0-9a-f]{32,64}$")


@dataclass(slots=True, frozen=True)
class LolDriver:
    id: str
    category: str  # "vulnerable driver" | "malicious"
    names: str  # the Tags column: driver file names


@dataclass(slots=True)
class LolDrivers:
    path: str
    by_hash: dict[str, LolDriver] = field(default_factory=dict)
    by_name: dict[str, list[LolDriver]] = field(default_factory=dict)  # lower file name -> entries tagged with it
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    def lookup(self, hashes: dict[str, str]) -> tuple[str, LolDriver] | None:
        for algo in ("sha256", "sha1", "md5"):
            value = hashes.get(algo)
            if value and value.lower() in self.by_hash:
                return algo, self.by_hash[value.lower()]
        return None

    def lookup_name(self, file_name: str) -> list[LolDriver]:
        """Entries whose Tags name this driver file. Weaker than a hash: a listed name may be a fixed version."""
        return self.by_name.get(file_name.lower(), [])

    def add_name(self, tag: str, entry: LolDriver) -> None:
        name = tag.strip().lower()
        if not name or _HASH_ONLY.match(name):
            return
        if "." not in name:
            name += ".sys"  # some entries tag the bare driver name (WinRing0x64)
        listed = self.by_name.setdefault(name, [])
        if entry not in listed:
            listed.append(entry)


def from_names(names: list[str], label: str) -> LolDrivers:
    """A name-only list (the content's svchunt_vulnerable_driver_names) for when no LOLDrivers CSV is at hand."""
    out = LolDrivers(label)
    for value in names:
        name = value.strip().lstrip("\\*")
        out.add_name(name, LolDriver("", "vulnerable driver", name))
        out.rows += 1
    return out


def default_path() -> Path:
    """`../shared/data/loldrivers/drivers.csv` next to the checkout, as documented in docs/audit.md."""
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "loldrivers" / "drivers.csv"


def load(path: str | Path) -> LolDrivers:
    out = LolDrivers(str(path))
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for cols in HASH_COLUMNS.values() for c in cols[:1] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a LOLDrivers drivers.csv (missing columns {', '.join(missing)})")
        for line, row in enumerate(reader, start=2):
            out.rows += 1
            entry = LolDriver(row.get("Id", ""), row.get("Category", ""), row.get("Tags", ""))
            for tag in (row.get("Tags") or "").split(","):
                out.add_name(tag, entry)
            for columns in HASH_COLUMNS.values():
                for column in columns:
                    for value in _HEX.findall(row.get(column) or ""):
                        out.by_hash.setdefault(value.lower(), entry)
            if not any(row.get(c[0]) for c in HASH_COLUMNS.values()):
                out.problems.append(f"{path}: row at line {line} ({entry.id}) has no hashes")
    return out

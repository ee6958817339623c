"""Build `src/svchunt/data/windows_services.json`, the stock-service baseline, from the clean SYSTEM hives.

    .venv/bin/python scripts/build_windows_service_list.py [HIVE_DIR] [--out FILE]
        HIVE_DIR defaults to ../shared/data/hives, FILE to src/svchunt/data/windows_services.json

What counts as a stock (Windows) service, decided from the registry alone:
- it can run (the key has a Type), and
- its binary (ServiceDll when there is one, else ImagePath) is in a folder only Microsoft installs into
  (`svchunt.audit.stock.MICROSOFT_FOLDERS`), or
- its binary is in a Windows system folder and either several of the clean hives have it or its display name
  or description is an in-box MUI resource (`@%SystemRoot%\\...`, `@x.inf,...` but not a vendor's `@oemN.inf`).
  Vendors' drivers also land in System32\\drivers; one hive's McAfee or VirtualBox driver is not Windows.

For each stock service the file keeps derived facts, never registry blobs: its literal display names, the
normalised paths of its ImagePath/ServiceDll, the rights each non-administrator principal is granted by its
DACL on any clean hive (SDDL letters), and the programs its FailureCommand runs. `binaries` maps each stock
binary name to the folders it lives in (plus core Windows processes that are not services).
"""

from __future__ import annotations

import json
import lzma
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from svchunt.audit import sddl  # noqa: E402
from svchunt.audit.checks_acl import is_non_admin  # noqa: E402
from svchunt.audit.hive import HiveSource  # noqa: E402
from svchunt.audit.inventory import ServiceEntry, read_inventory  # noqa: E402
from svchunt.audit.paths import resolve  # noqa: E402
from svchunt.audit.stock import (  # noqa: E402
    DEFAULT_SERVICE_SDDL,
    MICROSOFT_FOLDERS,
    in_microsoft_folder,
    inbox_resource,
    stock_key,
)

CLEAN = ["SYSTEM", "SYSTEM_2", "SYSTEM_WIN_10_1709", "SYSTEM_B"]
MIN_HIVES = 2
CORE = {
    "smss.exe": ["c:\\windows\\system32"],
    "csrss.exe": ["c:\\windows\\system32"],
    "wininit.exe": ["c:\\windows\\system32"],
    "winlogon.exe": ["c:\\windows\\system32"],
    "services.exe": ["c:\\windows\\system32"],
    "lsass.exe": ["c:\\windows\\system32"],
    "lsm.exe": ["c:\\windows\\system32"],
    "svchost.exe": ["c:\\windows\\system32", "c:\\windows\\syswow64"],
    "spoolsv.exe": ["c:\\windows\\system32"],
    "explorer.exe": ["c:\\windows", "c:\\windows\\syswow64"],
    "taskhost.exe": ["c:\\windows\\system32"],
    "taskhostw.exe": ["c:\\windows\\system32"],
    "dllhost.exe": ["c:\\windows\\system32", "c:\\windows\\syswow64"],
    "conhost.exe": ["c:\\windows\\system32"],
    "rundll32.exe": ["c:\\windows\\system32", "c:\\windows\\syswow64"],
    "cmd.exe": ["c:\\windows\\system32", "c:\\windows\\syswow64"],
    "wmiprvse.exe": ["c:\\windows\\system32\\wbem", "c:\\windows\\syswow64\\wbem"],
    "searchindexer.exe": ["c:\\windows\\system32"],
    "msmpeng.exe": [],
}


def _binary(entry: ServiceEntry):  # noqa: ANN202 - ResolvedPath | None
    return entry.service_dll if entry.service_dll is not None and entry.service_dll.path else entry.image_path


def _is_stock(entries: list[tuple[str, ServiceEntry]]) -> bool:
    hives = {hive for hive, _ in entries}
    for _, entry in entries:
        binary = _binary(entry)
        if entry.type is None or binary is None or not binary.path:
            continue
        if in_microsoft_folder(binary.path):
            return True
        if binary.location == "system" and (
            len(hives) >= MIN_HIVES or inbox_resource(entry.display_name) or inbox_resource(entry.description)
        ):
            return True
    return False


def _grants(entry: ServiceEntry) -> dict[str, int]:
    sd = entry.security
    if sd is None or not sd.dacl_present or sd.dacl is None:
        return {}
    out: dict[str, int] = {}
    for ace in sd.dacl:
        if ace.is_allow and not ace.inherit_only and is_non_admin(ace.sid):
            out[ace.sid] = out.get(ace.sid, 0) | sddl.effective_access(sd, {ace.sid})
    return out


def read_hives(hive_dir: Path) -> dict[str, list[tuple[str, ServiceEntry]]]:
    by_key: dict[str, list[tuple[str, ServiceEntry]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for name in CLEAN:
            for suffix in ("", ".LOG1", ".LOG2"):
                src = hive_dir / f"{name}{suffix}.xz"
                if src.exists():
                    (Path(tmp) / f"{name}{suffix}").write_bytes(lzma.decompress(src.read_bytes()))
            source = HiveSource(Path(tmp) / name)
            _, _, entries = read_inventory(source)
            for entry in entries:
                by_key[stock_key(entry.name, entry.type)].append((name, entry))
            source.close()
    return by_key


def build(by_key: dict[str, list[tuple[str, ServiceEntry]]]) -> dict:
    services: dict[str, dict] = {}
    binaries: dict[str, set[str]] = {k: set(v) for k, v in CORE.items()}
    for key, entries in sorted(by_key.items()):
        if not _is_stock(entries):
            continue
        names = [e.name for _, e in entries if stock_key(e.name, e.type) == e.name.lower()] or [entries[0][1].name]
        display, paths, failure, hives = set(), set(), set(), set()
        permissions: dict[str, int] = {}
        for hive, entry in entries:
            hives.add(hive)
            if entry.display_name and not entry.display_name.startswith("@") and stock_key(entry.name, entry.type) \
                    == entry.name.lower():
                display.add(entry.display_name)
            for resolved in (entry.image_path, entry.service_dll):
                if resolved is None or not resolved.path:
                    continue
                low = resolved.path.lower()
                # Only Windows' own folders (and bare names found through them, winhttp.dll) become stock paths:
                # a clean hive's VMware driver under Program Files stays a finding wherever it is seen.
                if resolved.location in ("system", "relative") or in_microsoft_folder(low):
                    paths.add(low)
                if resolved.location == "system" or in_microsoft_folder(low):
                    folder, _, base = low.rpartition("\\")
                    binaries.setdefault(base, set()).add(folder)
            if entry.failure_command:
                program = resolve(entry.failure_command).path
                if program:
                    failure.add(program.lower())
            for sid, mask in _grants(entry).items():
                permissions[sid] = permissions.get(sid, 0) | mask
        services[key] = {
            "name": names[0],
            "display_names": sorted(display),
            "paths": sorted(paths),
            "permissions": {sddl.sid_to_sddl(s): sddl.rights_to_sddl(m) for s, m in sorted(permissions.items())},
            "failure_programs": sorted(failure),
            "hives": sorted(hives),
        }
    return {
        "source": "derived from the clean SYSTEM hives of ../shared/data/hives by scripts/build_windows_service_list.py",
        "hives": CLEAN,
        "default_service_sddl": DEFAULT_SERVICE_SDDL,
        "microsoft_folders": list(MICROSOFT_FOLDERS),
        "services": services,
        "binaries": {k: sorted(v) for k, v in sorted(binaries.items())},
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hive_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "hives")
    parser.add_argument("--out", type=Path, default=REPO / "src" / "svchunt" / "data" / "windows_services.json")
    args = parser.parse_args(argv)
    by_key = read_hives(args.hive_dir)
    out = build(by_key)
    target = args.out
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    left_out = len(by_key) - len(out["services"])
    print(f"{target}: {len(out['services'])} stock services of {len(by_key)} names seen ({left_out} vendor or "
          f"one-off services left out), {len(out['binaries'])} binary names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

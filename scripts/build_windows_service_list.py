"""Build `src/svchunt/data/windows_services.json` from the clean SYSTEM hives in ../shared/data/hives.

Keeps the services whose binary (ImagePath, or ServiceDll for svchost services) lives in the Windows system
folders, with their display names and normalised paths, plus the core Windows processes that are not services.
The result is a derived list of names and paths, not the hives themselves.

    .venv/bin/python scripts/build_windows_service_list.py [HIVE_DIR]
"""

from __future__ import annotations

import json
import lzma
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from svchunt.audit.hive import HiveSource  # noqa: E402
from svchunt.audit.inventory import read_inventory  # noqa: E402

CLEAN = ["SYSTEM.xz", "SYSTEM_2.xz", "SYSTEM_WIN_10_1709.xz", "SYSTEM_B.xz"]
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


def main() -> int:
    hive_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "hives"
    services: dict[str, dict] = {}
    binaries: dict[str, set[str]] = {k: set(v) for k, v in CORE.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CLEAN:
            src = hive_dir / name
            dst = Path(tmp) / name.removesuffix(".xz")
            dst.write_bytes(lzma.decompress(src.read_bytes()))
            source = HiveSource(dst, apply_logs=False)
            _, _, entries = read_inventory(source)
            for entry in entries:
                image, dll = entry.image_path, entry.service_dll
                binary = dll if dll is not None and dll.location == "system" else image
                if binary is None or binary.location != "system" or not binary.path:
                    continue
                item = services.setdefault(
                    entry.name.lower(), {"name": entry.name, "display_names": set(), "images": set(), "hives": set()}
                )
                if entry.display_name and not entry.display_name.startswith("@"):
                    item["display_names"].add(entry.display_name)
                for p in (image, dll):
                    if p is not None and p.path and p.location == "system":
                        item["images"].add(p.path.lower())
                        base, _, folder = p.path.lower().rpartition("\\")[2], None, p.path.lower().rpartition("\\")[0]
                        binaries.setdefault(base, set()).add(folder)
                item["hives"].add(name.removesuffix(".xz"))
            source.close()
    out = {
        "source": "derived from the clean SYSTEM hives of ../shared/data/hives by scripts/build_windows_service_list.py",
        "services": {
            key: {k: sorted(v) if isinstance(v, set) else v for k, v in item.items()}
            for key, item in sorted(services.items())
        },
        "binaries": {k: sorted(v) for k, v in sorted(binaries.items())},
    }
    target = REPO / "src" / "svchunt" / "data" / "windows_services.json"
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{target}: {len(out['services'])} services, {len(out['binaries'])} binary names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time `svchunt audit` on each real SYSTEM hive (target: under 5 s each). Not a unit test.

    .venv/bin/python bench/audit_bench.py [HIVE_DIR]
"""

from __future__ import annotations

import lzma
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from svchunt.audit.loldrivers import default_path  # noqa: E402
from svchunt.audit.runner import AuditOptions, run_audit  # noqa: E402

TARGET_SECONDS = 5.0


def main() -> int:
    hive_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "hives"
    failed = 0
    lol = str(default_path()) if default_path().exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("SYSTEM", "SYSTEM_2", "SYSTEM_WIN_10_1709", "SYSTEM_B", "corrupted_system_hive"):
            for suffix in ("", ".LOG1", ".LOG2"):
                src = hive_dir / f"{name}{suffix}.xz"
                if src.exists():
                    (Path(tmp) / f"{name}{suffix}").write_bytes(lzma.decompress(src.read_bytes()))
            path = Path(tmp) / name
            started = time.perf_counter()
            result = run_audit(AuditOptions(system=str(path), loldrivers=lol))
            seconds = time.perf_counter() - started
            ok = seconds < TARGET_SECONDS
            failed += not ok
            print(f"{name:24} {path.stat().st_size / 1e6:5.1f} MB  {len({e.name.lower() for e in result.inventory}):4} "
                  f"services  {len(result.findings):4} findings  {len(result.problems):3} problems  {seconds:5.2f} s "
                  f"{'OK' if ok else 'SLOW'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

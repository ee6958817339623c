"""The built-in detection content pack: Sigma rules, correlations and known-good lists.

Rules live in `rules/` (single-event Sigma rules, some as multi-telemetry collections), correlations in
`correlations/` (Sigma correlation rules referencing the rules by `name:`), and the known-good lists that
rules reference as `%placeholder%` in `allowlists/NAME.txt`.
"""

from __future__ import annotations

from pathlib import Path

CONTENT_DIR = Path(__file__).resolve().parent
RULES_DIR = CONTENT_DIR / "rules"
CORRELATIONS_DIR = CONTENT_DIR / "correlations"
ALLOWLISTS_DIR = CONTENT_DIR / "allowlists"


def builtin_rule_paths() -> list[Path]:
    """Every built-in rule and correlation file, in a stable order (rules first, then correlations)."""
    out: list[Path] = []
    for folder in (RULES_DIR, CORRELATIONS_DIR):
        if folder.is_dir():
            out.extend(sorted(p for p in folder.glob("*.yml") if p.is_file()))
    return out

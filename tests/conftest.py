"""Shared test helpers: where the third-party sample data lives (read in place, never copied), and rules
written by a test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SVCHUNT_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
FIXTURES = REPO / "tests" / "fixtures"


def shared(*parts: str) -> Path:
    """Path inside ../shared/data; skips the calling test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared sample data not found at {path} (set SVCHUNT_SHARED_DATA)")
    return path


RULE_HEADER = """title: {title}
id: 0b7e6a52-5a6c-4d7e-8f90-{suffix}
status: test
logsource: {logsource}
level: medium
detection:
"""


def rules_matcher(directory: Path, rules: dict[str, tuple[str, str]]):  # -> svchunt.engine.matcher.Matcher
    """A Matcher of rules written into `directory`: name -> (logsource, detection block); all must load."""
    from svchunt.engine.matcher import Matcher
    from svchunt.rules.loader import load_rules

    for i, (name, (logsource, detection)) in enumerate(rules.items()):
        text = RULE_HEADER.format(title=name, suffix=f"{i:012d}", logsource=logsource) + detection
        (directory / f"{name}.yml").write_text(text)
    ruleset = load_rules([str(directory)], use_cache=False)
    assert not ruleset.refused, ruleset.refused
    return Matcher(ruleset.rules)

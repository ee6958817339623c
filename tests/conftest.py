"""Shared test helpers: where the third-party sample data lives (read in place, never copied)."""

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

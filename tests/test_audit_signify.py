"""signify (Authenticode) loads here and is what decides a driver's signature status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from svchunt.audit.signatures import SignatureChecker
from svchunt.audit.signify_import import import_authenticode


def test_signify_imports_and_re_search_is_restored():
    before = re.search
    authenticode = import_authenticode()
    assert re.search is before
    assert hasattr(authenticode, "AuthenticodeFile")


def test_unsigned_pe_is_judged_by_signify_not_by_the_fallback():
    import pip

    launchers = sorted(Path(pip.__file__).parent.glob("_vendor/distlib/*.exe"))
    if not launchers:
        pytest.skip("no PE file at hand (pip's distlib launchers are absent)")
    status = SignatureChecker().check(launchers[0])
    assert status["status"] == "unsigned"
    assert "signify unavailable" not in status["detail"]


def test_non_pe_file_is_unsigned(tmp_path):
    path = tmp_path / "evil.sys"
    path.write_bytes(b"MZ not really a driver")
    assert SignatureChecker().check(path)["status"] == "unsigned"

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


def _with_bogus_signature(src: Path, dst: Path) -> None:
    """A real (unsigned) PE with a certificate table whose PKCS#7 blob is garbage: "signed", but not validly."""
    import struct

    data = bytearray(src.read_bytes())
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    optional = pe + 24
    magic = struct.unpack_from("<H", data, optional)[0]
    security_dir = optional + (96 if magic == 0x10B else 112) + 4 * 8
    data.extend(b"\0" * (-len(data) % 8))
    blob = b"\x30\x82\x01\x00" + b"\x42" * 256  # DER SEQUENCE header, then nonsense
    cert = struct.pack("<IHH", 8 + len(blob), 0x0200, 0x0002) + blob
    struct.pack_into("<II", data, security_dir, len(data), len(cert))
    data.extend(cert)
    dst.write_bytes(bytes(data))


def test_pe_with_a_broken_signature_is_invalid_not_unsigned(tmp_path):
    import pip

    launchers = sorted(Path(pip.__file__).parent.glob("_vendor/distlib/*.exe"))
    if not launchers:
        pytest.skip("no PE file at hand (pip's distlib launchers are absent)")
    forged = tmp_path / "forged.sys"
    _with_bogus_signature(launchers[0], forged)
    status = SignatureChecker().check(forged)
    assert status["status"] == "invalid", status

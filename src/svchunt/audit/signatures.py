"""Authenticode status of a file with signify: embedded PE signatures, and catalog (.cat) signatures when the
collection contains `Windows\\System32\\CatRoot` (Windows' own drivers are catalog-signed, not embedded)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CATROOT = "Windows/System32/CatRoot"


@dataclass(slots=True)
class SignatureChecker:
    catalog_files: list[Path] = field(default_factory=list)
    _catalogs: list | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def for_root(cls, root: Path | None) -> SignatureChecker:
        checker = cls()
        if root is not None:
            from svchunt.audit.files import RootResolver

            resolver = RootResolver(root)
            catroot = None
            current = resolver.root
            for part in CATROOT.split("/"):
                name = resolver._children(current).get(part.lower())
                if name is None:
                    break
                current = current / name
            else:
                catroot = current
            if catroot is not None:
                checker.catalog_files = sorted(catroot.rglob("*.cat"))
        return checker

    def _load_catalogs(self) -> list:
        if self._catalogs is None:
            from svchunt.audit.signify_import import import_authenticode

            CertificateTrustList = import_authenticode().CertificateTrustList  # noqa: N806
            self._catalogs = []
            for path in self.catalog_files:
                try:
                    self._catalogs.append(CertificateTrustList.from_envelope(path.read_bytes()))
                except Exception as exc:  # a damaged catalog must not stop the audit
                    self.problems.append(f"{path}: catalog unreadable ({exc})")
        return self._catalogs

    def check(self, path: Path) -> dict[str, str]:
        """{"status": valid|unsigned|invalid|unverified|unreadable, "detail": ..., "source": embedded|catalog}"""
        try:
            from svchunt.audit.signify_import import import_authenticode

            authenticode = import_authenticode()
            AuthenticodeVerificationResult = authenticode.AuthenticodeVerificationResult  # noqa: N806
        except Exception as exc:  # signify or its OpenSSL binding cannot load here
            return pe_certificate_status(path, f"signify unavailable: {exc}")

        try:
            with open(path, "rb") as handle:
                try:
                    pe = authenticode.AuthenticodeFile.from_stream(handle)
                    result, error = pe.explain_verify()
                except Exception as exc:  # not a PE at all
                    return {"status": "unsigned", "detail": f"not a signed PE file ({exc})", "source": "embedded"}
                if result == AuthenticodeVerificationResult.OK:
                    return {"status": "valid", "detail": "embedded signature verifies", "source": "embedded"}
                if result == AuthenticodeVerificationResult.NOT_SIGNED and self.catalog_files:
                    for catalog in self._load_catalogs():
                        try:
                            if catalog.find_subject(pe):
                                pe.add_catalog(catalog)
                                cat_result, cat_error = pe.explain_verify()
                                status = "valid" if cat_result == AuthenticodeVerificationResult.OK else "invalid"
                                return {"status": status, "detail": f"catalog: {cat_result.name} {cat_error or ''}".strip(),
                                        "source": "catalog"}
                        except Exception as exc:
                            log.debug("catalog check failed for %s: %s", path, exc)
                if result == AuthenticodeVerificationResult.NOT_SIGNED:
                    where = "no embedded signature" + (" and not in any catalog" if self.catalog_files else
                                                      " (no CatRoot in the collection to check catalogs)")
                    return {"status": "unsigned", "detail": where, "source": "embedded"}
                return {"status": "invalid", "detail": f"{result.name}: {error}", "source": "embedded"}
        except OSError as exc:
            return {"status": "unreadable", "detail": str(exc), "source": "file"}


def pe_certificate_status(path: Path, why: str) -> dict[str, str]:
    """Without signify: a PE whose certificate-table directory is empty is unsigned; anything else is unverified."""
    import struct

    try:
        data = path.read_bytes()
    except OSError as exc:
        return {"status": "unreadable", "detail": str(exc), "source": "file"}
    if data[:2] != b"MZ" or len(data) < 0x40:
        return {"status": "unsigned", "detail": "not a PE file (no MZ header)", "source": "embedded"}
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        return {"status": "unsigned", "detail": "not a PE file (no PE header)", "source": "embedded"}
    optional = pe + 24
    magic = struct.unpack_from("<H", data, optional)[0]
    directories = optional + (96 if magic == 0x10B else 112)
    if directories + 40 > len(data):
        return {"status": "unsigned", "detail": "truncated PE header", "source": "embedded"}
    _, size = struct.unpack_from("<II", data, directories + 8 * 4)  # IMAGE_DIRECTORY_ENTRY_SECURITY
    if size == 0:
        return {"status": "unsigned", "detail": "PE has no embedded certificate table (catalogs not checked: " + why + ")",
                "source": "embedded"}
    return {"status": "unverified", "detail": "PE carries a certificate table, not verified: " + why, "source": "embedded"}

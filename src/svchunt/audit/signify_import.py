"""Import signify on machines whose OpenSSL version has a two-digit patch number.

oscrypto 1.3.0 (signify's crypto back end, the latest release on PyPI) reads the OpenSSL version
with the pattern `\\d\\.\\d\\.\\d`, which does not match "OpenSSL 3.0.19", and refuses to load. Its
development branch accepts `\\d+`. We apply that one-pattern fix only while oscrypto's modules are
first imported, then restore `re.search`; nothing else is touched.
"""

from __future__ import annotations

import re
from types import ModuleType
from unittest import mock

_OLD_PATTERN = "\\b(\\d\\.\\d\\.\\d[a-z]*)\\b"
_NEW_PATTERN = "\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b"


def import_authenticode() -> ModuleType:
    real_search = re.search

    def search(pattern, string, flags=0):  # noqa: ANN001 - mirrors re.search
        if pattern == _OLD_PATTERN:
            pattern = _NEW_PATTERN
        return real_search(pattern, string, flags)

    with mock.patch.object(re, "search", search):
        import signify.authenticode as authenticode
    return authenticode

"""Size guards for decompressed data, and safe handling of zip member names.

Archives are streamed: zip members are opened with `ZipFile.open` and gzip data is decompressed while
it is read; nothing is extracted except EVTX (and nested zip) members, which the parsers need as real
files and which go to private temporary files that are removed at once. Every byte read from an
archive goes through `CappedReader`, which stops at the caps below (zip bombs, gzip bombs).
The caps are module globals read at call time, so tests can lower them.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from typing import IO, Any

# Total decompressed bytes read from one input file (all members together).
MAX_TOTAL_BYTES = 2 * 1024**3
# Compression ratio refused once this much has come out (real logs compress 10-30x; bombs 1000x+).
MAX_RATIO = 200
RATIO_MIN_BYTES = 100 * 1024**2
# Archives inside archives: one level (a .gz in a .zip, a .zip in a .zip), no deeper.
MAX_NESTING = 1
_COPY_CHUNK = 1024 * 1024


class ArchiveLimit(Exception):
    """Decompressed data went over a cap: the rest of that file or member is refused."""


class Budget:
    """Decompressed bytes allowed for one input file, shared by all its members."""

    def __init__(self) -> None:
        self.remaining = MAX_TOTAL_BYTES


class CappedReader(io.RawIOBase):
    """Counts bytes read from a decompressing stream; raises ArchiveLimit past the caps."""

    def __init__(self, stream: IO[bytes], compressed_size: int, budget: Budget, what: str) -> None:
        self._stream = stream
        self._compressed = max(compressed_size, 1)
        self._budget = budget
        self._what = what
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        size = len(data)
        self.produced += size
        self._budget.remaining -= size
        if self._budget.remaining < 0:
            raise ArchiveLimit(
                f"{self._what}: decompressed data exceeds {MAX_TOTAL_BYTES} bytes: refused (zip/gzip bomb?)"
            )
        if self.produced > RATIO_MIN_BYTES and self.produced > MAX_RATIO * self._compressed:
            raise ArchiveLimit(
                f"{self._what}: compression ratio over {MAX_RATIO} after {self.produced} bytes: "
                "refused (zip/gzip bomb?)"
            )
        buffer[:size] = data
        return size


def buffered(raw: CappedReader) -> io.BufferedReader:
    return io.BufferedReader(raw, buffer_size=_COPY_CHUNK)


def spool(stream: IO[bytes], suffix: str) -> Any:
    """Copy a (capped) stream to a private temporary file; the caller closes it, which deletes it."""
    handle = tempfile.NamedTemporaryFile(prefix="svchunt-", suffix=suffix)  # noqa: SIM115
    try:
        shutil.copyfileobj(stream, handle, _COPY_CHUNK)
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return handle


def unsafe_member_name(name: str) -> str | None:
    """Why a member name is refused (absolute path or `..`), or None when it is safe."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return "absolute path in archive member name: refused"
    if ".." in normal.split("/"):
        return "`..` in archive member name: refused"
    return None


def declared_bomb(info: zipfile.ZipInfo, budget: Budget) -> str | None:
    """Refuse a member from its declared sizes before reading it (the reader still checks real sizes)."""
    if info.file_size > budget.remaining:
        return f"declared size {info.file_size} bytes exceeds the {MAX_TOTAL_BYTES}-byte cap: refused"
    if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return f"compression ratio {info.file_size // max(info.compress_size, 1)} over {MAX_RATIO}: refused"
    return None

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
import zlib
from collections.abc import Callable
from typing import IO, Any

# Total decompressed bytes read from one input file (all members together).
MAX_TOTAL_BYTES = 2 * 1024**3
# Compression ratio refused once this much has come out (real logs compress 10-30x; bombs 1000x+). The
# ratio is taken against the compressed bytes consumed so far, so a bomb is stopped after a few MiB of
# output whatever the size of the file around it.
MAX_RATIO = 200
RATIO_MIN_BYTES = 16 * 1024**2
_READ_CHUNK = 64 * 1024
# Archives inside archives: one level (a .gz in a .zip, a .zip in a .zip), no deeper.
MAX_NESTING = 1
_COPY_CHUNK = 1024 * 1024


class ArchiveLimit(Exception):
    """Decompressed data went over a cap: the rest of that file or member is refused."""


class Budget:
    """Decompressed bytes allowed for one input file, shared by all its members."""

    def __init__(self) -> None:
        self.remaining = MAX_TOTAL_BYTES


class Truncated(Exception):
    """Compressed data ended before its end marker: everything before the cut has been returned."""


class GunzipReader(io.RawIOBase):
    """gzip data decompressed as it is read (one or more members, as `cat a.gz b.gz` makes).

    Unlike `gzip.GzipFile`, a stream cut short first returns every byte that could be decompressed and
    only then raises `Truncated`, so the complete lines before the cut are read.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._done = False
        self._member_started = False
        self._error: Truncated | None = None  # raised once everything before the cut was returned
        self.consumed = 0  # compressed bytes fed to the decompressor

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._done:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                return 0
            self._pending = self._step(len(buffer))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _step(self, want: int) -> bytes:
        # Bounded output per call, so the caps are checked every MiB, whatever size the caller asked for.
        want = min(max(want, _READ_CHUNK), _COPY_CHUNK)
        inflate = self._inflate
        if inflate.eof:  # a member ended: what follows it is the next member (or zero padding)
            rest = inflate.unused_data.lstrip(b"\0")
            self._inflate = inflate = zlib.decompressobj(wbits=31)
            self._member_started = bool(rest)
            if rest:
                return inflate.decompress(rest, want)
        elif inflate.unconsumed_tail:
            return inflate.decompress(inflate.unconsumed_tail, want)
        chunk = self._raw.read(_READ_CHUNK)
        if not chunk:
            self._done = True
            if self._member_started:
                self._error = Truncated(f"gzip data ends before its end marker ({self.consumed} compressed bytes)")
                return inflate.flush()
            return b""
        self.consumed += len(chunk)
        if not self._member_started:
            chunk = chunk.lstrip(b"\0")
            if not chunk:
                return b""
        self._member_started = True
        return inflate.decompress(chunk, want)


class CappedReader(io.RawIOBase):
    """Counts bytes read from a decompressing stream; raises ArchiveLimit past the caps.

    `consumed` (when given) tells how many compressed bytes have been used so far, for the ratio;
    otherwise the whole compressed size is used.
    """

    def __init__(
        self,
        stream: IO[bytes],
        compressed_size: int,
        budget: Budget,
        what: str,
        consumed: Callable[[], int] | None = None,
    ) -> None:
        self._stream = stream
        self._compressed = max(compressed_size, 1)
        self._consumed = consumed
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
        if self.produced > RATIO_MIN_BYTES:
            compressed = self._consumed() if self._consumed is not None else self._compressed
            if self.produced > MAX_RATIO * max(compressed, 1):
                raise ArchiveLimit(
                    f"{self._what}: compression ratio over {MAX_RATIO} after {self.produced} bytes: "
                    "refused (zip/gzip bomb?)"
                )
        buffer[:size] = data
        return size


def buffered(raw: CappedReader) -> io.BufferedReader:
    return io.BufferedReader(raw, buffer_size=_COPY_CHUNK)


def spool(stream: IO[bytes], suffix: str, keep_partial: bool = False) -> Any:
    """Copy a (capped) stream to a private temporary file; the caller closes it, which deletes it.

    With `keep_partial`, a stream cut short (`Truncated`) still gives the copy of what came before the
    cut, with the error as `handle.truncated` (an EVTX reader can read the records that are there).
    """
    handle = tempfile.NamedTemporaryFile(prefix="svchunt-", suffix=suffix)  # noqa: SIM115
    handle.truncated = None
    try:
        shutil.copyfileobj(stream, handle, _COPY_CHUNK)
    except Truncated as exc:
        if not keep_partial:
            handle.close()
            raise
        handle.truncated = exc
    except BaseException:
        handle.close()
        raise
    handle.flush()
    return handle


def zip_consumed(stream: Any, compressed_size: int) -> Callable[[], int]:
    """Compressed bytes of a zip member read so far (ZipExtFile keeps what is left to read)."""
    return lambda: compressed_size - getattr(stream, "_compress_left", 0)


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

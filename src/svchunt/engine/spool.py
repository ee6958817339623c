"""Matched events' fields kept on disk, so a hunt's memory grows by ~100 bytes per match, not ~2 KB.

A big hunt matches hundreds of thousands of events, and every alert, correlation and incident needs them
until the outputs are written. Each worker writes the fields of the events it matched as JSON to its own
file in the run's directory (`FieldWriter`, through `pack`) and sends only a small `PackedEvent`; the
parent appends each worker's file to one `FieldSpool` (an unlinked temporary file, gone when the run's
alerts are) and gives each event a `StoredFields` in place of its dict: a read-only mapping that keeps the
few fields every stage reads (EventID, Channel, Computer, Provider_Name) and reads the rest back from the
file. Reads go through `os.pread` (the page cache, not this process's memory) with a small cache in front,
because the stages that read fields (incidents, outputs) take an event's alerts one after another.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import orjson

from svchunt.model import Event

# Read by almost every stage for every alert: kept in memory so that they never cost a read.
HOT_FIELDS = ("EventID", "Channel", "Computer", "Provider_Name")
_HOT_INDEX = {name: i for i, name in enumerate(HOT_FIELDS)}
CACHE_EVENTS = 512


class SpoolError(RuntimeError):
    """The temporary space for matched events cannot be written or read (full disk, missing TMPDIR)."""


def _spool_error(directory: str | None, exc: OSError) -> SpoolError:
    where = directory or tempfile.gettempdir()
    return SpoolError(
        f"temporary space for matched events in {where}: {exc.strerror or exc} (set TMPDIR to a folder with room)"
    )


@contextmanager
def _space(directory: str | None) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _spool_error(directory, exc) from None


@contextmanager
def run_directory() -> Iterator[str]:
    """The run's directory for the workers' files, removed at the end whatever happens."""
    with _space(None):
        holder = tempfile.TemporaryDirectory(prefix="svchunt-run-")
    with holder as path:
        yield path


class PackedEvent(NamedTuple):
    """A matched event as a worker sends it: provenance, the hot fields, and where its fields' JSON is in
    the worker's `FieldWriter` file (the fields never travel through the parent's memory). A tuple: the
    parent unpickles thousands of them per chunk, and a tuple's unpickling runs in C, a dataclass's not."""

    start: int
    length: int
    derived_length: int  # what `derive` made of the fields, as JSON after them (0: nothing)
    count: int  # number of fields (Mapping len without a read)
    hot: tuple[Any, ...]  # the HOT_FIELDS values, None where absent
    present: int  # bit i set: HOT_FIELDS[i] is a field of the event
    timestamp: str | None
    source: str
    record_id: int | None
    line: int | None
    header_record_id: int | None


class FieldWriter:
    """A worker's file of matched events' fields, created on the first write in the run's directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path: str | None = None
        self._out: Any = None
        self.size = 0

    def write(self, blob: bytes) -> int:
        with _space(self.directory):
            if self._out is None:
                fd, self.path = tempfile.mkstemp(prefix="fields-", dir=self.directory)
                self._out = os.fdopen(fd, "wb", buffering=1 << 20)
            start = self.size
            self._out.write(blob)
        self.size += len(blob)
        return start

    def close(self) -> str | None:
        """The file's path (None if nothing was written), complete on disk."""
        if self._out is not None:
            out, self._out = self._out, None
            with _space(self.directory):
                out.close()
        return self.path


def pack(event: Event, writer: FieldWriter, derive: Callable[[dict[str, Any]], Any] | None = None) -> PackedEvent | Event:
    """The event, its fields written to `writer` as JSON; an event whose fields JSON cannot hold is kept
    as it is. (Written, not kept: orjson's bytes keep the capacity they were built in, 4 KiB at least.)

    `derive(fields)`, when given, is computed here (in the worker, in parallel) and kept after the fields:
    `StoredFields.derived()` gives it back (incident keys, so the parent does not compute them)."""
    fields = event.fields
    try:
        blob = orjson.dumps(fields)
    except TypeError:
        return event
    try:
        extra = orjson.dumps(derive(fields)) if derive is not None else b""
    except Exception:  # noqa: BLE001 - an optional head start: the reader of the fields derives it again
        extra = b""
    start = writer.write(blob)
    if extra:
        writer.write(extra)
    hot = tuple(fields.get(name) for name in HOT_FIELDS)
    present = sum(1 << i for i, name in enumerate(HOT_FIELDS) if name in fields)
    return PackedEvent(
        start, len(blob), len(extra), len(fields), hot, present, event.timestamp, event.source, event.record_id, event.line,
        event.header_record_id,
    )


class FieldSpool:
    """An append-only file of field blobs, read back by (offset, length)."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        with _space(directory):
            self._file = tempfile.TemporaryFile(prefix="svchunt-fields-", dir=directory)
        self._fd = self._file.fileno()
        self.size = 0
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._last: tuple[int, dict[str, Any]] = (-1, {})

    def take(self, path: str | None) -> int:
        """Append a worker's `FieldWriter` file (copied by the kernel where it can) and delete it; returns
        the offset its content starts at."""
        base = self.size
        if path is None:
            return base
        with _space(self.directory):
            self._take(path, base)
        return base

    def _take(self, path: str, base: int) -> None:
        with open(path, "rb") as src:
            left = os.fstat(src.fileno()).st_size
            try:
                while left > 0:
                    copied = os.copy_file_range(src.fileno(), self._fd, left, offset_dst=self.size)
                    if copied == 0:
                        raise OSError("copy_file_range copied nothing")
                    left -= copied
                    self.size += copied
            except (AttributeError, OSError):  # not Linux, or a file system without it
                src.seek(self.size - base)
                while chunk := src.read(1 << 20):
                    self.add(chunk)
        os.unlink(path)

    def add(self, blob: bytes | bytearray) -> int:
        offset = self.size
        view = memoryview(blob)
        with _space(self.directory):
            while view:  # at the end whatever the file position (copy_file_range does not move it)
                written = os.pwrite(self._fd, view, offset + len(blob) - len(view))
                view = view[written:]
        self.size += len(blob)
        return offset

    def load(self, offset: int, length: int) -> dict[str, Any]:
        last = self._last
        if last[0] == offset:  # the same event again: its fields read one after another
            return last[1]
        cached = self._cache.get(offset)
        if cached is not None:
            self._cache.move_to_end(offset)
            self._last = (offset, cached)
            return cached
        fields = orjson.loads(self.read(offset, length))
        self._cache[offset] = fields
        self._last = (offset, fields)
        if len(self._cache) > CACHE_EVENTS:
            self._cache.popitem(last=False)
        return fields

    def read(self, offset: int, length: int) -> bytes:
        try:  # not `_space`: a context manager per read costs more than the read on this hot path
            data = os.pread(self._fd, length, offset)
        except OSError as exc:
            raise _spool_error(self.directory, exc) from None
        if len(data) != length:
            raise _spool_error(self.directory, OSError(f"read {len(data)} of {length} bytes at offset {offset}"))
        return data

    def unpack(self, packed: PackedEvent, base: int) -> Event:
        """The event, its fields in this spool at `base` (where its worker's file was `take`n) + its start."""
        hot = tuple(sys.intern(v) if type(v) is str and len(v) <= 128 else v for v in packed.hot)
        fields = StoredFields(
            self, base + packed.start, packed.length, packed.count, hot, packed.present, packed.derived_length
        )
        return Event(fields, packed.timestamp, packed.source, packed.record_id, packed.line, packed.header_record_id)  # type: ignore[arg-type]

    def close(self) -> None:
        self._cache.clear()
        self._last = (-1, {})
        self._file.close()


class StoredFields(Mapping[str, Any]):
    """An event's fields, read from a `FieldSpool` when asked for (never changed, as every event's fields)."""

    __slots__ = ("_spool", "_offset", "_length", "_count", "_hot", "_present", "_derived")

    def __init__(
        self,
        spool: FieldSpool,
        offset: int,
        length: int,
        count: int,
        hot: tuple[Any, ...],
        present: int,
        derived: int = 0,
    ) -> None:
        self._spool = spool
        self._offset = offset
        self._length = length
        self._count = count
        self._hot = hot
        self._present = present
        self._derived = derived

    def to_dict(self) -> dict[str, Any]:
        return self._spool.load(self._offset, self._length)

    def derived(self) -> Any:
        """What the worker derived from these fields (see `pack`), read back; None if nothing was."""
        if not self._derived:
            return None
        return orjson.loads(self._spool.read(self._offset + self._length, self._derived))

    def __getitem__(self, key: str) -> Any:
        i = _HOT_INDEX.get(key)
        if i is None:
            return self.to_dict()[key]
        if self._present >> i & 1:
            return self._hot[i]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        i = _HOT_INDEX.get(key)
        if i is None:
            return self.to_dict().get(key, default)
        return self._hot[i] if self._present >> i & 1 else default

    def __contains__(self, key: object) -> bool:
        i = _HOT_INDEX.get(key)  # type: ignore[call-overload]
        return bool(self._present >> i & 1) if i is not None else key in self.to_dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"StoredFields({self.to_dict()!r})"

"""Read one input file whatever its format, chosen from its first bytes, never from its name.

EVTX (`ElfFile\\0`), gzip (`\\x1f\\x8b`) of EVTX or JSON, zip (`PK\\3\\4`) of any of these (one level of
nested archives), Parquet of the svchunt event schema (`PAR1`, sources/parquet.py), or JSON (lines, one
object, or an array). Events come out normalised; anything unreadable comes out as a Problem naming the
source and position, and reading goes on.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

from svchunt.model import FLAGS_FIELD, Event, Problem, RouteTest
from svchunt.sources import archives
from svchunt.sources.archives import ArchiveLimit, Budget, CappedReader, GunzipReader, Truncated
from svchunt.sources.evtx_reader import CHUNK_MAGIC, FILE_MAGIC, HEADER_BLOCK, read_evtx, read_open_evtx
from svchunt.sources.json_reader import read_json
from svchunt.sources.parquet import PARQUET_MAGIC, read_parquet

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_OPEN_BUFFER = 1024 * 1024

Item = Event | Problem


def read_events(path: str, route: RouteTest | None = None) -> Iterator[Item]:
    """Normalised events of one file, and a Problem for each record, member or file that cannot be read.

    An empty file gives one Problem(path, "file", "empty file"): a skipped file, not a skipped record.
    Problems with position "file" mean the whole input (or what is left of it) was skipped; all other
    positions ("record N", "line N", "chunk N", "member NAME") are one skipped record each. An event
    whose values had to be changed to fit the bounds (normalise/bounds.py) is followed by a `kept`
    Problem saying what changed: a flagged record, not a skipped one.

    `route` (a hunt's): the EVTX records no rule can match, and that normalise without a flag, come out
    counted in an `Unrouted` (read, not passed on).
    """
    return with_flag_reports(_read_events(path, route))


def with_flag_reports(items: Iterator[Item]) -> Iterator[Item]:
    """The items, each event whose values were bounded followed by its `kept` Problem."""
    flags = FLAGS_FIELD
    for item in items:
        yield item
        if type(item) is Event and flags in item.fields:
            yield Problem.flagged(item)


def _read_events(path: str, route: RouteTest | None = None) -> Iterator[Item]:
    try:
        # Opened before it is looked at (one path lookup, not two), without blocking: a FIFO or a device
        # given by name is then refused by its fstat, never waited on.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        yield Problem(path, "file", f"cannot read: {exc.strerror or exc}")
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            yield Problem(path, "file", "not a regular file: skipped")
            return
        # Not `peek`: that fills the whole read buffer (a big read), and an EVTX file is then read again
        # by the parser.
        head = os.pread(fd, 8, 0)
    except OSError as exc:
        os.close(fd)
        yield Problem(path, "file", f"cannot read: {exc.strerror or exc}")
        return
    if head.startswith(FILE_MAGIC):  # the usual input: unbuffered, as its chunks are read with pread
        yield from read_open_evtx(open(fd, "rb", buffering=0), path, path, route, magic=head, size=info.st_size)
        return
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)  # read through from here on: as any other open file
    handle = open(fd, "rb", buffering=_OPEN_BUFFER)  # noqa: SIM115 - closed below
    with handle:
        if not head:
            yield Problem(path, "file", "empty file")
        elif head.startswith(PARQUET_MAGIC):  # a file of a `svchunt convert` dataset
            handle.close()
            yield from read_parquet(path)
        elif head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
            yield from _read_zip(handle, path, Budget(), depth=0)
        elif head.startswith(GZIP_MAGIC):
            yield from _read_gzip(handle, path, info.st_size, Budget(), depth=0, position="file")
        elif _chunk_after_header(handle):  # an EVTX file whose header is damaged
            handle.close()
            yield from read_evtx(path, path, route)
        else:
            yield from read_json(handle, path)


def _chunk_after_header(handle: IO[bytes]) -> bool:
    try:
        handle.seek(HEADER_BLOCK)
        found = handle.read(len(CHUNK_MAGIC)) == CHUNK_MAGIC
        handle.seek(0)
    except OSError:
        return False
    return found


def _read_stream(
    stream: IO[bytes],
    source: str,
    compressed_size: int,
    budget: Budget,
    depth: int,
    position: str,
    container: str,
) -> Iterator[Item]:
    """A decompressed stream (gzip content or zip member): sniff it and read it like a file.

    `source` names the stream itself (`a.zip!member`); `container` and `position` name it from the
    outside (`a.zip`, `member NAME`), for problems about the stream as a whole.
    """
    head = stream.peek(8)[:8] if hasattr(stream, "peek") else b""
    if not head:
        yield Problem(source, "file", "empty file")
        return
    if head.startswith(FILE_MAGIC):
        with archives.spool(stream, ".evtx", keep_partial=True) as copy:
            yield from read_evtx(copy.name, source)  # a cut copy: the EVTX reader accounts for the rest
            if copy.truncated is not None:
                yield Problem(container, position, f"{copy.truncated}: records after the cut are lost")
    elif head.startswith(PARQUET_MAGIC):  # needs random access: read from a folder, not an archive
        yield Problem(container, position, "Parquet inside an archive is not read: extract it first")
    elif head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC, GZIP_MAGIC)):
        if depth >= archives.MAX_NESTING:
            yield Problem(container, position, "archive nested deeper than one level: refused")
        elif head.startswith(GZIP_MAGIC):
            yield from _read_gzip(stream, source, compressed_size, budget, depth + 1, position, container)
        else:
            with archives.spool(stream, ".zip") as copy:
                yield from _read_zip(copy, source, budget, depth + 1)
    else:
        yield from read_json(stream, source)


def _read_gzip(
    raw: IO[bytes],
    source: str,
    compressed_size: int,
    budget: Budget,
    depth: int,
    position: str,
    container: str | None = None,
) -> Iterator[Item]:
    container = container or source
    gunzip = GunzipReader(raw)
    capped = CappedReader(gunzip, compressed_size, budget, source, consumed=lambda: gunzip.consumed)
    try:
        yield from _read_stream(
            archives.buffered(capped), source, compressed_size, budget, depth, position, container
        )
    except ArchiveLimit as exc:
        yield Problem(container, position, str(exc))
    except Truncated as exc:  # every complete record before the cut has been read
        yield Problem(container, position, f"{exc}: the rest after {capped.produced} bytes is lost")
    except (OSError, EOFError, zlib.error) as exc:  # corrupt gzip data
        yield Problem(container, position, f"gzip data unreadable after {capped.produced} bytes: {exc}")


def _read_zip(handle: IO[bytes], source: str, budget: Budget, depth: int) -> Iterator[Item]:
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield Problem(source, "file", f"not a readable zip file: {exc}")
        return
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            yield Problem(source, "file", "empty archive")
            return
        for info in members:
            name = info.filename
            where = f"member {name}"
            refusal = archives.unsafe_member_name(name) or archives.declared_bomb(info, budget)
            if refusal is not None:
                yield Problem(source, where, refusal)
                continue
            member_source = f"{source}!{name}"
            try:
                stream = archive.open(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError) as exc:
                yield Problem(source, where, f"cannot open member: {exc}")
                continue
            capped = CappedReader(
                stream, info.compress_size, budget, member_source, archives.zip_consumed(stream, info.compress_size)
            )
            try:
                with stream:
                    yield from _read_stream(
                        archives.buffered(capped),
                        member_source,
                        info.compress_size,
                        budget,
                        depth,
                        where,
                        source,
                    )
            except ArchiveLimit as exc:
                yield Problem(source, where, str(exc))
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                yield Problem(source, where, f"member data unreadable after {capped.produced} bytes: {exc}")

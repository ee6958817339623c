"""Expand the paths a user gives (files and folders) into the files to read, in a stable order."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from svchunt.model import Problem


@dataclass(frozen=True, slots=True)
class InputFile:
    """A regular file to read. `path` is as the user gave it, or joined under the folder given."""

    path: str
    size: int
    # (st_dev, st_ino) from the stat that found the file: one file reached by two paths is read once
    identity: tuple[int, int] | None = field(default=None, compare=False, repr=False)


def _reason(exc: OSError) -> str:
    return f"cannot read: {exc.strerror or exc}"


def _walk(folder: str, seen: set[tuple[int, int]]) -> Iterator[InputFile | Problem]:
    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing)
    except OSError as exc:
        yield Problem(folder, "file", _reason(exc))
        return
    for name in names:
        path = os.path.join(folder, name)
        # A regular file is the usual entry: decided here, without a generator of its own per file.
        try:
            info = os.stat(path)
        except OSError:
            info = None
        if info is not None and stat.S_ISREG(info.st_mode):
            yield _regular(path, info)
        else:
            yield from _one(path, seen, info)


def _regular(path: str, info: os.stat_result) -> InputFile | Problem:
    if not os.access(path, os.R_OK):
        return Problem(path, "file", "cannot read: permission denied")
    return InputFile(path, info.st_size, (info.st_dev, info.st_ino))


def _one(path: str, seen: set[tuple[int, int]], info: os.stat_result | None = None) -> Iterator[InputFile | Problem]:
    """`info`: the path's stat when the caller has it already."""
    try:
        info = info if info is not None else os.stat(path)  # follows symlinks: a dangling one fails here
    except OSError as exc:
        reason = "broken symbolic link" if os.path.islink(path) else _reason(exc)
        yield Problem(path, "file", reason)
        return
    if stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if key in seen:  # a symlink loop or the same folder given twice
            return
        seen.add(key)
        yield from _walk(path, seen)
    elif stat.S_ISREG(info.st_mode):
        yield _regular(path, info)
    else:
        # Never open a FIFO, socket or device: reading could block forever or never end.
        yield Problem(path, "file", "not a regular file (FIFO, socket or device): skipped")


def iter_inputs(paths: list[str]) -> Iterator[InputFile | Problem]:
    """Files of `paths`; folders are read recursively, entries sorted by name; each file once.

    Anything that cannot be read (missing path, broken symlink, permission denied, FIFO) is a
    Problem(path, "file", reason), counted by the engine as a skipped file.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for path in paths:
        for item in _one(path, seen_dirs):
            if type(item) is InputFile and item.identity is not None:
                if item.identity in seen_files:
                    continue
                seen_files.add(item.identity)
            yield item

"""Follow JSON-lines files and folders as shippers write them: growth, rotation (rename + new file) and
truncation (copytruncate), resuming from the committed (inode, offset, line) of each file.

A file is keyed by its path. The position is the offset of the first byte not yet handed on, so a line is
never split by a commit. After a rotation the old file is read to its end (under the old path's name, so
line numbers go on), then the new file from its start. When the state names an inode that is no longer at
the path (rotated while svchunt was stopped), the old file is looked for by inode in the same folder.
"""

from __future__ import annotations

import fnmatch
import os
import time
from dataclasses import dataclass
from typing import Any

from svchunt.model import Problem
from svchunt.watch.chunk import Chunk, Done
from svchunt.watch.threaded import ThreadedInput

READ_SIZE = 1 << 20
CHUNK_LINES = 2000
DEFAULT_PATTERNS = ("*.json", "*.jsonl", "*.ndjson")


@dataclass
class _Tracked:
    path: str  # the followed name (source of its events)
    fh: Any
    inode: int
    offset: int  # first byte not yet handed on
    line: int  # lines handed on so far
    buf: bytes = b""
    skipping: bool = False  # inside a line longer than the limit: discard to its end
    draining: bool = False  # an old rotated file: read to the end, then switch to the new one
    eof: bool = False


class FileFollower(ThreadedInput):
    thread_name = "watch-files"

    def __init__(
        self,
        targets: list[str],
        patterns: tuple[str, ...] = DEFAULT_PATTERNS,
        poll_interval: float = 0.2,
        max_line: int = 1 << 20,
        once: bool = False,
        from_end: bool = False,
    ) -> None:
        super().__init__()
        self.targets = targets
        self.patterns = patterns
        self.poll_interval = poll_interval
        self.max_line = max_line
        self.once = once
        self.from_end = from_end
        self.key = "files"
        self._tracked: dict[str, _Tracked] = {}
        self._pending_new: dict[str, bool] = {}  # path -> must open the new file after draining the old one
        self._retired: set[int] = set()  # inodes of rotated files read to their end (not read again under a new name)

    @staticmethod
    def state_key(path: str) -> str:
        return "file:" + path

    # -- discovery -----------------------------------------------------------------
    def _discover(self) -> list[str]:
        found: list[str] = []
        for target in self.targets:
            if os.path.isdir(target):
                try:
                    names = sorted(os.listdir(target))
                except OSError:
                    continue
                for name in names:
                    if any(fnmatch.fnmatch(name, p) for p in self.patterns):
                        path = os.path.join(target, name)
                        if os.path.isfile(path):
                            found.append(path)
            else:
                found.append(target)
        return found

    def _open_new(self, path: str) -> None:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - kept open while followed
        except OSError:
            return  # not there (yet): a followed file may appear later
        st = os.fstat(fh.fileno())
        if st.st_ino in self._retired or any(t.inode == st.st_ino and t.path != path for t in self._tracked.values()):
            fh.close()  # a rotated name of a file we already follow
            return
        saved = self._positions.get(self.state_key(path))
        offset, line = 0, 0
        if saved is not None:
            if saved["inode"] == st.st_ino:
                if st.st_size >= saved["offset"]:
                    offset, line = saved["offset"], saved["line"]
                else:
                    self._notice(path, "file is shorter than the committed offset (truncated): reading from the start")
            else:
                old = _find_inode(os.path.dirname(path) or ".", saved["inode"])
                if old is not None:
                    fh.close()
                    fh_old = open(old, "rb")  # noqa: SIM115
                    fh_old.seek(saved["offset"])
                    self._tracked[path] = _Tracked(path, fh_old, saved["inode"], saved["offset"], saved["line"],
                                                   draining=True)
                    self._pending_new[path] = True
                    return
                self._notice(path, "rotated while stopped and the old file was not found: reading the new one")
        elif self.from_end:
            offset = st.st_size
        fh.seek(offset)
        self._tracked[path] = _Tracked(path, fh, st.st_ino, offset, line)

    def _notice(self, path: str, text: str) -> None:
        self._stats.count_notice(f"{path}: {text}")

    # -- main loop -------------------------------------------------------------------
    def _run(self) -> None:
        last_scan = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_scan >= self.poll_interval or not self._tracked:
                for path in self._discover():
                    if path not in self._tracked:
                        self._open_new(path)
                last_scan = now
            progressed = False
            for tracked in list(self._tracked.values()):
                if self._stop.is_set():
                    break
                progressed |= self._read(tracked)
            if self.once and not progressed and all(t.eof for t in self._tracked.values()):
                self._put(Done(self.key))
                return
            if not progressed:
                self._stop.wait(self.poll_interval)

    def _read(self, t: _Tracked) -> bool:
        data = t.fh.read(READ_SIZE)
        if not data:
            t.eof = self._check_rotation(t)
            return False
        t.eof = False
        self._split(t, data)
        return True

    def _split(self, t: _Tracked, data: bytes) -> None:
        chunk = Chunk(self.state_key(t.path), t.path, received=time.time())
        buf = t.buf + data if t.buf else data
        start = 0
        limit = self.max_line
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            raw = buf[start:nl]
            end = nl + 1
            t.offset += end - start
            start = end
            t.line += 1
            if t.skipping:
                t.skipping = False
                chunk.problems.append(Problem(t.path, f"line {t.line}", f"oversized line: longer than {limit} bytes"))
            elif len(raw) > limit:
                chunk.problems.append(Problem(t.path, f"line {t.line}", f"oversized line: longer than {limit} bytes"))
            elif raw.strip():
                chunk.lines.append((t.line, raw))
            if len(chunk.lines) >= CHUNK_LINES:
                chunk.position = self._position(t)
                self._put(chunk)
                chunk = Chunk(self.state_key(t.path), t.path, received=time.time())
        rest = buf[start:]
        if len(rest) > limit:
            t.skipping = True  # the offset stays at the line start until the line ends
            rest = b""
        t.buf = rest
        if chunk.lines or chunk.problems:
            chunk.position = self._position(t)
            self._put(chunk)
        self._stats.backlog[t.path] = max(0, _size(t.fh) - t.offset - len(t.buf))

    def _position(self, t: _Tracked) -> dict[str, int]:
        return {"inode": t.inode, "offset": t.offset, "line": t.line}

    def _check_rotation(self, t: _Tracked) -> bool:
        """At the end of the data read so far: handle truncation and rotation. True when really at the end."""
        try:
            st = os.stat(t.path)
        except OSError:
            st = None  # renamed away and not yet recreated: keep reading the old one
        size = _size(t.fh)
        if not t.draining and size < t.offset + len(t.buf):
            self._notice(t.path, f"truncated at offset {t.offset}: reading from the start")
            t.fh.seek(0)
            t.offset, t.line, t.buf, t.skipping = 0, 0, b"", False
            return False
        if t.draining or (st is not None and st.st_ino != t.inode):
            more = t.fh.read(READ_SIZE)  # the writer may have added a last bit before moving on
            if more:
                self._split(t, more)
                return False
            if t.buf or t.skipping:
                self._put(Chunk(self.state_key(t.path), t.path, problems=[
                    Problem(t.path, f"line {t.line + 1}", "partial message: incomplete last line of a rotated file")
                ], position=self._position(t), received=time.time()))
            t.fh.close()
            self._retired.add(t.inode)
            del self._tracked[t.path]
            self._pending_new.pop(t.path, None)
            # the new file starts with no saved position of its own
            self._positions.pop(self.state_key(t.path), None)
            self._open_new(t.path)
            return False
        if self.once and t.buf:
            return True  # an unfinished last line stays pending: a follower never guesses where it ends
        return True


def _size(fh: Any) -> int:
    try:
        return os.fstat(fh.fileno()).st_size
    except OSError:
        return 0


def _find_inode(folder: str, inode: int) -> str | None:
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for name in names:
        path = os.path.join(folder, name)
        try:
            if os.stat(path).st_ino == inode:
                return path
        except OSError:
            continue
    return None

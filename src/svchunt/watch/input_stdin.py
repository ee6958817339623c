"""JSON lines on standard input (a shipper piping into svchunt). No position: a pipe cannot be re-read."""

from __future__ import annotations

import os
import sys
import time
from typing import IO

from svchunt.model import Problem
from svchunt.watch.chunk import Chunk, Done
from svchunt.watch.threaded import ThreadedInput

CHUNK_LINES = 1000
SOURCE = "<stdin>"


class StdinInput(ThreadedInput):
    key = "stdin"
    thread_name = "watch-stdin"

    def __init__(self, stream: IO[bytes] | None = None, max_line: int = 1 << 20) -> None:
        super().__init__()
        self.stream = stream
        self.max_line = max_line

    def _run(self) -> None:
        # os.read returns whatever the pipe holds, so a line is handed on as soon as it is complete
        fd = (self.stream if self.stream is not None else sys.stdin.buffer).fileno()
        limit = self.max_line
        number = 0
        buf = b""
        skipping = False
        while not self._stop.is_set():
            data = os.read(fd, 1 << 20)
            if not data:
                break
            chunk = Chunk(self.key, SOURCE, received=time.time())
            buf = buf + data if buf else data
            start = 0
            while (nl := buf.find(b"\n", start)) >= 0:
                raw = buf[start:nl]
                start = nl + 1
                number += 1
                if skipping or len(raw) > limit:
                    skipping = False
                    chunk.problems.append(Problem(SOURCE, f"line {number}", f"oversized line: longer than {limit} bytes"))
                elif raw.strip():
                    chunk.lines.append((number, raw.rstrip(b"\r")))
                if len(chunk.lines) >= CHUNK_LINES:
                    self._out.put(chunk)
                    chunk = Chunk(self.key, SOURCE, received=time.time())
            buf = buf[start:]
            if len(buf) > limit:
                skipping, buf = True, b""
            if chunk.lines or chunk.problems:
                self._out.put(chunk)
        if buf.strip() or skipping:
            self._out.put(Chunk(self.key, SOURCE, problems=[
                Problem(SOURCE, f"line {number + 1}", "partial message: input ended inside a line")]))
        self._out.put(Done(self.key))

"""Syslog over TCP, one JSON event per message, with RFC 6587 framing: octet counting (`LEN SP MSG`) or
newline-delimited, told apart per message by its first byte (a digit starts an octet count).

The JSON event is the message from its first `{` on, so an RFC 5424 / 3164 header in front is allowed.
Syslog has no acknowledgement, so there is no position to resume from: what was received but not yet
committed at a crash is lost (the file and Redis inputs do not have this limit).
A client that stops in the middle of a message is dropped after `idle_timeout` seconds and counted.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any

from svchunt.model import Problem
from svchunt.watch.chunk import Chunk
from svchunt.watch.stats import Stats
from svchunt.watch.threaded import ThreadedInput


class SyslogInput(ThreadedInput):
    thread_name = "watch-syslog"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 6514, max_line: int = 1 << 20, idle_timeout: float = 30.0, log=None
    ) -> None:
        super().__init__()
        self.host, self.port, self.max_line, self.idle_timeout = host, port, max_line, idle_timeout
        self.key = f"syslog:{port}"
        self.source = f"syslog:{port}"
        self.log = log or (lambda text: None)
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self.bound_port = port

    def _prepare(self, positions: dict[str, Any]) -> None:
        self._seq = int((positions.get(self.key) or {}).get("seq", 0))

    def start(self, out: queue.Queue, positions: dict[str, Any], stats: Stats) -> None:
        super().start(out, positions, stats)
        self._ready.wait(10)  # the server binds on its own loop's thread: wait for the outcome
        if self._error is not None:
            raise self._error

    _error: BaseException | None = None

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(self._client, self.host, self.port))
            self.bound_port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        super().stop()
        if self._loop and self._server:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _emit(self, messages: list[bytes], problems: list[str]) -> None:
        chunk = Chunk(self.key, self.source, received=time.time())
        for message in messages:
            self._seq += 1
            start = message.find(b"{")
            if len(message) > self.max_line:
                chunk.problems.append(Problem(self.source, f"line {self._seq}",
                                              f"oversized line: longer than {self.max_line} bytes"))
            elif start < 0:
                chunk.problems.append(Problem(self.source, f"line {self._seq}", "invalid JSON: no JSON object in the message"))
            else:
                chunk.lines.append((self._seq, message[start:].rstrip(b"\r\n")))
        for reason in problems:
            self._seq += 1
            chunk.problems.append(Problem(self.source, f"line {self._seq}", reason))
        chunk.position = {"seq": self._seq}
        if chunk.lines or chunk.problems:
            self._out.put(chunk)  # blocking the loop is the backpressure: every client waits

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        buf = b""
        limit = self.max_line
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(1 << 16), self.idle_timeout if buf else None)
                except TimeoutError:
                    self._emit([], [f"partial message: client {peer} stalled with {len(buf)} bytes of a message"])
                    self.log(f"{self.source}: dropped {peer}: stalled inside a message")
                    return
                if not data:
                    if buf.strip():
                        self._emit([], [f"partial message: connection from {peer} closed inside a message"])
                    return
                buf += data
                messages, buf, problems = _frames(buf, limit)
                if messages or problems:
                    self._emit(messages, problems)
                if problems and any(p.startswith("framing") for p in problems):
                    self.log(f"{self.source}: dropped {peer}: {problems[-1]}")
                    return
        finally:
            writer.close()


def _frames(buf: bytes, limit: int) -> tuple[list[bytes], bytes, list[str]]:
    """Complete messages at the front of `buf`, the unfinished rest, and framing problems."""
    out: list[bytes] = []
    problems: list[str] = []
    pos = 0
    size = len(buf)
    while pos < size:
        if buf[pos] in b"\r\n":
            pos += 1
            continue
        if 48 <= buf[pos] <= 57:  # octet counting: LEN SP MSG
            space = buf.find(b" ", pos, pos + 12)
            if space < 0:
                if size - pos >= 12:
                    problems.append("framing error: octet count without a space")
                    return out, b"", problems
                break
            digits = buf[pos:space]
            if not digits.isdigit():
                problems.append("framing error: bad octet count")
                return out, b"", problems
            length = int(digits)
            if length > limit:
                problems.append(f"framing error: message of {length} bytes is over the limit of {limit}")
                return out, b"", problems
            if space + 1 + length > size:
                break
            out.append(buf[space + 1 : space + 1 + length])
            pos = space + 1 + length
        else:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if size - pos > limit:
                    problems.append(f"oversized line: longer than {limit} bytes")
                    return out, b"", problems
                break
            out.append(buf[pos:nl])
            pos = nl + 1
    return out, buf[pos:], problems

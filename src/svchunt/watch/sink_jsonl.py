"""Alerts appended to a JSON-lines file, fsynced per batch, with no repeats across a crash.

Alerts are written before the batch is committed. The state keeps the file size at each commit; on start,
the alert ids in the bytes after it (written by a batch whose commit did not happen) are read back so the
replayed batch does not write them twice, and a torn last line is cut off.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from svchunt.model import Alert
from svchunt.outputs.jsonl import alert_line

__all__ = ["JsonlSink", "StdoutSink", "alert_line", "recover_tail"]


def recover_tail(path: str, committed_size: int) -> tuple[set[str], str | None]:
    """Alert ids after `committed_size`; cuts a torn last line. Returns (ids, notice or None)."""
    if not os.path.exists(path):
        return set(), None
    size = os.path.getsize(path)
    if committed_size > size:
        return set(), f"{path} is shorter than at the last commit (rotated or truncated by someone else)"
    ids: set[str] = set()
    notice = None
    with open(path, "r+b") as fh:
        fh.seek(committed_size)
        tail = fh.read()
        end = tail.rfind(b"\n") + 1
        if end < len(tail):
            fh.truncate(committed_size + end)
            notice = f"{path}: cut a torn last line of {len(tail) - end} bytes (written during a crash)"
        for line in tail[:end].splitlines():
            try:
                ids.add(orjson.loads(line)["alert_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
    return ids, notice


class JsonlSink:
    def __init__(self, path: str, fsync: bool = True) -> None:
        self.path = path
        self.name = f"jsonl:{path}"
        self.fsync = fsync
        self._fh: Any = None

    def open(self, saved: dict[str, Any] | None) -> tuple[set[str], str | None]:
        ids, notice = recover_tail(self.path, int((saved or {}).get("size", 0)))
        self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the whole run
        return ids, notice

    def write(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        self._fh.write(b"".join(alert_line(a) for a in alerts))
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def state(self) -> dict[str, Any]:
        return {"size": self._fh.tell()}

    def close(self) -> None:
        if self._fh:
            self._fh.close()


class StdoutSink:
    name = "stdout"

    def __init__(self, stream: Any = None) -> None:
        import sys

        self.stream = stream or sys.stdout.buffer

    def open(self, saved: dict[str, Any] | None) -> tuple[set[str], str | None]:
        return set(), None

    def write(self, alerts: list[Alert]) -> None:
        if alerts:
            self.stream.write(b"".join(alert_line(a) for a in alerts))
            self.stream.flush()

    def state(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        pass

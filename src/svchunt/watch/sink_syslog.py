"""Alerts to a syslog collector over TCP: RFC 5424 messages with the alert as JSON, RFC 6587 octet counting.

At least once with no disk queue: a lost connection is retried (the batch waits, which is backpressure).
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

from svchunt.model import Alert
from svchunt.watch.sink_jsonl import alert_line

_SEVERITY = {"informational": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}
FACILITY = 13  # log audit


def frame(alert: Alert, hostname: str) -> bytes:
    pri = FACILITY * 8 + _SEVERITY.get(alert.rule.level, 5)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    msg = f"<{pri}>1 {now} {hostname} svchunt - alert - ".encode() + alert_line(alert).rstrip(b"\n")
    return str(len(msg)).encode() + b" " + msg


class SyslogSink:
    def __init__(self, host: str, port: int, retries: int = 5, log=None) -> None:
        self.host, self.port, self.retries = host, port, retries
        self.name = f"syslog:{host}:{port}"
        self.hostname = socket.gethostname()
        self.log = log or (lambda text: None)
        self._sock: socket.socket | None = None

    def open(self, saved: dict[str, Any] | None) -> tuple[set[str], str | None]:
        return set(), None

    def write(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        data = b"".join(frame(a, self.hostname) for a in alerts)
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                if self._sock is None:
                    self._sock = socket.create_connection((self.host, self.port), timeout=10)
                self._sock.sendall(data)
                return
            except OSError as exc:
                self._close()
                if attempt == self.retries:
                    raise
                self.log(f"syslog sink {self.host}:{self.port}: {exc}; retry in {delay:.1f}s")
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def state(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        self._close()

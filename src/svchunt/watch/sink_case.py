"""Alerts appended to a `--case` DuckDB file as in `hunt`; the case file itself skips alert ids it holds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from svchunt.model import Alert, HuntResult, RunStats


class CaseSink:
    def __init__(self, path: str, args: dict[str, Any] | None = None) -> None:
        self.path = path
        self.name = f"case:{path}"
        self.args = args or {}

    def open(self, saved: dict[str, Any] | None) -> tuple[set[str], str | None]:
        return set(), None

    def write(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        from svchunt.outputs.case import write_case

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        started = time.perf_counter()
        result = HuntResult(alerts=list(alerts), stats=RunStats(), problems=[], refused=[])
        result.stats.seconds = time.perf_counter() - started
        write_case(self.path, result, {"started": now, "finished": now, "args": {"command": "watch", **self.args}})

    def state(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        pass

"""Alerts as JSON Lines: one `Alert.to_dict()` per line, the machine-readable hand-over format."""

from __future__ import annotations

from pathlib import Path

import orjson

from svchunt.model import Alert

# Sorted keys and a fixed alert order make two runs on the same input byte-identical (diffable, hashable).
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _fallback(value: object) -> str:
    # Event fields are str/int/None by contract; anything else is written as text rather than crashing the run.
    return str(value)


def write_jsonl(alerts: list[Alert], path: str) -> int:
    """Write the alerts sorted by `Alert.sort_key()`; returns the number of lines written."""
    ordered = sorted(alerts, key=lambda a: a.sort_key())
    with Path(path).open("wb") as out:
        for alert in ordered:
            out.write(orjson.dumps(alert.to_dict(), option=_OPTS, default=_fallback))
    return len(ordered)

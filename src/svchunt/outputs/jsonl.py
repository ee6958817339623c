"""Alerts as JSON Lines: one alert document (`svchunt.outputs.document`) per line, the hand-over format."""

from __future__ import annotations

from pathlib import Path

import orjson

from svchunt.model import Alert
from svchunt.outputs.document import to_document
from svchunt.values import to_text

# Sorted keys and a fixed alert order make two runs on the same input byte-identical (diffable, hashable).
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _fallback(value: object) -> str:
    # Event values are the types of `svchunt.values`; anything else is written as its text, never a crash.
    return to_text(value) or ""


def alert_line(alert: Alert) -> bytes:
    """One alert document as one JSON line (what `hunt --jsonl` and every `watch` sink write)."""
    return orjson.dumps(to_document(alert), option=_OPTS, default=_fallback)


def write_jsonl(alerts: list[Alert], path: str) -> int:
    """Write the alerts sorted by `Alert.sort_key()`; returns the number of lines written."""
    ordered = sorted(alerts, key=lambda a: a.sort_key())
    with Path(path).open("wb") as out:
        for alert in ordered:
            out.write(alert_line(alert))
    return len(ordered)

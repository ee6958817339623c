"""Timestamps as fixed-width UTC text (`2019-03-19T00:41:29.008933Z`) so that they sort as strings."""

from __future__ import annotations

from datetime import UTC, datetime

_FIXED_WIDTH = 27  # len("2019-03-19T00:41:29.008933Z")


def normalise_timestamp(value: object) -> str | None:
    """Fixed-width UTC ISO 8601 text, or None when absent, unparseable or out of range (never an error).

    Accepts what EVTX, NXLog/HELK and Winlogbeat write: `Z` or `+hh:mm` offsets, 0-9 fraction digits,
    `T` or a space between date and time. A value without a zone is taken as UTC.
    """
    if not isinstance(value, str) or len(value) < 19:
        return None
    # Fast path: what the evtx parser emits for TimeCreated.
    if len(value) == _FIXED_WIDTH and value[26] == "Z" and value[19] == "." and value[10] == "T":
        return value
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat takes at most 6 fraction digits: cut nanoseconds (Winlogbeat, EVTX 7-digit headers).
    dot = text.find(".", 19)
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot - 1 > 6:
            text = text[: dot + 7] + text[end:]
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        else:
            moment = moment.astimezone(UTC)  # OverflowError past year 9999 or before year 1
    except (ValueError, OverflowError):
        return None
    # Not strftime: it writes years below 1000 without leading zeros on some platforms.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond:06d}Z"
    )

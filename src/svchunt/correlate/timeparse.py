"""Timestamps as integer microseconds: exact comparisons, so equal timestamps stay equal."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TIMESPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=65536)
def to_micros(timestamp: str) -> int:
    """`2019-03-19T00:41:29.008000Z` -> microseconds since the epoch. Raises ValueError on bad input."""
    parsed = datetime.fromisoformat(timestamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> str:
    seconds, rest = divmod(micros, 1_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timespan(text: object) -> int:
    """Sigma `timespan` (`30s`, `5m`, `1h`, `2d`: number + lowercase unit, as the spec demands) -> microseconds."""
    if not isinstance(text, str) or len(text) < 2 or text[-1] not in TIMESPAN_UNITS or not text[:-1].isdigit():
        raise ValueError(f"timespan {text!r} is not <number><s|m|h|d> (Sigma correlation spec)")
    count = int(text[:-1])
    if count <= 0:
        raise ValueError(f"timespan {text!r} must be greater than zero")
    return count * TIMESPAN_UNITS[text[-1]] * 1_000_000

"""Bounds on a normalised event, so that no value from hostile input can break a later stage.

Every stage after normalisation (matching, correlation, alert ids, Arrow/DuckDB/Parquet columns, outputs)
may rely on what `bound_fields` guarantees:

- values are `None`, `str` of at most MAX_TEXT_CHARS characters, `bool`, `int` that fits 64 bits
  (signed or unsigned, as Windows writes them: -2**63..2**64-1), finite `float`, or a list of at most
  MAX_LIST_ITEMS such scalars;
- nested JSON is compact text at most MAX_DEPTH levels deep (deeper parts are cut);
- `EventID` is an int in 0..65535 and `EventRecordID` an int in 0..2**63-1, or the record keeps the
  given value as text under that name (it then matches no numeric rule);
- `Channel`, `Computer` and `Provider_Name` are text or None.

Nothing is dropped without a word: each value that had to be changed adds a line to the event's
`FLAGS_FIELD` list ("EventRecordID out of range: kept as text"), which the hunt and watch count and report
as a flagged (kept, not skipped) record.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from svchunt.model import FLAGS_FIELD
from svchunt.values import parse_number, to_text

MAX_TEXT_CHARS = 1 << 20  # one value; the JSON reader already refuses lines over 16 MiB
MAX_LIST_ITEMS = 10_000
MAX_DEPTH = 64
MAX_EVENT_ID = 65_535
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
# How much of an offending value a flag quotes.
_QUOTE = 80

_SCALARS = (str, int, float, bool, type(None))


def quote(value: Any) -> str:
    text = to_text(value) or ""
    return repr(text if len(text) <= _QUOTE else text[:_QUOTE] + "...")


def add_flag(out: dict[str, Any], message: str) -> None:
    flags = out.get(FLAGS_FIELD)
    if type(flags) is list:
        flags.append(message)
    else:
        out[FLAGS_FIELD] = [message]


_CUT = f"nested deeper than {MAX_DEPTH} levels or with numbers JSON cannot hold: cut"


def nested_json(value: Any) -> tuple[str, bool]:
    """Compact JSON text of a nested value, and whether it had to be pruned first (past MAX_DEPTH levels,
    or numbers JSON cannot hold)."""
    try:
        if _depth_ok(value, MAX_DEPTH):
            return orjson.dumps(value).decode(), False
    except (TypeError, ValueError):  # an integer wider than 64 bits
        pass
    return orjson.dumps(_pruned(value, MAX_DEPTH)).decode(), True


def nested_text(value: Any, out: dict[str, Any], key: str) -> str:
    """`nested_json`, flagging a pruned value on the event being built."""
    text, cut = nested_json(value)
    if cut:
        add_flag(out, f"{key} {_CUT}")
    return text


def _depth_ok(value: Any, budget: int) -> bool:
    # Iterative: a hostile value can be nested far deeper than Python's recursion limit.
    stack = [(value, budget)]
    while stack:
        node, left = stack.pop()
        if type(node) is dict:
            children = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        if left <= 0:
            return False
        stack.extend((child, left - 1) for child in children if type(child) in (dict, list))
    return True


def _pruned(value: Any, left: int) -> Any:
    kind = type(value)
    if kind is dict or kind is list:
        if left <= 0:
            return f"<cut: nested deeper than {MAX_DEPTH} levels>"
        if kind is dict:
            return {str(k): _pruned(v, left - 1) for k, v in value.items()}
        return [_pruned(v, left - 1) for v in value]
    if kind is int and not INT64_MIN <= value <= UINT64_MAX:
        return str(value)
    if kind is float and not math.isfinite(value):
        return to_text(value)
    return value if kind in _SCALARS else str(value)


def bound_fields(out: dict[str, Any]) -> None:
    """Make every value of a normalised event fit the bounds above, flagging each change."""
    flags: list[str] = []
    for key, value in out.items():
        kind = type(value)
        if kind is str:
            if len(value) > MAX_TEXT_CHARS:
                out[key] = value[:MAX_TEXT_CHARS]
                flags.append(f"{key} longer than {MAX_TEXT_CHARS} characters ({len(value)}): cut")
        elif kind is int:
            if not INT64_MIN <= value <= UINT64_MAX:
                out[key] = str(value)
                flags.append(f"{key} out of the 64-bit range: kept as text")
        elif kind is float:
            if not math.isfinite(value):
                out[key] = to_text(value)
                flags.append(f"{key} is not a finite number: kept as text")
        elif kind is list:
            out[key] = _bounded_list(key, value, flags)
        elif kind is not bool and value is not None:  # a caller left a nested value: make it text
            text, cut = nested_json(value)
            if cut:
                flags.append(f"{key} {_CUT}")
            out[key] = text
    if flags:
        for message in flags:
            add_flag(out, message)


def _bounded_list(key: str, value: list[Any], flags: list[str]) -> list[Any]:
    if len(value) > MAX_LIST_ITEMS:
        flags.append(f"{key} has {len(value)} values: first {MAX_LIST_ITEMS} kept")
        value = value[:MAX_LIST_ITEMS]
    clean = True
    for item in value:
        kind = type(item)
        if kind is str:
            clean = len(item) <= MAX_TEXT_CHARS
        elif kind is int:
            clean = INT64_MIN <= item <= UINT64_MAX
        elif kind is float:
            clean = math.isfinite(item)
        else:
            clean = kind is bool or item is None
        if not clean:
            break
    if clean:
        return value
    flags.append(f"{key} has values out of bounds: kept as text")
    return [None if item is None else as_text(item) for item in value]


def event_id(raw: Any, out: dict[str, Any]) -> int | None:
    """The EventID as an int in 0..65535; any other given value is flagged (the caller keeps it as text);
    None when absent."""
    return _bounded_whole(raw, MAX_EVENT_ID, out, f"is not a number 0-{MAX_EVENT_ID}", "EventID")


_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|0[xX][0-9a-fA-F]+|inf(?:inity)?|nan)\s*",
                           re.ASCII | re.IGNORECASE)


def numeric(raw: Any) -> bool:
    """A number of any size (or NaN / Infinity), as a value or as text: what an EventID must look like."""
    if type(raw) is int or type(raw) is float:
        return True
    return type(raw) is str and _NUMERIC_TEXT.fullmatch(raw) is not None


def record_number(raw: Any, out: dict[str, Any], name: str = "EventRecordID") -> int | None:
    """A record number as an int in 0..2**63-1, or None; a given value out of range is flagged."""
    return _bounded_whole(raw, INT64_MAX, out, "is not a record number", name)


def _bounded_whole(raw: Any, high: int, out: dict[str, Any], what: str, name: str) -> int | None:
    """`raw` as a whole number in 0..high; a given value that is not one is flagged; None when absent."""
    if type(raw) is int and 0 <= raw <= high:
        return raw
    if raw is None or raw == "":
        return None
    number = _whole(raw)
    if number is not None and 0 <= number <= high:
        return number
    add_flag(out, f"{name} {quote(raw)} {what}: kept as text")
    return None


def _whole(raw: Any) -> int | None:
    if type(raw) is bool:
        return None
    number = parse_number(raw)
    if type(number) is float:
        return int(number) if number.is_integer() else None
    return number  # type: ignore[return-value]


def as_text(raw: Any) -> str:
    """Any value as bounded text: how a value that cannot be what its field needs is kept."""
    text = to_text(raw) if type(raw) in _SCALARS else nested_json(raw)[0]
    return (text or "")[:MAX_TEXT_CHARS]


def name_text(raw: Any, what: str, out: dict[str, Any]) -> str | None:
    """Channel / Computer / provider name as text; anything else is turned into text and flagged."""
    if raw is None or type(raw) is str:
        return raw if raw is None or len(raw) <= MAX_TEXT_CHARS else raw[:MAX_TEXT_CHARS]
    add_flag(out, f"{what} is not text: kept as its text")
    return as_text(raw)


def flag_timestamp(out: dict[str, Any], raw: Any) -> None:
    add_flag(out, f"timestamp {quote(raw)} unusable (not ISO 8601 or out of range): event has no time")

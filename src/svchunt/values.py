"""The normalised event value type, and the one way each back end turns a value into text or a number.

An event field holds `None`, a scalar (`str`, `int`, `float`, `bool`) or a list of scalars (unnamed
`<Data>` elements, multi-valued JSON fields). Every stage that needs a value as text (the Python and SQL
back ends, keyword search, correlations, outputs) goes through `to_text`, and every stage that needs it as
a number goes through `parse_number`, so a value can never match in one mode and not in another.

- Text of a scalar: strings as they are, booleans as JSON writes them (`true`/`false`), integers in
  decimal, finite floats in Python's shortest round-trip form, non-finite floats as `NaN`/`Infinity`.
- A list is matched element by element (`elements`); `None` elements are no value and are skipped.
- "Present" means not `None` and not the empty string (SigmaHQ rules treat an empty value as absent); a
  list is present when one of its elements is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import orjson

# Windows event numbers are at most 64 bits wide (signed or unsigned): anything wider is text, not a number.
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
# Longer text is never a number: bounds the work `int()`/`float()` may do on hostile input.
MAX_NUMBER_TEXT = 100

# ASCII only: Python's int()/float() also accept other scripts' digits and `1_000`, which no log writes.
_DECIMAL = re.compile(r"[+-]?[0-9]+", re.ASCII)
_HEX = re.compile(r"[+-]?0[xX][0-9a-fA-F]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)

_JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def to_text(value: Any) -> str | None:
    """The text form of a value; `None` stays `None`. A list becomes its elements' text joined by newlines
    (for display: matching goes element by element, see `elements`)."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, list | tuple):
        return "\n".join(elements(value))
    if isinstance(value, dict):
        return orjson.dumps(value, option=_JSON_OPTS, default=str).decode()
    if isinstance(value, str | bool | int | float):  # subclasses (e.g. IntEnum): their base type's form
        return to_text(_base(value))
    return str(value)


def _base(value: Any) -> Any:
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def elements(value: Any) -> list[str]:
    """The texts a value is matched as: one for a scalar, one per non-None element for a list, none for None."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [t for item in value if (t := to_text(item)) is not None]
    text = to_text(value)
    return [] if text is None else [text]


def fold(value: Any) -> Any:
    """Case-folded text of a value (Sigma matches case-insensitively): a str, a tuple of str for a list, or None."""
    if value is None:
        return None
    if type(value) is str:
        return value.lower()
    if isinstance(value, list | tuple):
        return tuple(t.lower() for t in elements(value))
    text = to_text(value)
    return None if text is None else text.lower()


def present(value: Any) -> bool:
    """Not None and not empty; a list is present when one of its elements is."""
    if value is None or value == "":
        return False
    if isinstance(value, list | tuple):
        return any(t != "" for t in elements(value))
    return True


def parse_number(value: Any) -> int | float | None:
    """The number a value stands for, or None. Never raises.

    Accepts int and float values and text holding a decimal integer, a hexadecimal integer (`0x1F`, as
    Windows writes flags and status codes) or a decimal float. Booleans are not numbers. NaN, infinities,
    integers wider than 64 bits and floats that overflow are None: they are kept as text, never compared.
    """
    kind = type(value)
    if kind is int:
        return value if INT_MIN <= value <= INT_MAX else None
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str:
        return _parse_text(value)
    if kind is bool or value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return parse_number(_base(value))
    return None


def _parse_text(value: str) -> int | float | None:
    text = value.strip()
    if not text or len(text) > MAX_NUMBER_TEXT:
        return None
    if _DECIMAL.fullmatch(text):
        number = int(text)
    elif _HEX.fullmatch(text):
        number = int(text, 16)
    elif _FLOAT.fullmatch(text):
        real = float(text)
        return real if math.isfinite(real) else None
    else:
        return None
    return number if INT_MIN <= number <= INT_MAX else None


def numbers(value: Any) -> list[float]:
    """The numbers a value is compared as (one per element of a list), as floats: both back ends compare
    doubles, so a number wider than 53 bits compares the same way in Python and in SQL."""
    if isinstance(value, list | tuple):
        return [float(n) for item in value if (n := parse_number(item)) is not None]
    n = parse_number(value)
    return [] if n is None else [float(n)]


def keyword_values(fields: dict[str, Any]) -> list[str]:
    """What a Sigma keyword searches: the text of every value of the event, list elements one by one."""
    out: list[str] = []
    for value in fields.values():
        if type(value) is str:
            out.append(value)
        elif value is not None:
            out.extend(elements(value))
    return out


def keyword_text(fields: dict[str, Any]) -> str:
    """`keyword_values` joined by NUL, built faster (keyword rules meet every event). A literal without NUL
    found in this text is found in one value."""
    return "\0".join([v if type(v) is str else _joined(v) for v in fields.values() if v is not None])


def _joined(value: Any) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, list | tuple):
        return "\0".join(elements(value))
    return to_text(value) or ""


def lookup(fields: dict[str, Any], keys: Iterable[str]) -> Any:
    """The value of a field spelt several ways (`Payload`/`payload`): the first present one in `keys`
    order, else the first that is not None (an empty value), else None. Decided per event, so the answer
    never depends on which other events share a batch."""
    fallback = None
    for key in keys:
        value = fields.get(key)
        if value is None:
            continue
        if present(value):
            return value
        if fallback is None:
            fallback = value
    return fallback

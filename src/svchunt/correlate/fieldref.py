"""How a correlation reads a group-by (or condition) value from an event.

A plain field name reads that field. svchunt adds two modifiers, written Sigma-style after `|`, for
aliases whose value is embedded in another field:

* `Field|lower` — compare case-insensitively (Windows names are case-insensitive);
* `Field|re2:PATTERN` — the first capture group of an RE2 search (no match -> value missing).

`re2:` must be the last modifier because the pattern itself may contain `|`.
Example: `TargetObject|lower|re2:\\services\\([^\\]+)\\imagepath$`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from svchunt.values import to_text


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


@dataclass(frozen=True, slots=True)
class FieldRef:
    field: str
    lower: bool = False
    pattern: str | None = None

    @classmethod
    def parse(cls, spec: str) -> FieldRef:
        if not isinstance(spec, str) or not spec:
            raise ValueError(f"field reference {spec!r} must be a non-empty string")
        head, sep, rest = spec.partition("|")
        lower = False
        pattern = None
        while sep:
            if rest.startswith("re2:"):
                pattern = rest[4:]
                try:
                    compiled = _compiled(pattern)
                except Exception as exc:  # re2.error; keep message
                    raise ValueError(f"bad re2 pattern {pattern!r}: {exc}") from exc
                if compiled.groups < 1:
                    raise ValueError(f"re2 pattern {pattern!r} needs one capture group")
                break
            modifier, sep, rest = rest.partition("|")
            if modifier == "lower":
                lower = True
            else:
                raise ValueError(f"unknown field modifier {modifier!r} in {spec!r} (known: lower, re2:)")
        return cls(head, lower, pattern)

    def read(self, fields: dict[str, Any]) -> Any:
        value = fields.get(self.field)
        if value is None:
            return None
        if self.lower and isinstance(value, str):
            value = value.lower()
        if self.pattern is not None:
            found = _compiled(self.pattern).search(to_text(value) or "")  # the text every back end matches
            if found is None:
                return None
            value = found.group(1)
        return value

    def __str__(self) -> str:
        text = self.field + ("|lower" if self.lower else "")
        return text + (f"|re2:{self.pattern}" if self.pattern is not None else "")

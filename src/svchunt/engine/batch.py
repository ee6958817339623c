"""Columnar view of a group of events (one channel + EventID): columns are built once, on demand.

A column is a list aligned with the events: the raw value or None. The folded column holds the
lower-cased text form, computed once per value however many rules read it.
"""

from __future__ import annotations

from typing import Any

from svchunt.model import Event
from svchunt.values import fold, keyword_text, lookup

__all__ = ["ColumnBatch", "fold"]


class ColumnBatch:
    __slots__ = ("events", "rows", "_raw", "_folded", "_lists", "_names", "_fulltext", "_fulltext_folded")

    def __init__(self, events: list[Event]):
        self.events = events
        self.rows = list(range(len(events)))
        self._raw: dict[str, list[Any]] = {}
        self._folded: dict[str, list[Any]] = {}
        self._lists: dict[str, bool] = {}
        self._names: dict[str, list[str]] | None = None
        self._fulltext: list[str | None] | None = None
        self._fulltext_folded: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.events)

    def _variants(self, name: str) -> list[str]:
        """Event keys that equal `name` ignoring case; exact name first, then sorted (deterministic)."""
        if self._names is None:
            keys: set[str] = set()
            for e in self.events:
                keys.update(e.fields)
            names: dict[str, list[str]] = {}
            for k in sorted(keys):
                names.setdefault(k.lower(), []).append(k)
            self._names = names
        found = self._names.get(name.lower(), [])
        return sorted(found, key=lambda k: (k != name, k))

    def raw(self, name: str) -> list[Any]:
        col = self._raw.get(name)
        if col is None:
            variants = self._variants(name)
            if not variants:
                col = [None] * len(self.events)
            elif len(variants) == 1:
                key = variants[0]
                col = [e.fields.get(key) for e in self.events]
            else:
                col = [lookup(e.fields, variants) for e in self.events]
            self._raw[name] = col
        return col

    def folded(self, name: str) -> list[Any]:
        col = self._folded.get(name)
        if col is None:
            raw = self.raw(name)
            col = [v.lower() if type(v) is str else fold(v) for v in raw]
            self._folded[name] = col
            self._lists[name] = any(type(v) is tuple for v in col)
        return col

    def fulltext(self, r: int) -> str:
        """Every value of row `r`'s event as text (`values.keyword_values`), joined by NUL: what keyword rules
        search. A keyword without NUL cannot match across two values, so a search of this text is a
        search of each value. Built per row, on demand: most rows never need it (`Prefilter.scan`)."""
        texts = self._fulltext
        if texts is None:
            texts = self._fulltext = [None] * len(self.events)
        text = texts[r]
        if text is None:
            text = texts[r] = keyword_text(self.events[r].fields)
        return text

    def fulltext_folded(self, r: int) -> str:
        """`fulltext` case-folded value by value (as `fold`, the same folding the SQL table is built with)."""
        texts = self._fulltext_folded
        if texts is None:
            texts = self._fulltext_folded = [None] * len(self.events)
        text = texts[r]
        if text is None:
            # lower() of the NUL-joined text is the join of each value's lower(): NUL is neither cased nor
            # case-ignorable, so no context-dependent mapping (final sigma) reaches across it
            text = texts[r] = self.fulltext(r).lower()
        return text

    def has_lists(self, name: str) -> bool:
        self.folded(name)
        return self._lists[name]

"""Common part of every correlation: route inputs into groups, keep per-group buffers in time order."""

from __future__ import annotations

import bisect
from collections import Counter
from fractions import Fraction
from typing import Any

from svchunt.correlate.occurrence import Hit, Occ
from svchunt.correlate.rule import CorrelationRule
from svchunt.model import Event
from svchunt.values import parse_number


def _order_key(occ: Occ) -> tuple:
    return occ.order


class Buffer:
    """Pending occurrences of one group, sorted; `items[start:end]` is the window being evaluated."""

    __slots__ = ("items", "start", "end", "index", "agg")

    def __init__(self) -> None:
        self.items: list[Occ] = []
        self.start = 0
        self.end = 0
        self.index: dict[tuple, Occ] = {}
        self.agg: Any = None

    def insert(self, occ: Occ) -> None:
        known = self.index.get(occ.ident)
        if known is not None:
            # the same event matched several referenced rules: one occurrence, several rules
            known.rules |= occ.rules
            if known.value is None:
                known.value = occ.value
            return
        self.index[occ.ident] = occ
        bisect.insort(self.items, occ, lo=self.end, key=_order_key)

    def drop_front(self, upto: int) -> None:
        for occ in self.items[self.start : upto]:
            self.index.pop(occ.ident, None)
        self.start = upto
        if self.start > 256 and self.start * 2 > len(self.items):
            del self.items[: self.start]
            self.end -= self.start
            self.start = 0

    @property
    def pending(self) -> bool:
        return self.start < len(self.items)

    def first_ts(self) -> int | None:
        return self.items[self.start].ts if self.start < len(self.items) else None


class Node:
    """One correlation rule. Subclasses decide when a group's buffered occurrences fire."""

    def __init__(self, rule: CorrelationRule, skipped: Counter[str]) -> None:
        self.rule = rule
        self.skipped = skipped
        self.groups: dict[tuple, Buffer] = {}
        self.horizon = -(2**62)  # input complete strictly before this time
        self._refs = {
            rule_id: tuple(zip(rule.group_by, rule.group_refs(rule_id), strict=True)) for rule_id in rule.inputs
        }

    # -- input -----------------------------------------------------------------
    def ingest(self, rule_id: str, ts: int, order: tuple, ident: tuple, events: tuple[Event, ...],
               fields: dict[str, Any]) -> None:
        group = self._group(rule_id, fields)
        if group is None:
            return
        value = None
        if self.needs_value(rule_id):
            value = self._value(rule_id, fields)
            if value is None:
                return
        self._buffer(group).insert(Occ(ts, order, ident, {rule_id}, events, value))

    def ingest_hit(self, hit: Hit) -> None:
        order = (hit.ts, "", -1, -1, -1, hit.alert.alert_id)
        self.ingest(hit.rule_id, hit.ts, order, ("hit", hit.alert.alert_id), hit.events, hit.alert.fields)

    def needs_value(self, rule_id: str) -> bool:
        return False

    def _buffer(self, group: tuple) -> Buffer:
        buf = self.groups.get(group)
        if buf is None:
            buf = self.groups[group] = Buffer()
        return buf

    def _group(self, rule_id: str, fields: dict[str, Any]) -> tuple | None:
        values = []
        for name, ref in self._refs[rule_id]:
            value = ref.read(fields)
            if value is None:
                self._skip(f"missing group-by field {name!r} (read as {ref}) in events of rule {rule_id}")
                return None
            values.append(tuple(value) if isinstance(value, list) else value)
        return tuple(values)

    def _value(self, rule_id: str, fields: dict[str, Any]) -> Any:
        assert self.rule.condition is not None
        refs = self.rule.value_refs(rule_id)
        values = []
        for ref in refs:
            value = ref.read(fields)
            if value is None:
                self._skip(f"missing condition field {ref} in events of rule {rule_id}")
                return None
            values.append(value)
        if self.rule.type == "value_count":
            return values[0] if len(values) == 1 else tuple(values)
        number = _number(values[0])
        if number is None:
            self._skip(f"condition field {refs[0]} is not a number in events of rule {rule_id}")
        return number

    def _skip(self, reason: str) -> None:
        self.skipped[f"correlation {self.rule.info.rule_id}: {reason}"] += 1

    # -- output ----------------------------------------------------------------
    def advance(self, horizon: int) -> list[Hit]:
        """Decide everything that can be decided with input complete before `horizon`."""
        self.horizon = max(self.horizon, horizon)
        hits: list[Hit] = []
        # group order does not matter: alerts are sorted, and chained inputs are buffered in time order
        for group, buf in list(self.groups.items()):
            self._advance_group(group, buf, hits)
            if not buf.pending:
                del self.groups[group]
        return hits

    def _advance_group(self, group: tuple, buf: Buffer, hits: list[Hit]) -> None:
        raise NotImplementedError

    def output_horizon(self) -> int:
        """Hits this node may still produce will have a time >= this value."""
        pending = [ts for buf in self.groups.values() if (ts := buf.first_ts()) is not None]
        return min([self.horizon, *pending])

    # -- state -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "groups": [
                {"group": list(group), "items": [occ.to_json() for occ in buf.items[buf.start :]]}
                for group, buf in self.groups.items()
            ],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        self.horizon = data["horizon"]
        for entry in data["groups"]:
            buf = self._buffer(tuple(tuple(v) if isinstance(v, list) else v for v in entry["group"]))
            for item in entry["items"]:
                occ = Occ.from_json(item)
                buf.items.append(occ)
                buf.index[occ.ident] = occ


def _number(value: Any) -> Fraction | None:
    # One number parser for every stage (`values.parse_number`); summed exactly, so the order of events
    # cannot change a value_sum/avg decision by float rounding.
    number = parse_number(value)
    if number is None:
        return None
    return Fraction(number) if type(number) is int else Fraction(repr(number))

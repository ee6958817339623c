"""Sliding windows for event_count, value_count, value_sum, value_avg, temporal and temporal_ordered.

Semantics (docs/correlation.md): per group, a window is anchored at the earliest pending timestamp `a` and holds
every pending occurrence with a <= ts <= a + timespan, so it never spans more than `timespan`. It is evaluated
once it is complete (input known up to a + timespan). If the condition holds, one alert carries all of the
window's occurrences and the next window starts after them; otherwise the window slides to the next
distinct timestamp. temporal_ordered only anchors on occurrences of its first rule.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

from svchunt.correlate.alerts import make_hit
from svchunt.correlate.node import Buffer, Node
from svchunt.correlate.occurrence import Hit, Occ
from svchunt.correlate.rule import VALUE_TYPES


class _Count:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, occ: Occ) -> None:
        self.n += 1

    def remove(self, occ: Occ) -> None:
        self.n -= 1

    def metric(self) -> int:
        return self.n

    def report(self) -> dict[str, Any]:
        return {"count": self.n}


class _Distinct(_Count):
    __slots__ = ("values",)

    def __init__(self) -> None:
        super().__init__()
        self.values: Counter[Any] = Counter()

    def add(self, occ: Occ) -> None:
        self.n += 1
        self.values[occ.value] += 1

    def remove(self, occ: Occ) -> None:
        self.n -= 1
        self.values[occ.value] -= 1
        if not self.values[occ.value]:
            del self.values[occ.value]

    def metric(self) -> int:
        return len(self.values)

    def report(self) -> dict[str, Any]:
        shown = sorted(self.values, key=repr)
        return {"count": self.n, "value_count": len(self.values), "values": [list(v) if isinstance(v, tuple)
                                                                             else v for v in shown]}


class _Sum(_Count):
    __slots__ = ("total", "average")

    def __init__(self, average: bool) -> None:
        super().__init__()
        self.total = Fraction(0)  # exact, so add/remove in any order never drifts
        self.average = average

    def add(self, occ: Occ) -> None:
        self.n += 1
        self.total += occ.value

    def remove(self, occ: Occ) -> None:
        self.n -= 1
        self.total -= occ.value

    def metric(self) -> Fraction:
        return self.total / self.n if self.average else self.total

    def report(self) -> dict[str, Any]:
        key = "value_avg" if self.average else "value_sum"
        value = self.metric()
        return {"count": self.n, key: int(value) if value.denominator == 1 else float(value)}


class _Rules(_Count):
    __slots__ = ("rules",)

    def __init__(self) -> None:
        super().__init__()
        self.rules: Counter[str] = Counter()

    def add(self, occ: Occ) -> None:
        self.n += 1
        self.rules.update(occ.rules)

    def remove(self, occ: Occ) -> None:
        self.n -= 1
        self.rules.subtract(occ.rules)
        for rule in occ.rules:
            if not self.rules[rule]:
                del self.rules[rule]

    def metric(self) -> int:
        return len(self.rules)

    def report(self) -> dict[str, Any]:
        return {"count": self.n, "rule_count": len(self.rules)}


class WindowNode(Node):
    def needs_value(self, rule_id: str) -> bool:
        return self.rule.type in VALUE_TYPES

    def _new_agg(self) -> _Count:
        kind = self.rule.type
        if kind == "value_count":
            return _Distinct()
        if kind in ("value_sum", "value_avg"):
            return _Sum(average=kind == "value_avg")
        if kind in ("temporal", "temporal_ordered"):
            return _Rules()
        return _Count()

    def _holds(self, agg: _Count, window: list[Occ]) -> bool:
        rule = self.rule
        if rule.type == "temporal_ordered":
            matched = _ordered_prefix(rule.rule_ids, window)
            if rule.condition is None:
                return matched == len(rule.rule_ids)
            return rule.condition.holds(matched)
        if rule.condition is None:  # temporal without condition: every referenced rule must appear
            return agg.metric() == len(rule.rule_ids)
        return rule.condition.holds(agg.metric())

    def _advance_group(self, group: tuple, buf: Buffer, hits: list[Hit]) -> None:
        span = self.rule.timespan_us
        ordered = self.rule.type == "temporal_ordered"
        first_rule = self.rule.rule_ids[0]
        if buf.agg is None:
            buf.agg = self._new_agg()
            buf.end = buf.start
        items = buf.items
        while buf.start < len(items):
            anchor = items[buf.start].ts
            if ordered and not any(
                first_rule in occ.rules for occ in _same_ts(items, buf.start, anchor)
            ):
                # no first-rule occurrence at this time: it can anchor no window (all its input is known)
                if anchor >= self.horizon:
                    return
                self._slide(buf, anchor)
                continue
            if anchor + span >= self.horizon:
                return  # window not complete yet
            limit = anchor + span
            while buf.end < len(items) and items[buf.end].ts <= limit:
                buf.agg.add(items[buf.end])
                buf.end += 1
            window = items[buf.start : buf.end]
            if self._holds(buf.agg, window):
                hits.append(make_hit(self.rule, window, group, buf.agg.report()))
                buf.agg = self._new_agg()
                buf.drop_front(buf.end)
            else:
                self._slide(buf, anchor)

    def _slide(self, buf: Buffer, anchor: int) -> None:
        stop = buf.start
        while stop < len(buf.items) and buf.items[stop].ts == anchor:
            if stop < buf.end:
                buf.agg.remove(buf.items[stop])
            stop += 1
        if buf.end < stop:
            buf.end = stop
        buf.drop_front(stop)


def _same_ts(items: list[Occ], start: int, ts: int):
    index = start
    while index < len(items) and items[index].ts == ts:
        yield items[index]
        index += 1


def _ordered_prefix(rule_ids: tuple[str, ...], window: list[Occ]) -> int:
    """How many of `rule_ids` occur in that order with strictly increasing timestamps (greedy = optimal)."""
    matched = 0
    last = None
    for occ in window:
        if matched == len(rule_ids):
            break
        if rule_ids[matched] in occ.rules and (last is None or occ.ts > last):
            last = occ.ts
            matched += 1
    return matched

"""A parsed correlation rule: what the correlator runs."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from svchunt.correlate.fieldref import FieldRef
from svchunt.model import RuleInfo

WINDOW_TYPES = ("event_count", "value_count", "value_sum", "value_avg", "temporal", "temporal_ordered")
TYPES = WINDOW_TYPES + ("absence",)
VALUE_TYPES = ("value_count", "value_sum", "value_avg")

_OPERATORS: dict[str, Callable[[object, object], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Condition:
    """All bounds must hold (the spec's AND of criteria, e.g. `gt: 100` + `lte: 200`)."""

    bounds: tuple[tuple[str, Fraction], ...]
    fields: tuple[str, ...] = ()  # `field:` of value_* correlations (several = AND: tuples of values)

    def holds(self, value: int | Fraction) -> bool:
        return all(_OPERATORS[op](value, limit) for op, limit in self.bounds)

    def describe(self) -> str:
        return " and ".join(f"{op} {limit}" for op, limit in self.bounds)

    @classmethod
    def parse(cls, raw: object) -> Condition:
        if not isinstance(raw, dict) or not raw:
            raise ValueError("condition must be a non-empty mapping such as {gte: 10}")
        bounds: list[tuple[str, Fraction]] = []
        fields: tuple[str, ...] = ()
        for key, value in raw.items():
            if key == "field":
                if isinstance(value, str):
                    fields = (value,)
                elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                    fields = tuple(value)
                else:
                    raise ValueError("condition field must be a field name or a list of them")
            elif key in _OPERATORS:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"condition {key}: {value!r} is not a number")
                bounds.append((key, Fraction(str(value))))
            else:
                raise ValueError(f"unknown condition operator {key!r} (gt, gte, lt, lte, eq, neq, field)")
        if not bounds:
            raise ValueError("condition has no comparison (gt, gte, lt, lte, eq, neq)")
        return cls(tuple(bounds), fields)


@dataclass(slots=True)
class CorrelationRule:
    info: RuleInfo
    type: str
    rule_ids: tuple[str, ...]  # resolved ids of the referenced rules (detections or correlations), in order
    group_by: tuple[str, ...]
    timespan_us: int
    timespan: str
    condition: Condition | None  # None for temporal*: all referenced rules must appear
    aliases: dict[str, dict[str, FieldRef]] = field(default_factory=dict)  # alias -> rule id -> field
    generate: bool = False
    absent_ids: tuple[str, ...] = ()  # absence extension: rules that must NOT appear within ±timespan
    path: str = ""

    def group_refs(self, rule_id: str) -> tuple[FieldRef, ...]:
        """How to read each group-by value from an event matched by `rule_id`."""
        return tuple(self.aliases.get(name, {}).get(rule_id) or FieldRef(name) for name in self.group_by)

    def value_refs(self, rule_id: str) -> tuple[FieldRef, ...]:
        assert self.condition is not None
        return tuple(self.aliases.get(name, {}).get(rule_id) or FieldRef(name) for name in self.condition.fields)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.rule_ids + self.absent_ids

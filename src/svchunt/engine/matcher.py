"""Route events to the rules that can match them, evaluate per (channel, EventID) group, emit signals."""

from __future__ import annotations

from collections.abc import Iterable

from svchunt.engine.batch import ColumnBatch
from svchunt.engine.prefilter import Need, Prefilter, necessary_literals
from svchunt.engine.pyeval import Select, compile_condition
from svchunt.model import Event, RuleInfo, Signal
from svchunt.rules.loader import LoadedRule

RouteKey = tuple[str | None, int | None]


class Matcher:
    """Compiled rules plus a routing table.

    A rule with a precise route only meets its channel/EventID; a rule without one (no service and no
    EventID condition) meets every event, but it never switches routing off for the other rules.
    """

    def __init__(self, rules: Iterable[LoadedRule]):
        self.rules = list(rules)
        self.infos: list[RuleInfo] = [r.info for r in self.rules]
        self.selects: list[Select] = [compile_condition(r.compiled.condition) for r in self.rules]
        self._table: dict[RouteKey, list[int]] = {}
        for i, rule in enumerate(self.rules):
            for route in rule.compiled.routes:
                channel = route.channel.lower() if route.channel else None
                for eid in route.event_ids if route.event_ids is not None else (None,):
                    self._table.setdefault((channel, eid), []).append(i)
        self._plans: dict[RouteKey, tuple[tuple[int, ...], Prefilter | None]] = {}
        self.needs: list[Need | None] = [necessary_literals(r.compiled.condition) for r in self.rules]

    def plan(self, key: RouteKey) -> tuple[tuple[int, ...], Prefilter | None]:
        """The rules a (channel, EventID) group meets, and the literal prefilter over them."""
        plan = self._plans.get(key)
        if plan is None:
            channel, eid = key
            found: set[int] = set()
            for k in {(channel, eid), (channel, None), (None, eid), (None, None)}:
                found.update(self._table.get(k, ()))
            rules = tuple(sorted(found))
            needs = {i: n for i in rules if (n := self.needs[i]) is not None}
            plan = (rules, Prefilter.build(needs) if needs else None)
            self._plans[key] = plan
        return plan

    def match(self, events: list[Event]) -> list[Signal]:
        infos = self.infos
        return [Signal(infos[i], event) for i, event in self.match_indexed(events)]

    def match_indexed(self, events: list[Event]) -> list[tuple[int, Event]]:
        """(rule index, event) for every match; cheap to send between processes."""
        groups: dict[RouteKey, list[Event]] = {}
        for event in events:
            fields = event.fields
            channel = fields.get("Channel")
            eid = fields.get("EventID")
            key = (channel.lower() if type(channel) is str else None, eid if type(eid) is int else None)
            group = groups.get(key)
            if group is None:
                groups[key] = [event]
            else:
                group.append(event)
        out: list[tuple[int, Event]] = []
        for key, group_events in groups.items():
            plan, prefilter = self.plan(key)
            if not plan:
                continue
            batch = ColumnBatch(group_events)
            all_rows = batch.rows
            hits = prefilter.scan(batch) if prefilter is not None else {}
            for i in plan:
                if prefilter is not None and i in prefilter.rule_literals:
                    candidates = prefilter.candidates(i, hits)
                    if not candidates:
                        continue
                else:
                    candidates = all_rows
                rows = self.selects[i](batch, candidates)
                if rows:
                    out.extend((i, group_events[r]) for r in rows)
        return out

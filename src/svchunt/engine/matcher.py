"""Route events to the rules that can match them, evaluate per (channel, EventID) group, emit signals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from svchunt.engine.batch import ColumnBatch
from svchunt.engine.prefilter import KEEP_ALL, SKIP_ANY, Need, Prefilter, RawPrefilter, necessary_clauses
from svchunt.engine.pyeval import Select, compile_condition
from svchunt.model import Event, RecordSkip, RuleInfo, Signal
from svchunt.normalise.derived import GATES, WRITES, written_fields
from svchunt.rules.loader import LoadedRule

RouteKey = tuple[str | None, int | None]

# Fields a normalised event gets from the record's System part (normalise.shapes._finish), whatever its
# EventData holds: a raw record's EventData cannot stand in for them.
_NOT_RAW = frozenset({"eventid", "channel", "provider_name", "computer", "eventrecordid"})
MAX_KEYS = 65536  # (channel, EventID) answers remembered per key


@dataclass(frozen=True, slots=True)
class Plan:
    """What one (channel, EventID) group meets: its rules, and the prefilter over those that have literals."""

    rules: tuple[int, ...]
    prefilter: Prefilter | None
    unfiltered: frozenset[int]  # rules without a usable literal: always evaluated
    unfiltered_sorted: tuple[int, ...]


def route_key(fields: Mapping[str, Any]) -> RouteKey:
    """An event's (lower-cased channel, EventID) group, None where the field has another type."""
    channel = fields.get("Channel")
    eid = fields.get("EventID")
    return (channel.lower() if type(channel) is str else None, eid if type(eid) is int else None)


def _table_keys(key: RouteKey) -> set[RouteKey]:
    """The routing-table entries a (channel, EventID) group meets: its own, and the rules without a channel,
    without an EventID, or without either."""
    channel, eid = key
    return {(channel, eid), (channel, None), (None, eid), (None, None)}


class Matcher:
    """Compiled rules plus a routing table.

    A rule with a precise route only meets its channel/EventID; a rule without one (no service and no
    EventID condition) meets every event, but it never switches routing off for the other rules.
    """

    def __init__(self, rules: Iterable[LoadedRule]):
        self.rules = list(rules)
        self.infos: list[RuleInfo] = [r.info for r in self.rules]
        # Compiled on first use: a run only pays for the rules its events can reach.
        self._selects: list[Select | None] = [None] * len(self.rules)
        self._table: dict[RouteKey, list[int]] = {}
        for i, rule in enumerate(self.rules):
            for route in rule.compiled.routes:
                channel = route.channel.lower() if route.channel else None
                for eid in route.event_ids if route.event_ids is not None else (None,):
                    self._table.setdefault((channel, eid), []).append(i)
        # Keys the table names: any other channel or EventID meets the same rules as None does. Plans and
        # record tests are made per canonical key (`_canonical`), so that an input with endless distinct
        # channels or EventIDs cannot make endless plans; the per-key caches are bounded (MAX_KEYS).
        self._channels = {channel for channel, _ in self._table if channel is not None}
        self._event_ids = {eid for _, eid in self._table if eid is not None}
        self._plans: dict[RouteKey, Plan] = {}
        self._routed: dict[RouteKey, bool] = {}
        self._filters: dict[RouteKey, RecordSkip | None] = {}
        self._canonical_filters: dict[RouteKey, RecordSkip | None] = {}
        self._needs: list[tuple[Need, ...] | None] = [None] * len(self.rules)  # None: not computed yet

    def needs(self, i: int) -> tuple[Need, ...]:
        """The rule's clauses (`prefilter.necessary_clauses`): () for a rule evaluated on every event."""
        found = self._needs[i]
        if found is None:
            found = self._needs[i] = necessary_clauses(self.rules[i].compiled.condition)
        return found

    def select(self, i: int) -> Select:
        select = self._selects[i]
        if select is None:
            select = self._selects[i] = compile_condition(self.rules[i].compiled.condition)
        return select

    def _canonical(self, key: RouteKey) -> RouteKey:
        """The key that meets the same rules and has the same derived fields: a channel no rule names is
        None, and so is an EventID that no rule names and that derivation does not handle."""
        channel, eid = key
        if channel is not None and channel not in self._channels:
            channel = None
        if eid is not None and eid not in self._event_ids and eid not in WRITES:
            eid = None
        return (channel, eid)

    def routed(self, key: RouteKey) -> bool:
        """Whether any rule meets events of this (lower-cased channel, EventID): the routing of `plan`."""
        found = self._routed.get(key)
        if found is None:
            if len(self._routed) >= MAX_KEYS:
                self._routed.clear()
            found = self._routed[key] = any(k in self._table for k in _table_keys(key))
        return found

    def record_filter(self, key: RouteKey) -> RecordSkip | None:
        """How a reader may tell that no rule can match a record (a `RouteTest`): for a group no rule meets,
        every record; for a group whose rules all have needs, the records where none holds, judged on the
        raw EventData where normalising copies the needed fields unchanged, else on the normalised fields.
        None where only matching can say (a rule without a need)."""
        try:
            return self._filters[key]
        except KeyError:
            pass
        canonical = self._canonical(key)
        try:
            found = self._canonical_filters[canonical]
        except KeyError:
            found = self._canonical_filters[canonical] = self._record_filter(canonical)
        if len(self._filters) >= MAX_KEYS:
            self._filters.clear()
        self._filters[key] = found
        return found

    def _record_filter(self, key: RouteKey) -> RecordSkip | None:
        if not self.routed(key):
            return SKIP_ANY
        plan = self.plan(key)
        if plan.prefilter is None:
            return None
        if plan.unfiltered:
            # no record can be skipped, but the reader's text of each spares the keyword scan (`Event.text`)
            return KEEP_ALL if plan.prefilter.json is not None else None
        # a record is asked for its rules' first clauses only: one literal found ends the test
        written = written_fields(key[1])
        prefilter = Prefilter.build({i: self.needs(i)[:1] for i in plan.rules}, written)
        names = {name.lower() for name in prefilter.fields}
        derived = names & {name.lower() for name in written}
        gate = GATES.get(key[1]) if derived else None  # type: ignore[arg-type]
        if names & _NOT_RAW or (derived and gate is None):
            # a need on a header or derived field: only the normalised fields can say
            return RawPrefilter(prefilter, normalised=True)
        return RawPrefilter(prefilter, gate=gate, gated=frozenset(derived))

    def plan(self, key: RouteKey) -> Plan:
        """The rules a (channel, EventID) group meets, and the literal prefilter over them."""
        plan = self._plans.get(key)
        if plan is None:
            key = self._canonical(key)
            plan = self._plans.get(key)
        if plan is None:
            found: set[int] = set()
            for k in _table_keys(key):
                found.update(self._table.get(k, ()))
            rules = tuple(sorted(found))
            needs = {i: n for i in rules if (n := self.needs(i))}
            unfiltered = frozenset(i for i in rules if i not in needs)
            prefilter = Prefilter.build(needs, written_fields(key[1])) if needs else None
            plan = Plan(rules, prefilter, unfiltered, tuple(sorted(unfiltered)))
            self._plans[key] = plan
        return plan

    def match(self, events: list[Event]) -> list[Signal]:
        infos = self.infos
        return [Signal(infos[i], event) for i, event in self.match_indexed(events)]

    def match_indexed(self, events: list[Event]) -> list[tuple[int, Event]]:
        """(rule index, event) for every match; cheap to send between processes."""
        groups: dict[RouteKey, list[Event]] = {}
        for event in events:
            key = route_key(event.fields)
            group = groups.get(key)
            if group is None:
                groups[key] = [event]
            else:
                group.append(event)
        out: list[tuple[int, Event]] = []
        for key, group_events in groups.items():
            plan = self.plan(key)
            if not plan.rules:
                continue
            batch = ColumnBatch(group_events)
            all_rows = batch.rows
            prefilter = plan.prefilter
            if prefilter is None:
                todo: Iterable[int] = plan.rules
                hits: dict[int, list[int]] = {}
            else:
                hits = prefilter.scan(batch)
                todo = sorted(plan.unfiltered.union(prefilter.active_rules(hits))) if hits else plan.unfiltered_sorted
            for i in todo:
                if prefilter is not None and i in prefilter.rule_clauses:
                    candidates = prefilter.candidates(i, hits)
                    if not candidates:
                        continue
                else:
                    candidates = all_rows
                select = self._selects[i] or self.select(i)
                rows = select(batch, candidates)
                if rows:
                    out.extend((i, group_events[r]) for r in rows)
        return out

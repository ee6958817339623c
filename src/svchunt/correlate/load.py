"""Parse Sigma correlation documents (spec v2.1.0) plus svchunt's `absence` extension.

Every problem becomes a `Refusal` naming the file and the reason; the other rules still load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from svchunt.correlate.fieldref import FieldRef
from svchunt.correlate.rule import TYPES, VALUE_TYPES, Condition, CorrelationRule
from svchunt.correlate.timeparse import parse_timespan
from svchunt.model import LEVELS, Refusal, RuleInfo, item_fields

_UNSUPPORTED = {
    "value_percentile": "value_percentile is not supported: the spec leaves its semantics (percentile of what "
    "population, compared to which value) undefined",
}


@dataclass(slots=True)
class _Raw:
    path: str
    doc: dict[str, Any]
    info: RuleInfo


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    raise ValueError(f"expected a string or a list, got {type(value).__name__}")


def _rule_info(path: str, doc: dict[str, Any]) -> RuleInfo:
    title = doc.get("title")
    if not isinstance(title, str) or not title:
        raise ValueError("correlation rule has no title")
    name = doc.get("name")
    rule_id = doc.get("id") or name
    if not rule_id:
        # no id nor name: still needs a stable identity for alert ids
        rule_id = "correlation-" + hashlib.sha256(f"{path}\0{title}".encode()).hexdigest()[:16]
    level = doc.get("level", "medium")
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    return RuleInfo(
        rule_id=str(rule_id),
        title=title,
        level=level,
        tags=_as_tuple(doc.get("tags")),
        **dict(zip(("covers", "claims", "contributes_to"),
                   item_fields(doc.get("covers"), doc.get("claims"), doc.get("contributes_to")), strict=True)),
        name=str(name) if name is not None else None,
        description=str(doc.get("description") or ""),
        falsepositives=_as_tuple(doc.get("falsepositives")),
        path=path,
    )


class _Lookup:
    """Reference (id or name) -> rule id; a name defined twice is ambiguous and refused when used."""

    def __init__(self) -> None:
        self.targets: dict[str, set[str]] = {}

    def add(self, key: str | None, rule_id: str) -> None:
        if key:
            self.targets.setdefault(str(key), set()).add(rule_id)

    def resolve(self, ref: object) -> str:
        if not isinstance(ref, str) or not ref:
            raise ValueError(f"rule reference {ref!r} is not a string")
        found = self.targets.get(ref)
        if not found:
            raise ValueError(f"referenced rule {ref!r} is not loaded (no rule with that id or name)")
        if len(found) > 1:
            raise ValueError(f"reference {ref!r} is ambiguous: {', '.join(sorted(found))}")
        return next(iter(found))


def _parse(raw: _Raw, lookup: _Lookup) -> CorrelationRule:
    corr = raw.doc.get("correlation")
    if not isinstance(corr, dict):
        raise ValueError("`correlation` must be a mapping")
    kind = corr.get("type")
    if kind in _UNSUPPORTED:
        raise ValueError(_UNSUPPORTED[kind])
    if kind not in TYPES:
        raise ValueError(f"unsupported correlation type {kind!r} (supported: {', '.join(TYPES)})")
    refs = corr.get("rules")
    if not isinstance(refs, list) or not refs:
        raise ValueError("`rules` must be a non-empty list of rule ids or names")
    rule_ids = tuple(lookup.resolve(ref) for ref in refs)
    if len(set(rule_ids)) != len(rule_ids):
        raise ValueError("`rules` lists the same rule twice")
    if raw.info.rule_id in rule_ids:
        raise ValueError("correlation references itself")
    timespan = corr.get("timespan")
    timespan_us = parse_timespan(timespan)
    group_by = corr.get("group-by", [])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list) or not all(isinstance(g, str) and g for g in group_by):
        raise ValueError("`group-by` must be a list of field names")
    if len(set(group_by)) != len(group_by):
        raise ValueError("`group-by` lists a field twice")

    condition = None
    if "condition" in corr:
        condition = Condition.parse(corr["condition"])
    if kind in ("event_count",) + VALUE_TYPES and condition is None:
        raise ValueError(f"{kind} requires a `condition`")
    if kind in VALUE_TYPES and condition is not None and not condition.fields:
        raise ValueError(f"{kind} requires `field` in its condition")
    if kind not in VALUE_TYPES and condition is not None and condition.fields:
        raise ValueError(f"`field` in the condition is only meaningful for {', '.join(VALUE_TYPES)}")
    if kind == "absence" and condition is not None:
        raise ValueError("absence takes no condition: it fires when no `absent` rule appears within ±timespan")

    absent_ids: tuple[str, ...] = ()
    if kind == "absence":
        absent = corr.get("absent")
        if not isinstance(absent, list) or not absent:
            raise ValueError("absence requires `absent`: a non-empty list of rule ids or names")
        absent_ids = tuple(lookup.resolve(ref) for ref in absent)
        if set(absent_ids) & set(rule_ids):
            raise ValueError("a rule cannot be both in `rules` and in `absent`")
    elif "absent" in corr:
        raise ValueError("`absent` is only allowed with type: absence")

    aliases: dict[str, dict[str, FieldRef]] = {}
    raw_aliases = corr.get("aliases") or {}
    if not isinstance(raw_aliases, dict):
        raise ValueError("`aliases` must be a mapping alias -> {rule name: field}")
    inputs = set(rule_ids) | set(absent_ids)
    for alias, mapping in raw_aliases.items():
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError(f"alias {alias!r} must map rule names to field names")
        resolved: dict[str, FieldRef] = {}
        for ref, spec in mapping.items():
            target = lookup.resolve(ref)
            if target not in inputs:
                raise ValueError(f"alias {alias!r} names rule {ref!r}, which this correlation does not use")
            resolved[target] = FieldRef.parse(spec)
        aliases[str(alias)] = resolved

    generate = corr.get("generate", raw.doc.get("generate", False))
    if not isinstance(generate, bool):
        raise ValueError("`generate` must be true or false")
    return CorrelationRule(
        info=raw.info,
        type=kind,
        rule_ids=rule_ids,
        group_by=tuple(group_by),
        timespan_us=timespan_us,
        timespan=timespan,
        condition=condition,
        aliases=aliases,
        generate=generate,
        absent_ids=absent_ids,
        path=raw.path,
    )


def load_correlations(
    docs: list[tuple[str, dict]], base_rules: list[RuleInfo]
) -> tuple[list[CorrelationRule], list[Refusal]]:
    """Parse, resolve references (by id or name, detections or other correlations) and order them so that
    a correlation comes after every correlation it references."""
    refusals: list[Refusal] = []
    raws: list[_Raw] = []
    for path, doc in docs:
        try:
            raws.append(_Raw(path, doc, _rule_info(path, doc)))
        except ValueError as exc:
            refusals.append(Refusal(path, _str_or_none(doc.get("id")), _str_or_none(doc.get("title")), str(exc)))

    lookup = _Lookup()
    for info in base_rules:
        lookup.add(info.rule_id, info.rule_id)
        lookup.add(info.name, info.rule_id)
    seen_ids: set[str] = {info.rule_id for info in base_rules}
    unique: list[_Raw] = []
    for raw in raws:
        if raw.info.rule_id in seen_ids:
            refusals.append(_refuse(raw, f"duplicate rule id {raw.info.rule_id!r}"))
            continue
        seen_ids.add(raw.info.rule_id)
        lookup.add(raw.info.rule_id, raw.info.rule_id)
        lookup.add(raw.info.name, raw.info.rule_id)
        unique.append(raw)

    parsed: dict[str, CorrelationRule] = {}
    failed: set[str] = set()
    for raw in unique:
        try:
            parsed[raw.info.rule_id] = _parse(raw, lookup)
        except ValueError as exc:
            failed.add(raw.info.rule_id)
            refusals.append(_refuse(raw, str(exc)))

    ordered, more = _order(parsed, failed)
    return ordered, refusals + more


def _order(
    parsed: dict[str, CorrelationRule], failed: set[str]
) -> tuple[list[CorrelationRule], list[Refusal]]:
    """Topological order; correlations referencing refused ones or in a cycle are refused as well."""
    all_corr_ids = set(parsed)
    refusals: list[Refusal] = []
    ordered: list[CorrelationRule] = []
    done: set[str] = set()
    refused: set[str] = set(failed)
    state: dict[str, str] = {}

    def visit(rule_id: str) -> bool:
        if rule_id in done:
            return True
        if rule_id in refused:
            return False
        rule = parsed.get(rule_id)
        if rule is None:
            return False
        if state.get(rule_id) == "visiting":
            return False
        state[rule_id] = "visiting"
        for dep in rule.inputs:
            if dep in all_corr_ids or dep in refused:
                if not visit(dep):
                    cycle = state.get(dep) == "visiting"
                    reason = (
                        f"reference cycle through {dep!r}" if cycle else f"referenced correlation {dep!r} was refused"
                    )
                    refusals.append(Refusal(rule.path, rule.info.rule_id, rule.info.title, reason))
                    refused.add(rule_id)
                    state[rule_id] = "refused"
                    return False
        state[rule_id] = "done"
        done.add(rule_id)
        ordered.append(rule)
        return True

    for rule_id in parsed:
        visit(rule_id)
    return ordered, refusals


def _refuse(raw: _Raw, reason: str) -> Refusal:
    return Refusal(raw.path, raw.info.rule_id, raw.info.title, reason)


def _str_or_none(value: object) -> str | None:
    return str(value) if value is not None else None

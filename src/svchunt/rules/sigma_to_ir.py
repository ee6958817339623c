"""pySigma's parsed rule → our IR (`svchunt.rules.ir`), routes and RuleInfo.

Anything the engine cannot run faithfully raises `Unsupported` with a reason; the loader turns that
into a listed refusal, so no rule is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from svchunt.model import RuleInfo, item_fields
from svchunt.rules import ir
from svchunt.rules.logsource import UnsupportedLogsource, routes_for

PlaceholderLookup = Callable[[str], list[str] | None]

_COMPARE_OPS = {
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
}
_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


class Unsupported(ValueError):
    pass


def rule_info(rule: SigmaRule, path: str) -> RuleInfo:
    custom = getattr(rule, "custom_attributes", None) or {}
    covers, claims, contributes_to = item_fields(
        custom.get("covers"), custom.get("claims"), custom.get("contributes_to")
    )
    level = rule.level.name.lower() if rule.level else "medium"
    return RuleInfo(
        rule_id=str(rule.id) if rule.id else f"path:{path}",
        title=rule.title or "",
        level=level,
        tags=tuple(f"{t.namespace}.{t.name}" for t in rule.tags or ()),
        covers=covers,
        claims=claims,
        contributes_to=contributes_to,
        name=getattr(rule, "name", None),
        description=(rule.description or "").strip(),
        falsepositives=tuple(str(f) for f in rule.falsepositives or ()),
        path=path,
    )


def compile_rule(rule: SigmaRule, placeholders: PlaceholderLookup) -> ir.CompiledRule:
    if rule.errors:
        raise Unsupported("; ".join(str(e) for e in rule.errors))
    ls = rule.logsource
    try:
        routes = routes_for(ls.product, ls.category, ls.service)
    except UnsupportedLogsource as exc:
        raise Unsupported(str(exc)) from exc
    conditions = rule.detection.parsed_condition
    if not conditions:
        raise Unsupported("rule has no condition")
    converter = _Converter(placeholders)
    parts = [converter.convert(c.parsed) for c in conditions]
    condition = ir.simplify(ir.Or(tuple(parts)) if len(parts) > 1 else parts[0])
    routes = _narrow_routes(routes, condition)
    return ir.CompiledRule(
        rule_id=str(rule.id) if rule.id else "",
        condition=condition,
        routes=routes,
        fields=frozenset(ir.referenced_fields(condition)),
    )


def _narrow_routes(routes: tuple[ir.Route, ...], condition: ir.Node) -> tuple[ir.Route, ...]:
    """Use EventID / Channel equality that the whole condition requires to route more precisely."""
    conjuncts = condition.children if isinstance(condition, ir.And) else (condition,)
    ids: set[int] | None = None
    channels: set[str] | None = None
    for c in conjuncts:
        found = _required_event_ids(c)
        if found is not None:
            ids = found if ids is None else ids & found
        if isinstance(c, ir.Str) and c.field == "Channel" and c.kind == "eq":
            chans = {v.lower() for v in c.values}
            channels = chans if channels is None else channels & chans
    out = []
    for route in routes:
        if channels is not None and route.channel is not None and route.channel.lower() not in channels:
            continue
        route_channels = [route.channel] if route.channel is not None else sorted(channels or [None])  # type: ignore[list-item]
        for channel in route_channels:
            route_ids = route.event_ids
            if ids is not None:
                route_ids = tuple(sorted(ids if route_ids is None else set(route_ids) & ids))
            out.append(ir.Route(channel, route_ids))
    return tuple(dict.fromkeys(out))


def _required_event_ids(node: ir.Node) -> set[int] | None:
    if isinstance(node, ir.Num) and node.field == "EventID" and node.op == "eq":
        return {int(node.value)}
    if isinstance(node, ir.Str) and node.field == "EventID" and node.kind == "eq":
        try:
            return {int(v) for v in node.values}
        except ValueError:
            return None
    if isinstance(node, ir.Or):
        out: set[int] = set()
        for child in node.children:
            found = _required_event_ids(child)
            if found is None:
                return None
            out |= found
        return out
    if isinstance(node, ir.And):
        # `(EventID: 4738 and not filter) or (EventID: 5136 and ...)`: each branch of the Or is an And whose
        # EventID conjunct is required of the whole branch
        both: set[int] | None = None
        for child in node.children:
            found = _required_event_ids(child)
            if found is not None:
                both = found if both is None else both & found
        return both
    return None


class _Converter:
    def __init__(self, placeholders: PlaceholderLookup):
        self.placeholders = placeholders

    def convert(self, node: object) -> ir.Node:
        if isinstance(node, ConditionAND):
            return ir.And(tuple(self.convert(a) for a in node.args))
        if isinstance(node, ConditionOR):
            return ir.Or(tuple(self.convert(a) for a in node.args))
        if isinstance(node, ConditionNOT):
            return ir.Not(self.convert(node.args[0]))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        raise Unsupported(f"condition element {type(node).__name__} is not supported")

    def field_value(self, fname: str | None, value: object) -> ir.Node:
        if fname is None:
            return self.keyword(value)
        if isinstance(value, SigmaExpansion):
            return ir.Or(tuple(self.field_value(fname, v) for v in value.values))
        if isinstance(value, SigmaNull):
            return ir.IsNull(fname)
        if isinstance(value, SigmaExists):
            node: ir.Node = ir.Exists(fname)
            return node if value.exists else ir.Not(node)
        if isinstance(value, SigmaBool):
            return ir.Str(fname, "eq", ("true" if value.boolean else "false",))
        if isinstance(value, SigmaCompareExpression):
            if value.op not in _COMPARE_OPS:
                raise Unsupported(f"compare operator {value.op.name} is not supported")
            return ir.Num(fname, _COMPARE_OPS[value.op], float(value.number.number))
        if isinstance(value, SigmaTimestampPart):
            raise Unsupported(f"timestamp-part modifier on {fname} is not supported")
        if isinstance(value, SigmaNumber):
            return ir.Num(fname, "eq", float(value.number))
        if isinstance(value, SigmaRegularExpression):
            return ir.Regex(fname, _regex(value))
        if isinstance(value, SigmaCIDRExpression):
            return ir.Cidr(fname, (value.cidr,))
        if isinstance(value, SigmaFieldReference):
            kind = "startswith" if value.starts_with else "endswith" if value.ends_with else "eq"
            return ir.FieldRef(fname, value.field, kind)
        if isinstance(value, SigmaString):
            cased = isinstance(value, SigmaCasedString)
            return ir.Or(tuple(_string_node(fname, p, cased) for p in self.expand(value)))
        raise Unsupported(f"value type {type(value).__name__} on field {fname} is not supported")

    def keyword(self, value: object) -> ir.Node:
        if isinstance(value, SigmaExpansion):
            return ir.Or(tuple(self.keyword(v) for v in value.values))
        if isinstance(value, SigmaNumber):
            value = SigmaString(str(value.number))
        if not isinstance(value, SigmaString):
            raise Unsupported(f"keyword of type {type(value).__name__} is not supported")
        cased = isinstance(value, SigmaCasedString)
        nodes = []
        for parts in self.expand(value):
            s = _string_node("*", parts, cased)
            if not isinstance(s, ir.Str):
                raise Unsupported("keyword with inner wildcards is not supported")
            # A keyword is a full-text search: a plain value matches anywhere in a field value.
            kind = "contains" if s.kind == "eq" else s.kind
            nodes.append(ir.Keyword(kind, s.values, s.cased))
        return ir.Or(tuple(nodes))

    def expand(self, value: SigmaString) -> list[list[object]]:
        """Resolve `%placeholder%` parts (the |expand modifier) into the literal alternatives."""
        variants: list[list[object]] = [[]]
        for part in value.s:
            if isinstance(part, Placeholder):
                values = self.placeholders(part.name)
                if values is None:
                    raise Unsupported(f"unknown placeholder %{part.name}% (no allowlist of that name)")
                variants = [v + _pattern_parts(x) for v in variants for x in values]
            else:
                variants = [v + [part] for v in variants]
        return variants


def _pattern_parts(text: str) -> list[object]:
    """An allowlist value: `*` and `?` are wildcards, as in Sigma; `\\*` escapes one."""
    return list(SigmaString(text).s)


def _string_node(fname: str, parts: list[object], cased: bool) -> ir.Node:
    # Merge adjacent literal parts, then classify by where the wildcards stand.
    tokens: list[object] = []
    for p in parts:
        if isinstance(p, str) and tokens and isinstance(tokens[-1], str):
            tokens[-1] += p
        elif p != "":
            tokens.append(p)
    lead = bool(tokens) and tokens[0] == SpecialChars.WILDCARD_MULTI
    trail = len(tokens) > 1 and tokens[-1] == SpecialChars.WILDCARD_MULTI
    core = tokens[int(lead) : len(tokens) - int(trail)]
    fold = (lambda s: s) if cased else str.lower
    if not core:
        # `*` alone matches any present value (Sigma: field has any value)
        return ir.Exists(fname) if tokens else ir.Str(fname, "eq", ("",), cased)
    if len(core) == 1 and isinstance(core[0], str):
        text = fold(core[0])
        kind = "contains" if lead and trail else "endswith" if lead else "startswith" if trail else "eq"
        return ir.Str(fname, kind, (text,), cased)
    pattern = "".join(
        ".*" if t == SpecialChars.WILDCARD_MULTI else "." if t == SpecialChars.WILDCARD_SINGLE else re2.escape(t)  # type: ignore[arg-type]
        for t in tokens
    )
    literals = tuple(fold(t) for t in tokens if isinstance(t, str))
    return ir.Glob(fname, ("" if cased else "(?i)") + "(?s)^" + pattern + "$", literals, cased)


def _regex(value: SigmaRegularExpression) -> str:
    pattern = value.regexp.to_plain() if hasattr(value.regexp, "to_plain") else str(value.regexp)
    flags = "".join(sorted(_RE_FLAGS[f] for f in value.flags))
    full = f"(?{flags}){pattern}" if flags else pattern
    try:
        re2.compile(full)
    except Exception as exc:  # re2 raises its own error type; the reason is what matters
        raise Unsupported(f"regex is not RE2 (linear-time) compatible: {exc}") from exc
    return full

"""A slow, obviously-correct Sigma matcher used only to check the fast engine.

It walks pySigma's parsed condition for one event at a time and turns every Sigma string into a
Python regular expression. It shares no code with `svchunt.rules` or `svchunt.engine` (no IR, no
routing table, no prefilter, no columns): if the two disagree, one of them is wrong.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import windows_generic_category_channel_mapping
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
    SpecialChars,
)


@cache
def _re(pattern: str, flags: int) -> re.Pattern:
    # Python's own cache holds 512 patterns; thousands of rules would recompile on every event.
    return re.compile(pattern, flags)


@cache
def _string_regex(parts: tuple, cased: bool, keyword: bool) -> re.Pattern:
    pattern = ""
    for part in parts:
        if isinstance(part, Placeholder):
            raise Skip("placeholder")
        if part == SpecialChars.WILDCARD_MULTI:
            pattern += ".*"
        elif part == SpecialChars.WILDCARD_SINGLE:
            pattern += "."
        else:
            pattern += re.escape(part)
    if keyword and not pattern.startswith(".*"):
        pattern = ".*" + pattern + ".*"  # a keyword is a full-text search
    return re.compile(pattern, re.DOTALL | (0 if cased else re.IGNORECASE))


SECURITY_EQUIVALENT = {"process_creation": [4688], "registry_event": [4657], "registry_set": [4657], "registry_add": [4657]}


class Skip(Exception):
    """The reference does not handle this rule (e.g. placeholders)."""


def logsource_accepts(rule: SigmaRule, fields: dict[str, Any]) -> bool:
    ls = rule.logsource
    channel = str(fields.get("Channel") or "").lower()
    eid = fields.get("EventID")
    if ls.category is None and ls.service is None:
        return True
    if ls.category is None:
        chans = windows_logsource_mapping.get(ls.service)
        if chans is None:
            raise Skip("unknown service")
        chans = [chans] if isinstance(chans, str) else chans
        return channel in {c.lower() for c in chans}
    if ls.category in windows_generic_category_channel_mapping:
        info = windows_generic_category_channel_mapping[ls.category]
        chans = windows_logsource_mapping[info["service"]]
        chans = [chans] if isinstance(chans, str) else chans
        return channel in {c.lower() for c in chans} and eid == info["EventID"]
    if ls.category in sysmon_generic_logsource_eventid_mapping:
        ids = sysmon_generic_logsource_eventid_mapping[ls.category]
        ids = [ids] if isinstance(ids, int) else ids
        if channel == "microsoft-windows-sysmon/operational" and eid in ids:
            return True
        return channel == "security" and eid in SECURITY_EQUIVALENT.get(ls.category, [])
    raise Skip("unknown category")


def rule_matches(rule: SigmaRule, fields: dict[str, Any]) -> bool:
    if not logsource_accepts(rule, fields):
        return False
    return any(_eval(c.parsed, fields) for c in rule.detection.parsed_condition)


def _get(fields: dict[str, Any], name: str) -> Any:
    if name in fields:
        return fields[name]
    for key in sorted(fields):
        if key.lower() == name.lower() and fields[key] not in (None, ""):
            return fields[key]
    return None


def _eval(node: Any, fields: dict[str, Any]) -> bool:
    if isinstance(node, ConditionAND):
        return all(_eval(a, fields) for a in node.args)
    if isinstance(node, ConditionOR):
        return any(_eval(a, fields) for a in node.args)
    if isinstance(node, ConditionNOT):
        return not _eval(node.args[0], fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _value_matches(node.value, _get(fields, node.field), fields)
    if isinstance(node, ConditionValueExpression):
        return any(_value_matches(node.value, v, fields, keyword=True) for v in fields.values())
    raise Skip(type(node).__name__)


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _value_matches(expected: Any, actual: Any, fields: dict[str, Any], keyword: bool = False) -> bool:
    if isinstance(expected, SigmaExpansion):
        return any(_value_matches(v, actual, fields, keyword) for v in expected.values)
    if isinstance(expected, SigmaNull):
        return actual is None or actual == ""
    if isinstance(expected, SigmaExists):
        present = actual is not None and actual != ""
        return present == expected.exists
    if actual is None:
        return False
    if isinstance(actual, list | tuple):
        return any(_value_matches(expected, a, fields, keyword) for a in actual)
    text = actual if isinstance(actual, str) else str(actual)
    if isinstance(expected, SigmaBool):
        return text.lower() == ("true" if expected.boolean else "false")
    if isinstance(expected, SigmaNumber):
        try:
            return float(text) == float(expected.number)
        except ValueError:
            try:
                return int(text, 16) == expected.number if text.lower().startswith("0x") else False
            except ValueError:
                return False
    if isinstance(expected, SigmaCompareExpression):
        try:
            n = float(text)
        except ValueError:
            return False
        op = expected.op
        x = float(expected.number.number)
        return {
            CompareOperators.LT: n < x,
            CompareOperators.LTE: n <= x,
            CompareOperators.GT: n > x,
            CompareOperators.GTE: n >= x,
        }.get(op, False)
    if isinstance(expected, SigmaRegularExpression):
        flags = 0
        for f in expected.flags:
            flags |= {
                SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
                SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
                SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
            }[f]
        return _re(expected.regexp.to_plain(), flags).search(text) is not None
    if isinstance(expected, SigmaCIDRExpression):
        try:
            return ipaddress.ip_address(text.strip()) in ipaddress.ip_network(expected.cidr, strict=False)
        except ValueError:
            return False
    if isinstance(expected, SigmaFieldReference):
        other = _get(fields, expected.field)
        if other is None:
            return False
        a, b = text.lower(), str(other).lower()
        return a.startswith(b) if expected.starts_with else a.endswith(b) if expected.ends_with else a == b
    if isinstance(expected, SigmaString):
        regex = _string_regex(tuple(expected.s), isinstance(expected, SigmaCasedString), keyword)
        return regex.fullmatch(text) is not None
    raise Skip(type(expected).__name__)

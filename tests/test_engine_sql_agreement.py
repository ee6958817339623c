"""The SQL back end (on DuckDB) gives the Python back end's answer, IR node kind by node kind.

Each case is one IR condition run by both back ends over the same hand-made events, which hold the
values that made the two disagree before: booleans, lists (with None and empty elements), missing vs
empty fields, case variants of a field name, numbers in every text form (and out of range), non-ASCII
case folding, NUL and newlines inside values. Where the right answer is not obvious from the node, the
case also names the events it must match, so both back ends cannot agree on a wrong answer.
"""

from __future__ import annotations

import pytest

from svchunt.engine.matcher import Matcher
from svchunt.engine.sql import DUCKDB, SPARK, DuckDBMatcher, condition_sql, sql_refusal
from svchunt.model import Event, RuleInfo
from svchunt.rules import ir
from svchunt.rules.loader import LoadedRule, load_rules

TS = "2024-01-01T00:00:00.000000Z"
EVENTS = [
    Event({"Channel": "System", "EventID": 7045, "ServiceName": "PSEXESVC", "ImagePath": "C:\\Windows\\PSEXESVC.exe",
           "Flag": True, "Count": "0x10", "Data": ["alpha", None, "Beta"]}, TS, "t", 1),
    Event({"Channel": "Security", "EventID": 4688, "ServiceName": "", "Flag": False, "Count": 16, "Data": [],
           "CommandLine": "cmd /c evil.exe"}, TS, "t", 2),
    Event({"Channel": "System", "EventID": 7045, "ServiceName": None, "servicename": "svc2", "Count": " 16.0 ",
           "Flag": "True", "CommandLine": "line1\nline2"}, TS, "t", 3),
    Event({"Channel": "system", "EventID": 7036, "Count": "1e500", "Flag": "true", "Data": ["", ""],
           "Text": "İstanbul ΟΔΟΣ É"}, TS, "t", 4),
    Event({"Channel": "System", "EventID": True, "Count": 2**70, "Text": "a\0evil", "Data": [7, 2.5, False]}, TS, "t", 5),
    Event({"Channel": 5, "EventID": "7045", "Count": float("nan"), "Data": "single", "Flag": 1}, TS, "t", 6),
    Event({"Channel": "System", "EventID": 7045, "Payload": "", "payload": "evil again", "Count": 17.5,
           "Path": "C:\\x", "Other": "c:\\x\\y", "Many": ["C:\\x\\z", "d"]}, TS, "t", 7),
    Event({"Channel": "System", "EventID": 7045, "Payload": "", "Count": "1_000", "Text": "١٢"}, TS, "t", 8),
]
ALL = {e.record_id for e in EVENTS}
FOLD = str.lower  # how the rule compiler folds literals of case-insensitive values

S, K = ir.Str, ir.Keyword
CASES: list[tuple[str, ir.Node, set[int] | None]] = [
    # Str: every kind, cased and not, on scalars, lists, booleans, numbers, missing and empty values
    ("str eq", S("ServiceName", "eq", ("psexesvc",)), {1}),
    ("str eq cased", S("ServiceName", "eq", ("PSEXESVC",), True), {1}),
    ("str eq cased other case", S("ServiceName", "eq", ("psexesvc",), True), set()),
    ("str eq empty", S("ServiceName", "eq", ("",)), {2}),
    ("str eq case variant of the name", S("ServiceName", "eq", ("svc2",)), {3}),
    ("str eq several", S("ServiceName", "eq", ("psexesvc", "svc2", "nope")), {1, 3}),
    ("str contains", S("ImagePath", "contains", ("windows\\psexe",)), {1}),
    ("str contains cased", S("ImagePath", "contains", ("Windows",), True), {1}),
    ("str contains many", S("CommandLine", "contains", tuple(f"n{i}" for i in range(10)) + ("evil",)), {2}),
    ("str startswith", S("ServiceName", "startswith", ("psex", "sv")), {1, 3}),
    ("str startswith cased", S("ServiceName", "startswith", ("Psex",), True), set()),
    ("str endswith", S("ImagePath", "endswith", (".exe",)), {1}),
    ("str endswith cased", S("ImagePath", "endswith", (".EXE",), True), set()),
    ("str on list elements", S("Data", "eq", ("beta",)), {1}),
    ("str on list elements cased", S("Data", "eq", ("Beta",), True), {1}),
    ("str startswith on list", S("Data", "startswith", ("al", "si")), {1, 6}),
    ("str eq empty on list", S("Data", "eq", ("",)), {4}),
    ("str on list of numbers and bools", S("Data", "eq", ("7", "2.5", "false")), {5}),
    ("boolean true (sigma `Flag: true`)", S("Flag", "eq", ("true",)), {1, 3, 4}),
    ("cased true on a boolean field", S("Flag", "eq", ("true",), True), {1, 4}),
    ("cased True", S("Flag", "eq", ("True",), True), {3}),
    ("boolean false", S("Flag", "eq", ("false",)), {2}),
    ("number as text", S("Count", "eq", ("16",)), {2}),
    ("non-ASCII folding", S("Text", "contains", (FOLD("ΟΔΟΣ"), FOLD("İstanbul"))), {4}),
    ("non-ASCII folding cased", S("Text", "contains", ("ΟΔΟΣ",), True), {4}),
    ("NUL inside a value", S("Text", "endswith", ("\0evil",)), {5}),
    ("missing field", S("Missing", "eq", ("x",)), set()),
    ("empty value is not the missing one", S("Payload", "eq", ("",)), {8}),
    ("case variant with an empty exact spelling", S("Payload", "contains", ("evil",)), {7}),
    ("newline in a value", S("CommandLine", "contains", ("1\nl",)), {3}),
    # Keyword: per value, never over a joined text
    ("keyword contains", K("contains", ("evil",)), {2, 5, 7}),
    ("keyword contains cased", K("contains", ("Beta",), True), {1}),
    ("keyword contains folded", K("contains", ("beta",)), {1}),
    ("keyword startswith (a later value)", K("startswith", ("evil",)), {7}),
    ("keyword endswith (an earlier value)", K("endswith", (".exe",)), {1, 2}),
    ("keyword endswith cased", K("endswith", (".EXE",), True), set()),
    ("keyword with NUL cannot bridge two values", K("contains", ("a\0evil",)), {5}),
    ("keyword with NUL cannot bridge two values (2)", K("contains", ("psexesvc\0",)), set()),
    ("keyword on boolean text", K("contains", ("true",)), {1, 3, 4, 5}),
    ("keyword on numbers", K("startswith", ("7045",)), {1, 3, 6, 7, 8}),
    ("keyword many", K("contains", tuple(f"zz{i}" for i in range(12)) + ("svc2",)), {3}),
    # Glob and Regex (flags folded into the pattern)
    ("glob", ir.Glob("ImagePath", "(?i)(?s)^c:\\\\windows\\\\.*\\.exe$", ("c:\\windows\\", ".exe")), {1}),
    ("glob cased", ir.Glob("ImagePath", "(?s)^C:\\\\windows.*$", ("C:\\windows",), True), set()),
    ("glob on list", ir.Glob("Data", "(?i)(?s)^b.t.$", ("b",)), {1}),
    ("regex", ir.Regex("CommandLine", "evil\\.exe$"), {2}),
    ("regex dot is not newline", ir.Regex("CommandLine", "line1.line2"), set()),
    ("regex (?s)", ir.Regex("CommandLine", "(?s)line1.line2"), {3}),
    ("regex (?m)", ir.Regex("CommandLine", "(?m)^line2$"), {3}),
    ("regex (?i)", ir.Regex("CommandLine", "(?i)EVIL"), {2}),
    ("regex on a boolean", ir.Regex("Flag", "^true$"), {1, 4}),
    ("regex on an int", ir.Regex("Count", "^16$"), {2}),
    ("regex on a float", ir.Regex("Count", "^17\\.5$"), {7}),
    ("regex on list", ir.Regex("Data", "^B"), {1}),
    ("regex on missing", ir.Regex("Missing", ".*"), set()),
    # Num: hex, float text, out of range, NaN, booleans, lists
    ("num eq", ir.Num("Count", "eq", 16.0), {1, 2, 3}),
    ("num gt", ir.Num("Count", "gt", 16.0), {7}),
    ("num gte", ir.Num("Count", "gte", 16.0), {1, 2, 3, 7}),
    ("num lt", ir.Num("Count", "lt", 17.0), {1, 2, 3}),
    ("num lte", ir.Num("Count", "lte", 17.5), {1, 2, 3, 7}),
    ("num on text EventID", ir.Num("EventID", "eq", 7045.0), {1, 3, 6, 7, 8}),
    ("num on a boolean", ir.Num("Flag", "eq", 1.0), {6}),
    ("num on list", ir.Num("Data", "gt", 2.0), {5}),
    ("num on missing", ir.Num("Missing", "eq", 0.0), set()),
    # Exists / IsNull: empty is absent, a list is present when one element is
    ("exists", ir.Exists("ServiceName"), {1, 3}),
    ("exists list", ir.Exists("Data"), {1, 5, 6}),
    ("is null", ir.IsNull("ServiceName"), ALL - {1, 3}),
    ("is null list", ir.IsNull("Data"), ALL - {1, 5, 6}),
    ("exists missing", ir.Exists("Missing"), set()),
    ("is null missing", ir.IsNull("Missing"), ALL),
    # FieldRef
    ("fieldref startswith", ir.FieldRef("Other", "Path", "startswith"), {7}),
    ("fieldref startswith cased", ir.FieldRef("Other", "Path", "startswith", True), set()),
    ("fieldref eq (empty equals empty)", ir.FieldRef("ServiceName", "ServiceName"), {1, 2, 3}),
    ("fieldref contains", ir.FieldRef("Other", "Path", "contains"), {7}),
    ("fieldref endswith", ir.FieldRef("Other", "Path", "endswith"), set()),
    ("fieldref on list", ir.FieldRef("Many", "Path", "startswith"), {7}),
    # Const, And / Or / Not (a missing field under NOT is a match, never SQL's unknown)
    ("const true", ir.Const(True), ALL),
    ("const false", ir.Const(False), set()),
    ("not missing", ir.Not(S("Missing", "eq", ("x",))), ALL),
    ("not", ir.Not(S("ServiceName", "eq", ("psexesvc",))), ALL - {1}),
    ("and", ir.And((ir.Num("EventID", "eq", 7045.0), ir.Exists("ServiceName"))), {1, 3}),
    ("or", ir.Or((ir.Regex("CommandLine", "evil"), ir.Num("Count", "gt", 17.0))), {2, 7}),
    ("nested", ir.And((ir.Not(ir.Or((ir.IsNull("Count"), ir.Num("Count", "eq", 16.0)))), K("contains", ("system",)))),
     {4, 5, 7, 8}),
]


ANYWHERE = (ir.Route(None, None),)


def _rule(i: int, node: ir.Node, routes: tuple[ir.Route, ...] = ANYWHERE) -> LoadedRule:
    compiled = ir.CompiledRule(f"r{i}", node, tuple(routes), frozenset(ir.referenced_fields(node)))
    return LoadedRule(compiled, RuleInfo(f"r{i}", f"case {i}"))


def _both(rules: list[LoadedRule], events: list[Event]) -> tuple[dict[str, set], dict[str, set]]:
    def by_rule(pairs) -> dict[str, set]:
        out: dict[str, set] = {r.info.rule_id: set() for r in rules}
        for i, event in pairs:
            out[rules[i].info.rule_id].add(event.record_id)
        return out

    return by_rule(Matcher(rules).match_indexed(events)), by_rule(DuckDBMatcher(rules).match_indexed(events))


@pytest.fixture(scope="module")
def answers():
    rules = [_rule(i, node) for i, (_, node, _) in enumerate(CASES)]
    return _both(rules, EVENTS)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_node_kind_agrees(answers, index):
    name, node, expected = CASES[index]
    python, sql = answers
    rid = f"r{index}"
    assert python[rid] == sql[rid], f"{name}: python {sorted(python[rid])} vs sql {sorted(sql[rid])}"
    if expected is not None:
        assert python[rid] == expected, f"{name}: matched {sorted(python[rid])}, expected {sorted(expected)}"


def test_every_node_kind_is_covered():
    kinds = set()
    stack = [node for _, node, _ in CASES]
    while stack:
        node = stack.pop()
        kinds.add(type(node).__name__ + (f":{node.kind}" if hasattr(node, "kind") else ""))
        stack.extend(getattr(node, "children", ()))
        if isinstance(node, ir.Not):
            stack.append(node.child)
    for kind in ir.STR_KINDS[:4]:
        assert f"Str:{kind}" in kinds
    assert {"Keyword:contains", "Keyword:startswith", "Keyword:endswith", "Glob", "Regex", "Num", "Exists",
            "IsNull", "Const", "And", "Or", "Not"} <= kinds
    assert {f"FieldRef:{k}" for k in ("eq", "startswith", "endswith", "contains")} <= kinds


def test_routes_agree_on_channel_and_event_id_types():
    routes = [
        ("system 7045", (ir.Route("System", (7045,)),), {1, 3, 7, 8}),
        ("any channel 7045", (ir.Route(None, (7045,)),), {1, 3, 7, 8}),
        ("system any id", (ir.Route("SYSTEM", None),), {1, 3, 4, 5, 7, 8}),
        ("security or 7036", (ir.Route("Security", None), ir.Route(None, (7036,))), {2, 4}),
    ]
    rules = [_rule(i, ir.Const(True), r) for i, (_, r, _) in enumerate(routes)]
    python, sql = _both(rules, EVENTS)
    for i, (name, _, expected) in enumerate(routes):
        assert python[f"r{i}"] == sql[f"r{i}"] == expected, name


def test_answers_do_not_depend_on_the_other_events_of_a_batch():
    # `Payload` is "" in event 8; alone, or beside an event that also spells it `payload`, same answer.
    rules = [_rule(0, S("Payload", "eq", ("",))), _rule(1, ir.IsNull("Payload"))]
    alone = Matcher(rules).match_indexed([EVENTS[7]])
    together = [(i, e) for i, e in Matcher(rules).match_indexed(EVENTS) if e.record_id == 8]
    assert sorted(i for i, _ in alone) == sorted(i for i, _ in together) == [0, 1]


SIGMA = """title: {title}
id: 5e0c1f52-5a6c-4d7e-8f90-{suffix:012d}
status: test
logsource: {{product: windows, service: system}}
level: medium
detection:
{detection}
"""


def test_sigma_rules_that_used_to_disagree(tmp_path):
    """Compiled from Sigma, not built by hand: keyword startswith/endswith, cased `true` on a boolean field."""
    detections = {
        "keyword_startswith": "    keywords: ['evil*']\n    condition: keywords",
        "keyword_endswith": "    keywords: ['*.exe']\n    condition: keywords",
        "cased_true": "    sel: {Flag|cased: 'true'}\n    condition: sel",
        "bool_true": "    sel: {Flag: true}\n    condition: sel",
    }
    for i, (name, det) in enumerate(detections.items()):
        (tmp_path / f"{name}.yml").write_text(SIGMA.format(title=name, suffix=i, detection=det))
    ruleset = load_rules([str(tmp_path)], use_cache=False)
    assert not ruleset.refused
    python, sql = _both(ruleset.rules, EVENTS)
    by_title = {r.info.rule_id: r.info.title for r in ruleset.rules}
    got = {by_title[k]: v for k, v in python.items()}
    assert python == sql
    assert got == {"keyword_startswith": {7}, "keyword_endswith": {1}, "cased_true": {1, 4}, "bool_true": {1, 3, 4}}


def test_refusal_is_named_and_spark_sql_is_generated_for_the_rest():
    cidr = _rule(0, ir.Cidr("IpAddress", ("10.0.0.0/8",)))
    assert sql_refusal(cidr.compiled) == "Cidr has no portable SQL form"
    for _, node, _ in CASES:
        assert sql_refusal(_rule(1, node).compiled) is None
        text = condition_sql(node, SPARK)
        assert "lambda" not in text and "list_transform" not in text
        if not isinstance(node, ir.Const | ir.And | ir.Or | ir.Not):
            assert "exists(" in text
    assert "list_transform" in condition_sql(S("A", "eq", ("x",)), DUCKDB)

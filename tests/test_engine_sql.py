"""One IR, two back ends: the SQL form (DuckDB here, Spark later) agrees with the Python engine."""

from __future__ import annotations

from conftest import shared

from svchunt.content import builtin_rule_paths
from svchunt.engine.matcher import Matcher
from svchunt.engine.sql import DUCKDB, SPARK, DuckDBMatcher, condition_sql
from svchunt.model import Event, RuleInfo
from svchunt.rules import ir
from svchunt.rules.loader import LoadedRule, load_rules
from svchunt.sources import read_events


def _events() -> list[Event]:
    """Lateral-movement files and every 10th other file of the attack samples (~2,000 events)."""
    root = shared("evtx-attack-samples")
    files = sorted(root.rglob("*.evtx"))
    chosen = [f for i, f in enumerate(files) if "Lateral Movement" in str(f) or i % 10 == 0]
    return [e for f in chosen for e in read_events(str(f)) if isinstance(e, Event)]


def _by_rule(pairs, rules) -> dict[str, set]:
    out: dict[str, set] = {}
    for i, event in pairs:
        out.setdefault(rules[i].info.rule_id, set()).add((event.source, event.header_record_id))
    return out


def test_duckdb_back_end_agrees_with_python_back_end():
    """Every SigmaHQ windows rule and the built-in pack, on ~2,000 real events: same matches."""
    sigma = shared("sigma", "rules", "windows")
    rules = load_rules([str(p) for p in builtin_rule_paths()] + [str(sigma)]).rules
    assert len(rules) > 2000
    events = _events()
    sql_matcher = DuckDBMatcher(rules)
    # CIDR has no form that both DuckDB and Spark SQL run; those rules are refused, and only those.
    assert sql_matcher.refused and set(sql_matcher.refused.values()) == {"Cidr has no portable SQL form"}
    kept = [r for i, r in enumerate(rules) if i not in sql_matcher.refused]
    python = _by_rule(Matcher(kept).match_indexed(events), kept)
    sql = _by_rule(DuckDBMatcher(kept).match_indexed(events), kept)
    assert sum(len(v) for v in python.values()) > 100
    assert python == sql


def test_spark_dialect_escapes_backslashes_and_quotes():
    node = ir.Str("ImagePath", "endswith", ("\\o'brien.exe",))
    assert "'\\\\o''brien.exe'" in condition_sql(node, SPARK)
    assert "'\\o''brien.exe'" in condition_sql(node, DUCKDB)


def test_missing_field_under_not_is_a_match_not_unknown():
    node = ir.Not(ir.Str("Missing", "eq", ("x",)))
    rules = [LoadedRule(ir.CompiledRule("r", node, (ir.Route(None, None),), frozenset({"Missing"})), RuleInfo("r", "r"))]
    events = [Event({"EventID": 1}, None, "t", 1), Event({"EventID": 1, "missing": "x"}, None, "t", 2),
              Event({"EventID": 1, "Missing": "y"}, None, "t", 3)]
    assert sorted(e.record_id for _, e in DuckDBMatcher(rules).match_indexed(events)) == [1, 3]

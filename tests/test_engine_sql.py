"""One IR, two back ends: the SQL form (DuckDB here, Spark later) agrees with the Python engine."""

from __future__ import annotations

from conftest import shared

from svchunt.content import builtin_rule_paths
from svchunt.engine.matcher import Matcher
from svchunt.engine.sql import DUCKDB, SPARK, DuckDBMatcher, condition_sql
from svchunt.model import Event
from svchunt.rules import ir
from svchunt.rules.loader import load_rules
from svchunt.sources import read_events


def _events() -> list[Event]:
    root = shared("evtx-attack-samples")
    return [e for f in sorted(root.rglob("*.evtx")) for e in read_events(str(f)) if isinstance(e, Event)]


def _by_rule(pairs, rules) -> dict[str, set]:
    out: dict[str, set] = {}
    for i, event in pairs:
        out.setdefault(rules[i].info.rule_id, set()).add((event.source, event.header_record_id))
    return out


def test_duckdb_back_end_agrees_with_python_back_end():
    sigma = shared("sigma", "rules", "windows")
    paths = [str(p) for p in builtin_rule_paths()] + [
        str(p) for p in sorted(sigma.rglob("*.yml")) if "t1543" in p.read_text(encoding="utf-8").lower()
    ]
    rules = load_rules(paths).rules
    events = _events()
    python = _by_rule(Matcher(rules).match_indexed(events), rules)
    sql_matcher = DuckDBMatcher(rules)
    assert not sql_matcher.refused, sql_matcher.refused
    sql = _by_rule(sql_matcher.match_indexed(events), rules)
    assert sum(len(v) for v in python.values()) > 50
    assert python == sql


def test_spark_dialect_escapes_backslashes_and_quotes():
    node = ir.Str("ImagePath", "endswith", ("\\o'brien.exe",))
    assert "'\\\\o''brien.exe'" in condition_sql(node, SPARK)
    assert "'\\o''brien.exe'" in condition_sql(node, DUCKDB)


def test_missing_field_under_not_is_a_match_not_unknown():
    import duckdb

    node = ir.Not(ir.Str("Missing", "eq", ("x",)))
    con = duckdb.connect()
    con.execute('CREATE TABLE events(_row INT, "Missing" VARCHAR)')
    con.execute("INSERT INTO events VALUES (1, NULL), (2, 'x'), (3, 'y')")
    rows = sorted(r for (r,) in con.execute(f"SELECT _row FROM events WHERE {condition_sql(node, DUCKDB)}").fetchall())
    assert rows == [1, 3]

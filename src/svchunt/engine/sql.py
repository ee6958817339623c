"""SQL back end of the rule IR: the same compiled rules as SQL that DuckDB and Spark SQL both run.

It must give the answers of the Python back end, node kind by node kind (tests/test_engine_sql_agreement.py
checks each one on DuckDB). The table holds each value in the form the Python back end compares it in,
computed once by the same functions (`svchunt.values`), so SQL never converts, folds or parses a value
itself and no engine's own `lower()` or `CAST` can answer differently:

- `_row` (BIGINT), `_channel` (lower-cased Channel when it is text: the Python router's key), `_eid`
  (EventID when it is an integer);
- per referenced field, lists of its values (one element for a scalar, one per element for a list value,
  none for a missing field): `"<field>"` the text (`to_text`), `"<field>:folded"` the folded text (`fold`),
  `"<field>:number"` the numbers (`parse_number`, as DOUBLE); only the forms some rule reads are built;
- `"_kw"` / `"_kw:folded"`: every value of the event (`keyword_values`), for keyword rules.

Every predicate asks whether one element of the list matches (`exists` in Spark, a list lambda in
DuckDB), so a list-valued field, a keyword's startswith/endswith (per value, never over a joined text),
and missing vs empty values behave as in Python. Each leaf is wrapped in COALESCE(…, FALSE) so a missing
field is "no match", never SQL's unknown, which would silently invert under NOT.

Where SQL cannot agree, the rule is refused for SQL (`sql_refusal`, listed by `svchunt rules check`):
CIDR matching has no portable form. Spark's RLIKE is Java's regex engine, not RE2: RE2 patterns run
there, but a pattern using syntax the two read differently would not mean the same (DuckDB uses RE2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from svchunt.engine.batch import ColumnBatch
from svchunt.model import Event
from svchunt.rules import ir
from svchunt.rules.loader import LoadedRule
from svchunt.values import elements, fold, keyword_values, numbers

RAW, FOLDED, NUMBER = "", ":folded", ":number"
KEYWORD = "_kw"
_RESERVED = frozenset({"_row", "_channel", "_eid", KEYWORD, KEYWORD + FOLDED})


class UnsupportedSql(ValueError):
    pass


@dataclass(frozen=True)
class Dialect:
    name: str
    quote: Callable[[str], str]
    regex: Callable[[str, str], str]  # (column expression, pattern literal) -> boolean expression
    backslash_escapes: bool  # Spark's parser treats backslashes in literals as escapes
    any_element: Callable[[str, str, str], str]  # (list column, variable, predicate on it) -> boolean
    starts_with: Callable[[str, str], str]
    ends_with: Callable[[str, str], str]

    def literal(self, text: str) -> str:
        if self.backslash_escapes:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"


DUCKDB = Dialect(
    "duckdb",
    quote=lambda name: '"' + name.replace('"', '""') + '"',
    regex=lambda col, pat: f"regexp_matches({col}, {pat})",
    backslash_escapes=False,
    # an empty list gives NULL, which the leaf's COALESCE turns into FALSE
    any_element=lambda col, var, pred: f"list_bool_or(list_transform({col}, lambda {var}: {pred}))",
    starts_with=lambda col, lit: f"starts_with({col}, {lit})",
    ends_with=lambda col, lit: f"ends_with({col}, {lit})",
)
SPARK = Dialect(
    "spark",
    quote=lambda name: "`" + name.replace("`", "``") + "`",
    regex=lambda col, pat: f"({col} RLIKE {pat})",
    backslash_escapes=True,
    any_element=lambda col, var, pred: f"exists({col}, {var} -> {pred})",
    starts_with=lambda col, lit: f"startswith({col}, {lit})",
    ends_with=lambda col, lit: f"endswith({col}, {lit})",
)


@dataclass
class Columns:
    """Column names of the event table. SQL identifiers ignore case (DuckDB, and Spark by default), and the
    Python back end looks fields up ignoring case too: one set of columns per folded field name."""

    bases: dict[str, str] = field(default_factory=dict)  # folded field name -> column base name
    needed: set[tuple[str, str]] = field(default_factory=set)  # (field as first written, form)
    _taken: set[str] = field(default_factory=lambda: set(_RESERVED))
    _spelling: dict[str, str] = field(default_factory=dict)

    def name(self, field_name: str, form: str) -> str:
        key = field_name.lower()
        base = self.bases.get(key)
        if base is None:
            base = key
            while any((base + f).lower() in self._taken for f in (RAW, FOLDED, NUMBER)):
                base += "~"  # a field literally named like another's derived column
            self._taken.update((base + f).lower() for f in (RAW, FOLDED, NUMBER))
            self.bases[key] = base
            self._spelling[key] = field_name
        self.needed.add((self._spelling[key], form))
        return base + form


def condition_sql(node: ir.Node, d: Dialect, columns: Columns | None = None) -> str:
    cols = columns if columns is not None else Columns()
    if isinstance(node, ir.And):
        return "(" + " AND ".join(condition_sql(c, d, cols) for c in node.children) + ")"
    if isinstance(node, ir.Or):
        return "(" + " OR ".join(condition_sql(c, d, cols) for c in node.children) + ")"
    if isinstance(node, ir.Not):
        return f"(NOT {condition_sql(node.child, d, cols)})"
    if isinstance(node, ir.Const):
        return "TRUE" if node.value else "FALSE"
    return f"COALESCE({_leaf(node, d, cols)}, FALSE)"


def _leaf(node: ir.Node, d: Dialect, cols: Columns) -> str:
    if isinstance(node, ir.Str):
        col = d.quote(cols.name(node.field, RAW if node.cased else FOLDED))
        return d.any_element(col, "x", _string("x", node.kind, node.values, d))
    if isinstance(node, ir.Keyword):
        col = d.quote(KEYWORD if node.cased else KEYWORD + FOLDED)
        cols.needed.add(("*", RAW if node.cased else FOLDED))
        return d.any_element(col, "x", _string("x", node.kind, node.values, d))
    if isinstance(node, ir.Glob | ir.Regex):
        col = d.quote(cols.name(node.field, RAW))
        return d.any_element(col, "x", d.regex("x", d.literal(node.pattern)))
    if isinstance(node, ir.Num):
        op = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[node.op]
        col = d.quote(cols.name(node.field, NUMBER))
        return d.any_element(col, "x", f"x {op} {float(node.value)!r}")
    if isinstance(node, ir.Exists):
        return d.any_element(d.quote(cols.name(node.field, RAW)), "x", "x <> ''")
    if isinstance(node, ir.IsNull):
        present = d.any_element(d.quote(cols.name(node.field, RAW)), "x", "x <> ''")
        return f"(NOT COALESCE({present}, FALSE))"
    if isinstance(node, ir.FieldRef):
        form = RAW if node.cased else FOLDED
        a, b = d.quote(cols.name(node.field, form)), d.quote(cols.name(node.other, form))
        pair = {
            "eq": "(x = y)",
            "startswith": d.starts_with("x", "y"),
            "endswith": d.ends_with("x", "y"),
            "contains": "(instr(x, y) > 0)",
        }[node.kind]
        return d.any_element(a, "x", d.any_element(b, "y", pair))
    raise UnsupportedSql(f"{type(node).__name__} has no portable SQL form")


def _string(var: str, kind: str, values: tuple[str, ...], d: Dialect) -> str:
    if kind == "eq":
        return f"({var} IN ({', '.join(d.literal(v) for v in values)}))"
    parts = []
    for v in values:
        lit = d.literal(v)
        if kind == "contains":
            parts.append(f"(instr({var}, {lit}) > 0)")
        elif kind == "startswith":
            parts.append(d.starts_with(var, lit))
        elif kind == "endswith":
            parts.append(d.ends_with(var, lit))
        else:
            raise UnsupportedSql(f"string predicate {kind}")
    return "(" + " OR ".join(parts) + ")"


def route_sql(rule: ir.CompiledRule, d: Dialect) -> str:
    parts = []
    for route in rule.routes:
        cond = []
        if route.channel is not None:
            cond.append(f"_channel = {d.literal(route.channel.lower())}")
        if route.event_ids is not None:
            cond.append(f"_eid IN ({', '.join(str(i) for i in route.event_ids) or 'NULL'})")
        parts.append("(" + (" AND ".join(cond) or "TRUE") + ")")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def rule_query(rule: ir.CompiledRule, d: Dialect, table: str = "events", columns: Columns | None = None) -> str:
    cond = condition_sql(rule.condition, d, columns)
    return f"SELECT _row FROM {table} WHERE {route_sql(rule, d)} AND {cond}"


def sql_refusal(rule: ir.CompiledRule) -> str | None:
    """Why a rule cannot run on the SQL back end, or None when it can (in every dialect)."""
    try:
        for dialect in (DUCKDB, SPARK):
            rule_query(rule, dialect)
    except UnsupportedSql as exc:
        return str(exc)
    return None


_INT64 = (-(2**63), 2**63 - 1)


def event_table(events: list[Event], columns: Columns):
    """The Arrow table the queries run on (see the module docstring for its layout)."""
    import pyarrow as pa

    texts, doubles = pa.list_(pa.string()), pa.list_(pa.float64())
    data: dict[str, pa.Array] = {
        "_row": pa.array(range(len(events)), type=pa.int64()),
        "_channel": pa.array([c.lower() if type(c := e.fields.get("Channel")) is str else None for e in events],
                             type=pa.string()),
        "_eid": pa.array([eid if type(eid := e.fields.get("EventID")) is int and _INT64[0] <= eid <= _INT64[1]
                          else None for e in events], type=pa.int64()),
    }
    batch = ColumnBatch(events)  # the same field lookup (case variants, empty values) as the Python back end
    for name, form in sorted(columns.needed):
        if name == "*":
            values = [keyword_values(e.fields) for e in events]
            column = KEYWORD if form == RAW else KEYWORD + FOLDED
            data[column] = pa.array(values if form == RAW else [[v.lower() for v in vs] for vs in values], type=texts)
            continue
        column = columns.name(name, form)
        raw = batch.raw(name)
        if form == NUMBER:
            data[column] = pa.array([None if v is None else numbers(v) for v in raw], type=doubles)
        elif form == FOLDED:
            data[column] = pa.array([_folded_list(v) for v in raw], type=texts)
        else:
            data[column] = pa.array([None if v is None else elements(v) for v in raw], type=texts)
    return pa.table(data)


def _folded_list(value: object) -> list[str] | None:
    folded = fold(value)
    if folded is None:
        return None
    return list(folded) if type(folded) is tuple else [folded]


class DuckDBMatcher:
    """Evaluate rules with DuckDB over an Arrow table of the events (the embedded SQL engine)."""

    def __init__(self, rules: list[LoadedRule]):
        self.rules = rules
        self.columns = Columns()
        self.queries: dict[int, str] = {}
        self.refused: dict[int, str] = {}
        for i, rule in enumerate(rules):
            try:
                self.queries[i] = rule_query(rule.compiled, DUCKDB, columns=self.columns)
            except UnsupportedSql as exc:
                self.refused[i] = str(exc)

    def match_indexed(self, events: list[Event]) -> list[tuple[int, Event]]:
        import duckdb

        con = duckdb.connect()
        try:
            con.register("events", event_table(events, self.columns))
            out: list[tuple[int, Event]] = []
            for i, query in self.queries.items():
                for (row,) in con.execute(query).fetchall():
                    out.append((i, events[row]))
        finally:
            con.close()
        return out

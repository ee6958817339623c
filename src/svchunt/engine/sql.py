"""SQL back end of the rule IR: the same compiled rules as SQL that DuckDB and Spark SQL both run.

One table of events (one text column per referenced field, plus `_row`, `_channel`, `_eid` and
`_text` for keyword search) and one `SELECT _row … WHERE <route> AND <condition>` per rule. Every
leaf is wrapped in COALESCE(…, FALSE) so that a missing field is "no match", never SQL's unknown,
which would silently invert under NOT.

Known differences from the Python back end, by design of portable SQL: CIDR matching is not
portable and refuses the rule; numbers written in hex (`0x10`) only compare as text; list-valued
fields are searched as one text joined by newlines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from svchunt.engine.batch import ColumnBatch
from svchunt.model import Event
from svchunt.rules import ir
from svchunt.rules.loader import LoadedRule


class UnsupportedSql(ValueError):
    pass


@dataclass(frozen=True)
class Dialect:
    name: str
    quote: Callable[[str], str]
    regex: Callable[[str, str], str]  # (column expression, pattern literal) -> boolean expression
    backslash_escapes: bool  # Spark's parser treats backslashes in literals as escapes

    def literal(self, text: str) -> str:
        if self.backslash_escapes:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"


DUCKDB = Dialect(
    "duckdb",
    quote=lambda name: '"' + name.replace('"', '""') + '"',
    regex=lambda col, pat: f"regexp_matches({col}, {pat})",
    backslash_escapes=False,
)
SPARK = Dialect(
    "spark",
    quote=lambda name: "`" + name.replace("`", "``") + "`",
    regex=lambda col, pat: f"({col} RLIKE {pat})",
    backslash_escapes=True,
)


def condition_sql(node: ir.Node, d: Dialect) -> str:
    if isinstance(node, ir.And):
        return "(" + " AND ".join(condition_sql(c, d) for c in node.children) + ")"
    if isinstance(node, ir.Or):
        return "(" + " OR ".join(condition_sql(c, d) for c in node.children) + ")"
    if isinstance(node, ir.Not):
        return f"(NOT {condition_sql(node.child, d)})"
    if isinstance(node, ir.Const):
        return "TRUE" if node.value else "FALSE"
    return f"COALESCE({_leaf(node, d)}, FALSE)"


def _leaf(node: ir.Node, d: Dialect) -> str:
    if isinstance(node, ir.Str):
        col = d.quote(node.field)
        return _string(col if node.cased else f"lower({col})", node.kind, node.values, d)
    if isinstance(node, ir.Keyword):
        return _string("_text" if node.cased else "lower(_text)", node.kind, node.values, d)
    if isinstance(node, ir.Glob | ir.Regex):
        return d.regex(d.quote(node.field), d.literal(node.pattern))
    if isinstance(node, ir.Num):
        op = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[node.op]
        return f"(TRY_CAST({d.quote(node.field)} AS DOUBLE) {op} {node.value!r})"
    if isinstance(node, ir.Exists):
        col = d.quote(node.field)
        return f"({col} IS NOT NULL AND {col} <> '')"
    if isinstance(node, ir.IsNull):
        col = d.quote(node.field)
        return f"({col} IS NULL OR {col} = '')"
    if isinstance(node, ir.FieldRef):
        a = d.quote(node.field) if node.cased else f"lower({d.quote(node.field)})"
        b = d.quote(node.other) if node.cased else f"lower({d.quote(node.other)})"
        return {
            "eq": f"({a} = {b})",
            "startswith": f"(left({a}, length({b})) = {b})",
            "endswith": f"(right({a}, length({b})) = {b})",
            "contains": f"(instr({a}, {b}) > 0)",
        }[node.kind]
    raise UnsupportedSql(f"{type(node).__name__} has no portable SQL form")


def _string(col: str, kind: str, values: tuple[str, ...], d: Dialect) -> str:
    if kind == "eq":
        return f"({col} IN ({', '.join(d.literal(v) for v in values)}))"
    parts = []
    for v in values:
        lit = d.literal(v)
        if kind == "contains":
            parts.append(f"(instr({col}, {lit}) > 0)")
        elif kind == "startswith":
            parts.append(f"(left({col}, {len(v)}) = {lit})")
        elif kind == "endswith":
            parts.append(f"(right({col}, {len(v)}) = {lit})")
        else:
            raise UnsupportedSql(f"string predicate {kind}")
    return "(" + " OR ".join(parts) + ")"


def route_sql(rule: ir.CompiledRule, d: Dialect) -> str:
    parts = []
    for route in rule.routes:
        cond = []
        if route.channel is not None:
            cond.append(f"lower(_channel) = {d.literal(route.channel.lower())}")
        if route.event_ids is not None:
            cond.append(f"_eid IN ({', '.join(str(i) for i in route.event_ids) or 'NULL'})")
        parts.append("(" + (" AND ".join(cond) or "TRUE") + ")")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def rule_query(rule: ir.CompiledRule, d: Dialect, table: str = "events") -> str:
    return f"SELECT _row FROM {table} WHERE {route_sql(rule, d)} AND {condition_sql(rule.condition, d)}"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class DuckDBMatcher:
    """Evaluate rules with DuckDB over an Arrow table of the events (the embedded SQL engine)."""

    def __init__(self, rules: list[LoadedRule]):
        self.rules = rules
        self.queries: dict[int, str] = {}
        self.refused: dict[int, str] = {}
        for i, rule in enumerate(rules):
            try:
                self.queries[i] = rule_query(rule.compiled, DUCKDB)
            except UnsupportedSql as exc:
                self.refused[i] = str(exc)

    def match_indexed(self, events: list[Event]) -> list[tuple[int, Event]]:
        import duckdb
        import pyarrow as pa

        fields = sorted({f for r in self.rules for f in r.compiled.fields} - {"*"})
        batch = ColumnBatch(events)  # the same field lookup (case variants, empty values) as the Python back end
        columns: dict[str, list] = {
            "_row": list(range(len(events))),
            "_channel": [e.fields.get("Channel") for e in events],
            "_eid": [e.event_id for e in events],
            "_text": ["\0".join(_text(v) for v in e.fields.values() if v is not None) for e in events],
        }
        for name in fields:
            # SQL identifiers ignore case (DuckDB, and Spark by default): one column per folded name.
            if not any(existing.lower() == name.lower() for existing in columns):
                columns[name] = [_text(v) for v in batch.raw(name)]
        table = pa.table(
            {k: pa.array(v, type=pa.int64() if k in ("_row", "_eid") else pa.string()) for k, v in columns.items()}
        )
        con = duckdb.connect()
        con.register("events", table)
        out: list[tuple[int, Event]] = []
        for i, query in self.queries.items():
            for (row,) in con.execute(query).fetchall():
                out.append((i, events[row]))
        con.close()
        return out


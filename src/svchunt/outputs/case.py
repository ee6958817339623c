"""The case file: alerts, evidence and run metadata of one or more runs in an embedded DuckDB database.

Hosts are often collected at different times; each `svchunt hunt --case` run is appended, and an alert
already in the case (same deterministic `alert_id`) is not stored twice. `read_case` gives back one merged
`HuntResult` for re-rendering; `query` runs analyst SQL on a read-only connection.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from svchunt.model import Alert, HuntResult, Problem, Refusal, RunStats
from svchunt.outputs import document
from svchunt.values import to_text

# The case file's own version: 1 had alert columns of its own, 2 takes them from the alert document.
SCHEMA_VERSION = 2

# The alerts and evidence tables are generated from the alert document (`document.case_ddl`).
_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, started VARCHAR, finished VARCHAR, args JSON, hosts VARCHAR[],
    files BIGINT, records_read BIGINT, records_skipped BIGINT, records_matched BIGINT,
    rules_loaded BIGINT, correlations_loaded BIGINT, alerts_total BIGINT, alerts_new BIGINT,
    seconds DOUBLE, notes VARCHAR[], meta JSON, records_flagged BIGINT, files_skipped BIGINT
);
""" + document.case_ddl() + """
CREATE TABLE IF NOT EXISTS problems (run_id VARCHAR, source VARCHAR, position VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS refused (run_id VARCHAR, path VARCHAR, rule_id VARCHAR, title VARCHAR, reason VARCHAR);
"""

_JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_ARROW = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "VARCHAR": pa.string(), "VARCHAR[]": pa.list_(pa.string()),
          "JSON": pa.string()}


def _json(value: Any) -> str:
    return orjson.dumps(value, option=_JSON_OPTS, default=to_text).decode()


def _alert_tables(alerts: list[Alert], run_id: str) -> tuple[pa.Table, pa.Table]:
    unique: dict[str, Alert] = {}
    for alert in alerts:
        unique.setdefault(alert.alert_id, alert)
    a_columns, e_columns = document.case_columns(), document.evidence_columns()
    a_cols: dict[str, list[Any]] = {name: [] for name, _ in a_columns}
    e_cols: dict[str, list[Any]] = {name: [] for name, _ in e_columns}
    types = dict(a_columns)
    for alert_id, alert in unique.items():
        doc = document.to_document(alert)
        a_cols["run_id"].append(run_id)
        for name, _ in a_columns[1:]:
            value = doc[name]
            a_cols[name].append(_json(value) if types[name] == "JSON" else value)
        for i, ev in enumerate(doc["evidence"]):
            e_cols["alert_id"].append(alert_id)
            e_cols["ordinal"].append(i)
            for name, _ in e_columns[2:]:
                e_cols[name].append(ev[name])
    a_schema = pa.schema([(name, _ARROW[t]) for name, t in a_columns])
    e_schema = pa.schema([(name, _ARROW[t]) for name, t in e_columns])
    return pa.table(a_cols, schema=a_schema), pa.table(e_cols, schema=e_schema)


def _upgrade(con: duckdb.DuckDBPyConnection) -> None:
    """A case file of an older version gets the columns the alert document added since (existing rows keep
    what they had; version 1 kept description, falsepositives and the rule's name and path in `rule`)."""
    have = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'alerts'").fetchall()}
    for name, kind in document.case_columns():
        if name not in have:
            con.execute(f"ALTER TABLE alerts ADD COLUMN {document.quote(name)} {kind}")
    run_columns = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'").fetchall()}
    for name in ("records_flagged", "files_skipped"):  # added later: NULL for the runs written before
        if name not in run_columns:
            con.execute(f"ALTER TABLE runs ADD COLUMN {name} BIGINT")
    if "rule" in have and "description" not in have:
        con.execute(
            "UPDATE alerts SET description = json_extract_string(rule, '$.description'), "
            "falsepositives = CAST(json_extract(rule, '$.falsepositives') AS VARCHAR[]), "
            "rule_name = json_extract_string(rule, '$.name'), rule_path = json_extract_string(rule, '$.path'), "
            "claims = covers, schema_version = 1"
        )
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


def write_case(path: str, result: HuntResult, run_meta: dict[str, Any]) -> dict[str, Any]:
    """Append one run to the case file (created if missing). Alerts already in the case are skipped.

    `run_meta` may hold `run_id`, `started`, `finished` (ISO text), `args` (anything JSON-able), `hosts`;
    the rest is kept as JSON in `runs.meta`. Returns `{run_id, alerts_total, alerts_new}`.
    """
    run_id = str(run_meta.get("run_id") or uuid.uuid4().hex)
    alerts_tbl, evidence_tbl = _alert_tables(result.alerts, run_id)
    hosts = run_meta.get("hosts")
    if hosts is None:
        hosts = sorted({a.computer for a in result.alerts if a.computer})
    extra_meta = {
        k: v for k, v in run_meta.items() if k not in ("run_id", "started", "finished", "args", "hosts")
    }
    stats = result.stats
    con = duckdb.connect(path)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(_DDL)
        _upgrade(con)
        if con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]:
            raise ValueError(f"{path}: run {run_id} is already in this case file")
        con.register("new_alerts", alerts_tbl)
        con.register("new_evidence", evidence_tbl)
        con.execute(
            "CREATE TEMP TABLE fresh AS SELECT alert_id FROM new_alerts "
            "WHERE alert_id NOT IN (SELECT alert_id FROM alerts)"
        )
        alerts_new = con.execute("SELECT count(*) FROM fresh").fetchall()[0][0]
        # BY NAME: a case file upgraded from an older version may hold extra columns of its own
        con.execute(
            "INSERT INTO alerts BY NAME SELECT * FROM new_alerts WHERE alert_id IN (SELECT alert_id FROM fresh)"
        )
        con.execute(
            "INSERT INTO evidence BY NAME SELECT * FROM new_evidence WHERE alert_id IN (SELECT alert_id FROM fresh)"
        )
        con.execute(
            "INSERT INTO runs (run_id, started, finished, args, hosts, files, records_read, records_skipped, "
            "records_matched, rules_loaded, correlations_loaded, alerts_total, alerts_new, seconds, notes, meta, "
            "records_flagged, files_skipped) VALUES (?, ?, ?, ?::JSON, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?)",
            [
                run_id,
                run_meta.get("started"),
                run_meta.get("finished"),
                _json(run_meta.get("args")),
                list(hosts),
                stats.files,
                stats.records_read,
                stats.records_skipped,
                stats.records_matched,
                stats.rules_loaded,
                stats.correlations_loaded,
                len(alerts_tbl),
                alerts_new,
                stats.seconds,
                list(result.notes),
                _json(extra_meta),
                stats.records_flagged,
                stats.files_skipped,
            ],
        )
        if result.problems:
            con.executemany(
                "INSERT INTO problems VALUES (?, ?, ?, ?)",
                [[run_id, p.source, p.position, p.reason] for p in result.problems],
            )
        if result.refused:
            con.executemany(
                "INSERT INTO refused VALUES (?, ?, ?, ?, ?)",
                [[run_id, r.path, r.rule_id, r.title, r.reason] for r in result.refused],
            )
        con.execute("DROP TABLE fresh")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return {"run_id": run_id, "alerts_total": len(alerts_tbl), "alerts_new": alerts_new}


def _connect_ro(path: str) -> duckdb.DuckDBPyConnection:
    if not Path(path).is_file():
        raise FileNotFoundError(f"case file not found: {path}")
    # Read-only and without file-system access: analyst SQL can read the case, not change it or touch files.
    return duckdb.connect(path, read_only=True, config={"enable_external_access": False})


def read_case(path: str) -> HuntResult:
    """All runs merged: alerts (each once), summed counts, every problem, refusals without repeats."""
    con = _connect_ro(path)
    try:
        ev_names = [name for name, _ in document.evidence_columns()[2:]]
        evidence: dict[str, list[dict[str, Any]]] = {}
        for row in con.execute(
            f"SELECT alert_id, {', '.join(document.quote(n) for n in ev_names)} FROM evidence ORDER BY alert_id, ordinal"
        ).fetchall():
            evidence.setdefault(row[0], []).append(dict(zip(ev_names, row[1:], strict=True)))
        have = {row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'alerts'").fetchall()}
        columns = [(name, kind) for name, kind in document.case_columns()[1:] if name in have]
        legacy = "rule" in have and "description" not in have  # version 1, not upgraded yet (read-only here)
        if legacy:
            columns.append(("rule", "JSON"))
        alerts = []
        for row in con.execute(f"SELECT {', '.join(document.quote(n) for n, _ in columns)} FROM alerts").fetchall():
            doc = {name: (orjson.loads(v) if kind == "JSON" and v else v) for (name, kind), v in zip(columns, row, strict=True)}
            if legacy and isinstance(doc.get("rule"), dict):
                rule = doc.pop("rule")
                doc.update(description=rule.get("description"), falsepositives=rule.get("falsepositives"),
                           rule_name=rule.get("name"), rule_path=rule.get("path"))
            doc["evidence"] = evidence.get(doc["alert_id"], [])
            alerts.append(document.from_document(doc))
        alerts.sort(key=lambda a: a.sort_key())
        stats = RunStats()
        notes: list[str] = []
        for row in con.execute(
            "SELECT files, records_read, records_skipped, records_matched, rules_loaded, correlations_loaded, "
            "seconds, notes FROM runs ORDER BY started NULLS LAST, run_id"
        ).fetchall():
            stats.files += row[0] or 0
            stats.records_read += row[1] or 0
            stats.records_skipped += row[2] or 0
            stats.records_matched += row[3] or 0
            # Rule sets are usually the same from run to run: the largest is the honest figure, not the sum.
            stats.rules_loaded = max(stats.rules_loaded, row[4] or 0)
            stats.correlations_loaded = max(stats.correlations_loaded, row[5] or 0)
            stats.seconds += row[6] or 0.0
            notes.extend(row[7] or [])
        # A kept problem says so in its reason (`Problem.from_row`): a flagged record reads back flagged, not skipped.
        problems = [
            Problem.from_row(*row) for row in con.execute("SELECT source, position, reason FROM problems").fetchall()
        ]
        # Skipped files and flagged records are told apart by the problems themselves (older case files kept
        # no count of them); records skipped stays the runs' sum, which the same problems gave.
        skipped = stats.records_skipped
        stats.count_problems(problems)
        stats.records_skipped = skipped
        refused = [
            Refusal(*row)
            for row in con.execute(
                "SELECT DISTINCT path, rule_id, title, reason FROM refused ORDER BY path, reason"
            ).fetchall()
        ]
    finally:
        con.close()
    return HuntResult(alerts=alerts, stats=stats, problems=problems, refused=refused, notes=notes)


def runs(path: str) -> list[dict[str, Any]]:
    """Run metadata, oldest first (for report headers)."""
    cols, rows = query(path, "SELECT * FROM runs ORDER BY started NULLS LAST, run_id")
    return [dict(zip(cols, row, strict=True)) for row in rows]


def query(path: str, sql: str) -> tuple[list[str], list[tuple]]:
    """Run SQL on a read-only connection; returns column names and rows."""
    con = _connect_ro(path)
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description] if cur.description else []
        return columns, cur.fetchall()
    finally:
        con.close()


# Incidents are a view of all the case's alerts (a later run can extend an earlier story), so the table is
# rebuilt whole after each run rather than appended to. `svchunt report` recomputes them from the alerts.
_INCIDENTS_DDL = """
CREATE TABLE IF NOT EXISTS incidents (
    incident_id VARCHAR PRIMARY KEY, host VARCHAR, start VARCHAR, "end" VARCHAR, title VARCHAR, level VARCHAR,
    claims VARCHAR[], techniques VARCHAR[], source JSON, services VARCHAR[], images VARCHAR[],
    alerts BIGINT, alert_ids VARCHAR[], related VARCHAR[]
);
"""


def write_incidents_table(path: str, incidents: list[Any]) -> int:
    """Replace the case file's `incidents` table with these incidents (`svchunt.correlate.incidents`)."""
    con = duckdb.connect(path)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(_INCIDENTS_DDL)
        con.execute("DELETE FROM incidents")
        rows = [
            [i.incident_id, i.host, i.start, i.end, i.title, i.level, i.claims, i.techniques, _json(i.sources),
             i.services, i.images, len(i.alert_ids), i.alert_ids, i.related]
            for i in incidents
        ]  # fmt: skip
        if rows:
            con.executemany("INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return len(incidents)

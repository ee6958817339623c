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

from svchunt.model import Alert, Evidence, HuntResult, Problem, Refusal, RuleInfo, RunStats

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, started VARCHAR, finished VARCHAR, args JSON, hosts VARCHAR[],
    files BIGINT, records_read BIGINT, records_skipped BIGINT, records_matched BIGINT,
    rules_loaded BIGINT, correlations_loaded BIGINT, alerts_total BIGINT, alerts_new BIGINT,
    seconds DOUBLE, notes VARCHAR[], meta JSON
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id VARCHAR PRIMARY KEY, run_id VARCHAR, kind VARCHAR, rule_id VARCHAR, title VARCHAR,
    level VARCHAR, tags VARCHAR[], techniques VARCHAR[], covers VARCHAR[], timestamp VARCHAR,
    computer VARCHAR, fields JSON, "group" JSON, extra JSON, rule JSON
);
CREATE TABLE IF NOT EXISTS evidence (
    alert_id VARCHAR, ordinal INTEGER, source VARCHAR, record_id BIGINT, event_id BIGINT,
    channel VARCHAR, timestamp VARCHAR, line BIGINT, header_record_id BIGINT,
    PRIMARY KEY (alert_id, ordinal)
);
CREATE TABLE IF NOT EXISTS problems (run_id VARCHAR, source VARCHAR, position VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS refused (run_id VARCHAR, path VARCHAR, rule_id VARCHAR, title VARCHAR, reason VARCHAR);
"""

_JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _json(value: Any) -> str:
    return orjson.dumps(value, option=_JSON_OPTS, default=str).decode()


def _rule_json(rule: RuleInfo) -> str:
    return _json(
        {
            "name": rule.name,
            "description": rule.description,
            "falsepositives": list(rule.falsepositives),
            "path": rule.path,
        }
    )


def _alert_tables(alerts: list[Alert], run_id: str) -> tuple[pa.Table, pa.Table]:
    unique: dict[str, Alert] = {}
    for alert in alerts:
        unique.setdefault(alert.alert_id, alert)
    a_cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "alert_id run_id kind rule_id title level tags techniques covers timestamp computer "
            "fields group extra rule"
        ).split()
    }
    e_cols: dict[str, list[Any]] = {
        k: []
        for k in "alert_id ordinal source record_id event_id channel timestamp line header_record_id".split()
    }
    for alert_id, a in unique.items():
        for key, value in (
            ("alert_id", alert_id),
            ("run_id", run_id),
            ("kind", a.kind),
            ("rule_id", a.rule.rule_id),
            ("title", a.rule.title),
            ("level", a.rule.level),
            ("tags", list(a.rule.tags)),
            ("techniques", a.rule.techniques),
            ("covers", list(a.rule.claims)),
            ("timestamp", a.timestamp),
            ("computer", a.computer),
            ("fields", _json(a.fields)),
            ("group", _json(a.group)),
            ("extra", _json(a.extra)),
            ("rule", _rule_json(a.rule)),
        ):
            a_cols[key].append(value)
        for i, ev in enumerate(a.evidence):
            for key, value in (
                ("alert_id", alert_id),
                ("ordinal", i),
                ("source", ev.source),
                ("record_id", ev.record_id),
                ("event_id", ev.event_id),
                ("channel", ev.channel),
                ("timestamp", ev.timestamp),
                ("line", ev.line),
                ("header_record_id", ev.header_record_id),
            ):
                e_cols[key].append(value)
    text, lst, i64 = pa.string(), pa.list_(pa.string()), pa.int64()
    a_schema = pa.schema([(k, lst if k in ("tags", "techniques", "covers") else text) for k in a_cols])
    e_schema = pa.schema(
        [
            (
                k,
                pa.int32()
                if k == "ordinal"
                else i64
                if k in ("record_id", "event_id", "line", "header_record_id")
                else text,
            )
            for k in e_cols
        ]
    )
    return pa.table(a_cols, schema=a_schema), pa.table(e_cols, schema=e_schema)


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
        con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [str(SCHEMA_VERSION)]
        )
        if con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]:
            raise ValueError(f"{path}: run {run_id} is already in this case file")
        con.register("new_alerts", alerts_tbl)
        con.register("new_evidence", evidence_tbl)
        con.execute(
            "CREATE TEMP TABLE fresh AS SELECT alert_id FROM new_alerts "
            "WHERE alert_id NOT IN (SELECT alert_id FROM alerts)"
        )
        alerts_new = con.execute("SELECT count(*) FROM fresh").fetchall()[0][0]
        con.execute(
            "INSERT INTO alerts SELECT alert_id, run_id, kind, rule_id, title, level, tags, techniques, covers, "
            'timestamp, computer, fields::JSON, "group"::JSON, extra::JSON, rule::JSON FROM new_alerts '
            "WHERE alert_id IN (SELECT alert_id FROM fresh)"
        )
        con.execute(
            "INSERT INTO evidence SELECT * FROM new_evidence WHERE alert_id IN (SELECT alert_id FROM fresh)"
        )
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?::JSON, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON)",
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
        evidence: dict[str, list[Evidence]] = {}
        for row in con.execute(
            "SELECT alert_id, source, record_id, event_id, channel, timestamp, line, header_record_id "
            "FROM evidence ORDER BY alert_id, ordinal"
        ).fetchall():
            evidence.setdefault(row[0], []).append(Evidence(*row[1:]))
        alerts = []
        for (
            alert_id,
            kind,
            rule_id,
            title,
            level,
            tags,
            covers,
            timestamp,
            computer,
            fields,
            group,
            extra,
            rule,
        ) in con.execute(
            'SELECT alert_id, kind, rule_id, title, level, tags, covers, timestamp, computer, fields, "group", '
            "extra, rule FROM alerts"
        ).fetchall():
            r = orjson.loads(rule) if rule else {}
            info = RuleInfo(
                rule_id=rule_id,
                title=title,
                level=level,
                tags=tuple(tags or ()),
                covers=tuple(covers or ()),
                claims=tuple(covers or ()),
                name=r.get("name"),
                description=r.get("description") or "",
                falsepositives=tuple(r.get("falsepositives") or ()),
                path=r.get("path"),
            )
            alerts.append(
                Alert(
                    rule=info,
                    timestamp=timestamp,
                    computer=computer,
                    evidence=evidence.get(alert_id, []),
                    fields=orjson.loads(fields) if fields else {},
                    kind=kind,
                    group=orjson.loads(group) if group else {},
                    extra=orjson.loads(extra) if extra else {},
                )
            )
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
        problems = [
            Problem(*row) for row in con.execute("SELECT source, position, reason FROM problems").fetchall()
        ]
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

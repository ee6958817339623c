"""One alert document: JSONL, CSV, case file and HTML report all carry the fields `outputs/document.py`
defines, and docs/alerts.md describes exactly those."""

from __future__ import annotations

import csv
import sys

import duckdb
import orjson
import pytest
from conftest import FIXTURES, REPO

from svchunt.model import HuntResult, RunStats
from svchunt.outputs import case, csv_out, document, html_report, jsonl

sys.path.insert(0, str(FIXTURES / "outputs"))
import synthetic  # noqa: E402


@pytest.fixture
def result() -> HuntResult:
    return synthetic.sample_result()


def test_jsonl_lines_are_the_document(tmp_path, result):
    path = tmp_path / "a.jsonl"
    jsonl.write_jsonl(result.alerts, str(path))
    docs = [orjson.loads(r) for r in path.read_bytes().splitlines()]
    assert docs and all(set(d) == set(document.FIELD_NAMES) for d in docs)
    assert {d["schema_version"] for d in docs} == {document.SCHEMA_VERSION}
    assert all(d["covers"] == d["claims"] for d in docs)
    psexec = [d for d in docs if d["falsepositives"]]
    assert psexec and psexec[0]["falsepositives"] == ["admins using PsExec"] and psexec[0]["description"]
    assert all(set(e) == {f.name for f in document.EVIDENCE_FIELDS} for d in docs for e in d["evidence"])


def test_documents_read_back_to_the_same_alert(result):
    for alert in result.alerts:
        doc = orjson.loads(orjson.dumps(document.to_document(alert), default=str))
        back = document.from_document(doc)
        assert back.alert_id == alert.alert_id
        assert orjson.loads(orjson.dumps(document.to_document(back), default=str)) == doc


def test_csv_columns_come_from_the_document(tmp_path, result):
    path = tmp_path / "a.csv"
    csv_out.write_csv(result.alerts, str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    expected = [f"{f.name}_json" if f.type == "json" else f.name for f in document.ALERT_FIELDS]
    assert [c for c in header if c not in csv_out.KEY_FIELDS] == expected
    row = next(r for r in rows if r["falsepositives"])
    assert row["falsepositives"] == "admins using PsExec" and row["schema_version"] == str(document.SCHEMA_VERSION)


def test_case_tables_are_generated_from_the_document(tmp_path, result):
    path = str(tmp_path / "case.duckdb")
    case.write_case(path, result, {"run_id": "r1"})
    con = duckdb.connect(path, read_only=True)
    columns = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'alerts' "
                          "ORDER BY ordinal_position").fetchall()
    ev_columns = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'evidence' "
                             "ORDER BY ordinal_position").fetchall()
    fps = con.execute("SELECT falsepositives FROM alerts WHERE len(falsepositives) > 0").fetchall()
    con.close()
    assert [c for (c,) in columns] == [n for n, _ in document.case_columns()]
    assert [c for (c,) in ev_columns] == [n for n, _ in document.evidence_columns()]
    assert fps and fps[0][0] == ["admins using PsExec"]
    back = case.read_case(path)
    assert [a.to_dict() for a in back.alerts] == [a.to_dict() for a in sorted(result.alerts, key=lambda a: a.sort_key())]


def test_a_version_1_case_file_is_upgraded_when_a_run_is_appended(tmp_path, result):
    path = str(tmp_path / "old.duckdb")
    con = duckdb.connect(path)
    con.execute("""
        CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, started VARCHAR, finished VARCHAR, args JSON, hosts VARCHAR[],
            files BIGINT, records_read BIGINT, records_skipped BIGINT, records_matched BIGINT, rules_loaded BIGINT,
            correlations_loaded BIGINT, alerts_total BIGINT, alerts_new BIGINT, seconds DOUBLE, notes VARCHAR[],
            meta JSON);
        CREATE TABLE problems (run_id VARCHAR, source VARCHAR, position VARCHAR, reason VARCHAR);
        CREATE TABLE refused (run_id VARCHAR, path VARCHAR, rule_id VARCHAR, title VARCHAR, reason VARCHAR);
        CREATE TABLE alerts (alert_id VARCHAR PRIMARY KEY, run_id VARCHAR, kind VARCHAR, rule_id VARCHAR,
            title VARCHAR, level VARCHAR, tags VARCHAR[], techniques VARCHAR[], covers VARCHAR[], timestamp VARCHAR,
            computer VARCHAR, fields JSON, "group" JSON, extra JSON, rule JSON);
        CREATE TABLE evidence (alert_id VARCHAR, ordinal INTEGER, source VARCHAR, record_id BIGINT, event_id BIGINT,
            channel VARCHAR, timestamp VARCHAR, line BIGINT, header_record_id BIGINT, PRIMARY KEY (alert_id, ordinal));
        INSERT INTO alerts VALUES ('old1', 'r0', 'detection', 'rule-x', 'Old rule', 'high', ['attack.t1543.003'],
            ['T1543.003'], ['PT-CR-1'], '2020-01-01T00:00:00.000000Z', 'H', '{}', '{}', '{}',
            '{"description": "old text", "falsepositives": ["backups"], "name": null, "path": "x.yml"}');
        INSERT INTO evidence VALUES ('old1', 0, 'old.evtx', 5, 7045, 'System', '2020-01-01T00:00:00.000000Z', NULL, 5);
    """)
    con.close()
    old = case.read_case(path)  # read-only, before any upgrade
    assert old.alerts[0].rule.falsepositives == ("backups",) and old.alerts[0].rule.claims == ("PT-CR-1",)
    case.write_case(path, HuntResult(result.alerts, RunStats(), [], []), {"run_id": "r1"})
    back = case.read_case(path)
    assert len(back.alerts) == len(result.alerts) + 1
    upgraded = next(a for a in back.alerts if a.rule.rule_id == "rule-x")
    assert upgraded.rule.description == "old text" and upgraded.rule.falsepositives == ("backups",)
    assert upgraded.evidence[0].source == "old.evtx"
    assert case.query(path, "SELECT value FROM meta WHERE key = 'schema_version'")[1] == [(str(case.SCHEMA_VERSION),)]


def test_html_payload_carries_every_document_field(result):
    payload = html_report.build_payload(result)
    assert payload["schema_version"] == document.SCHEMA_VERSION
    for alert in payload["alerts"]:
        rule = payload["rules"][alert["rule"]]
        assert set(rule) == set(document.RULE_FIELDS)
        assert set(alert) - {"rule"} == set(document.FIELD_NAMES) - set(document.RULE_FIELDS)
    assert any(r["falsepositives"] == ["admins using PsExec"] for r in payload["rules"])


def test_docs_describe_exactly_the_document():
    text = (REPO / "docs" / "alerts.md").read_text(encoding="utf-8")
    assert f"schema_version {document.SCHEMA_VERSION}" in text
    listed = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert listed == set(document.FIELD_NAMES) | {f.name for f in document.EVIDENCE_FIELDS}

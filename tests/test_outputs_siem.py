"""Timesketch (CSV / JSONL), ECS and incident outputs, validated against their documented required fields.

The schemas in tests/fixtures/outputs/ were written for svchunt from the Timesketch import-format and ECS
field references: required fields, and each emitted field's type (ECS keyword -> string, long -> integer,
ip -> address, date -> ISO 8601, allowed values of event.kind/category/type).
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime

import orjson
import pytest
from click.testing import CliRunner
from conftest import FIXTURES, REPO

from svchunt.cli.main import cli
from svchunt.correlate.incidents import build_incidents
from svchunt.engine.hunt import HuntOptions, run_hunt
from svchunt.model import Alert, Evidence, RuleInfo
from svchunt.outputs import ecs, incidents_out, timesketch

sys.path.insert(0, str(FIXTURES / "outputs"))
import synthetic  # noqa: E402

jsonschema = pytest.importorskip("jsonschema")


def _schema(name: str):
    schema = json.loads((FIXTURES / "outputs" / name).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def examples():
    return run_hunt(HuntOptions(paths=[str(REPO / "examples")], workers=1))


def _leaves(doc: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict) and not prefix.startswith(("svchunt", "winlog.event_data")):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---------------------------------------------------------------- ECS
def test_ecs_documents_match_the_ecs_field_types(tmp_path, examples):
    result = synthetic.sample_result()
    path = tmp_path / "ecs.jsonl"
    alerts = result.alerts + examples.alerts
    n = ecs.write_ecs(alerts, build_incidents(alerts), str(path))
    docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert n == len(docs) == len(alerts)
    validator = _schema("ecs_schema.json")
    for doc in docs:
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, errors
    # What the issue asks for is really there, with the values it should have.
    by_id = {d["event"]["id"]: d for d in docs}
    psexec = by_id[next(a.alert_id for a in result.alerts if a.rule is synthetic.PSEXEC)]
    assert psexec["event"]["kind"] == "alert" and psexec["event"]["severity"] == ecs.SEVERITY["high"]
    assert psexec["host"]["name"] == "WS01.corp.local"
    assert psexec["rule"]["id"] == synthetic.PSEXEC.rule_id and psexec["rule"]["name"] == "PsExec service installed"
    assert psexec["threat"]["technique"]["id"] == ["T1543", "T1569"]
    assert psexec["threat"]["technique"]["subtechnique"]["id"] == ["T1543.003", "T1569.002"]
    assert psexec["threat"]["technique"]["subtechnique"]["name"] == ["Windows Service", "Service Execution"]
    assert psexec["threat"]["tactic"]["name"] == ["Persistence", "Execution"]
    assert psexec["winlog"]["event_id"] == "7045" and psexec["winlog"]["event_data"]["ServiceName"] == "PSEXESVC"
    assert psexec["event"]["category"] == ["configuration", "process"] and psexec["event"]["type"] == ["creation"]
    # The remote source and account of the example PsExec run reach source.* and user.*.
    share = next(d for d in docs if d["winlog"].get("event_id") == "5145")
    assert share["source"]["ip"] == "10.20.4.17"
    assert share["user"] == {"name": "helpdesk.adm", "domain": "CORP"}
    sysmon1 = next(d for d in docs if d["winlog"].get("event_id") == "1")
    assert sysmon1["process"]["pid"] == 5732 and sysmon1["process"]["parent"]["pid"] == 692
    assert sysmon1["svchunt"]["incident"]["id"].startswith("inc-")
    # A source that is not an IP address (a workstation name, hostile text) never lands in source.ip.
    chain = by_id[next(a.alert_id for a in result.alerts if a.rule is synthetic.LATERAL)]
    assert chain["source"]["ip"] == "10.0.0.66" and chain["source"]["domain"] == synthetic.XSS_IMG


def test_ecs_leaves_out_empty_values_and_bad_addresses(tmp_path):
    alert = Alert(
        rule=RuleInfo("r1", "t", "low"), timestamp="2024-01-01T00:00:00.000000Z", computer=None,
        evidence=[Evidence("x.jsonl", None, 5145, "Security", None, line=1)],
        fields={"IpAddress": "not-an-ip", "ProcessId": "0x1f4", "Empty": ""},
    )  # fmt: skip
    doc = ecs.ecs_document(alert, None)
    assert _schema("ecs_schema.json").is_valid(doc)
    leaves = _leaves(doc)
    assert "source.ip" not in leaves and leaves["source.address"] == "not-an-ip"
    assert leaves["process.pid"] == 500 and "host" not in doc  # hex pid read as a number; no host, no field
    assert all(v not in ("", None, [], {}) for v in leaves.values())


# ---------------------------------------------------------------- Timesketch
def test_timesketch_jsonl_has_required_fields_and_sorted_times(tmp_path, examples):
    path = tmp_path / "t.jsonl"
    alerts = examples.alerts
    stats = timesketch.write_timesketch(alerts, build_incidents(alerts), str(path))
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert stats.written == len(rows) == len(alerts) and stats.untimed == 0
    validator = _schema("timesketch_schema.json")
    for row in rows:
        assert not list(validator.iter_errors(row)), row
        parsed = datetime.fromisoformat(row["datetime"])
        assert parsed.utcoffset().total_seconds() == 0
        assert row["timestamp"] == int(parsed.timestamp()) * 1_000_000 + parsed.microsecond
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    pipe = next(r for r in rows if r.get("detail_field") == "PipeName")
    assert pipe["message"].startswith("[high] Sysinternals PsExec named pipe") and "\\PSEXESVC" in pipe["message"]
    assert pipe["incident_title"].startswith("Sysinternals PsExec remote execution")
    assert pipe["hostname"] == "FS01.corp.example.org"


def test_timesketch_csv_neutralises_formulas_and_counts_untimed(tmp_path):
    result = synthetic.sample_result()
    for i, hostile in enumerate(synthetic.CSV_HOSTILE):
        result.alerts[i].fields["ServiceName"] = hostile
        result.alerts[i].computer = hostile
    path = tmp_path / "t.csv"
    stats = timesketch.write_timesketch(result.alerts, build_incidents(result.alerts), str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {"message", "datetime", "timestamp_desc"} <= set(rows[0])
    untimed = sum(1 for a in result.alerts if not a.timestamp and not any(e.timestamp for e in a.evidence))
    assert untimed == 1 and stats.untimed == untimed and len(rows) == len(result.alerts) - untimed
    for row in rows:
        assert row["message"] and row["timestamp_desc"]
        datetime.fromisoformat(row["datetime"])
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    assert any(row["hostname"] == "'" + next(iter(synthetic.CSV_HOSTILE)) for row in rows)


def test_timesketch_refuses_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        timesketch.write_timesketch([], [], str(tmp_path / "t.txt"))


# ---------------------------------------------------------------- CLI: hunt and report write them all
def test_hunt_and_report_write_incident_outputs(tmp_path):
    out = {k: tmp_path / f"{k}" for k in ("i.jsonl", "t.csv", "e.jsonl", "s.json", "c.duckdb", "i2.jsonl", "t2.jsonl")}
    runner = CliRunner()
    res = runner.invoke(cli, [
        "hunt", str(REPO / "examples"), "--workers", "1", "--incidents", str(out["i.jsonl"]),
        "--timesketch", str(out["t.csv"]), "--ecs", str(out["e.jsonl"]), "--summary-json", str(out["s.json"]),
        "--case", str(out["c.duckdb"]), "--timeline",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    incidents = [orjson.loads(line) for line in out["i.jsonl"].read_bytes().splitlines()]
    assert len(incidents) == 5 and incidents[0]["level"] == "critical"
    summary = orjson.loads(out["s.json"].read_bytes())
    assert [i["incident_id"] for i in summary["incidents"]] == [i["incident_id"] for i in incidents]
    assert sum(i["alerts"] for i in incidents) == summary["alerts"]
    # The terminal: incidents first, then the timeline, then the files written.
    text = res.output
    assert text.index("Incidents (5)") < text.index("Timeline") < text.index("Alerts by level")
    for path in (out["i.jsonl"], out["t.csv"], out["e.jsonl"], out["c.duckdb"]):
        assert str(path) in text
    assert "Impacket smbexec" in text and "PipeName" in text
    # The case holds the incidents table; `report` rebuilds the same incidents from the merged alerts.
    res = runner.invoke(cli, ["query", str(out["c.duckdb"]), "SELECT incident_id, alerts FROM incidents"])
    assert res.exit_code == 0 and all(i["incident_id"] in res.output for i in incidents)
    res = runner.invoke(cli, ["report", str(out["c.duckdb"]), "--incidents", str(out["i2.jsonl"]),
                              "--timesketch", str(out["t2.jsonl"])])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert out["i2.jsonl"].read_bytes() == out["i.jsonl"].read_bytes()
    assert len(out["t2.jsonl"].read_bytes().splitlines()) == summary["alerts"]
    bad = runner.invoke(cli, ["hunt", str(REPO / "examples"), "--timesketch", str(tmp_path / "t.xlsx")])
    assert bad.exit_code == 2 and ".csv or .jsonl" in bad.output


def test_incidents_jsonl_round_trip(tmp_path):
    result = synthetic.sample_result()
    incidents = build_incidents(result.alerts)
    path = tmp_path / "i.jsonl"
    assert incidents_out.write_incidents(incidents, str(path)) == len(incidents)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["incident_id"] for line in lines] == [i.incident_id for i in incidents]
    assert {"incident_id", "host", "start", "end", "title", "level", "claims", "techniques", "source",
            "services", "images", "alert_ids"} <= set(lines[0])  # fmt: skip
    assert sorted(a for line in lines for a in line["alert_ids"]) == sorted(a.alert_id for a in result.alerts)

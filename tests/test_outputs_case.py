"""DuckDB case file: runs appended, alerts deduplicated, faithful round trip, read-only queries, CLI."""

from __future__ import annotations

import json
import sys

import duckdb
import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from svchunt.cli.main import cli
from svchunt.model import HuntResult, RunStats
from svchunt.outputs import case

sys.path.insert(0, str(FIXTURES / "outputs"))
import synthetic  # noqa: E402


@pytest.fixture
def case_file(tmp_path):
    path = str(tmp_path / "case.duckdb")
    case.write_case(
        path,
        synthetic.sample_result(),
        {
            "run_id": "run-1",
            "started": "2024-01-01T00:00:00Z",
            "finished": "2024-01-01T00:01:00Z",
            "args": ["hunt", "logs/"],
        },
    )
    return path


def test_round_trip_keeps_alerts_evidence_and_ids(case_file):
    original = synthetic.sample_result()
    back = case.read_case(case_file)
    assert [a.to_dict() for a in back.alerts] == [
        a.to_dict() for a in sorted(original.alerts, key=lambda a: a.sort_key())
    ]
    corr = next(a for a in back.alerts if a.kind == "correlation")
    assert [e.record_id for e in corr.evidence] == [3001, 88100, 88130]  # stored order kept
    assert corr.extra["events"][1]["LogonType"] == 3
    psexec = next(a for a in back.alerts if a.rule.rule_id == synthetic.PSEXEC.rule_id)
    assert (
        psexec.rule.falsepositives == synthetic.PSEXEC.falsepositives
        and psexec.rule.path == synthetic.PSEXEC.path
    )
    assert back.stats.records_read == original.stats.records_read
    assert back.problems == original.problems
    assert sorted(back.refused, key=lambda r: r.path) == sorted(original.refused, key=lambda r: r.path)
    assert back.notes == original.notes


def test_second_run_appends_without_duplicating(case_file):
    second = synthetic.sample_result()
    extra = synthetic.many_alerts(5, hosts=2)
    second.alerts.extend(extra.alerts)
    second.alerts.append(second.alerts[0])  # the same alert twice in one run is stored once too
    info = case.write_case(case_file, second, {"started": "2024-02-01T00:00:00Z"})
    assert info["alerts_new"] == 5 and info["alerts_total"] == len(synthetic.sample_result().alerts) + 5
    back = case.read_case(case_file)
    assert len(back.alerts) == len(synthetic.sample_result().alerts) + 5
    assert len({a.alert_id for a in back.alerts}) == len(back.alerts)
    assert back.stats.records_read == 2 * synthetic.sample_result().stats.records_read
    assert len(back.problems) == 2 * len(synthetic.sample_result().problems)
    assert len(back.refused) == len(synthetic.sample_result().refused)  # same refusals are not repeated
    cols, rows = case.query(case_file, "SELECT count(*) FROM evidence")
    assert rows[0][0] == sum(len(a.evidence) for a in back.alerts)
    runs = case.runs(case_file)
    assert [r["run_id"] for r in runs][0] == "run-1" and len(runs) == 2
    assert runs[1]["alerts_new"] == 5 and set(runs[1]["hosts"]) >= {"WS000.corp.local"}


def test_same_run_id_twice_is_refused_and_case_unchanged(case_file):
    with pytest.raises(ValueError, match="already in this case"):
        case.write_case(case_file, synthetic.sample_result(), {"run_id": "run-1"})
    assert len(case.runs(case_file)) == 1


def test_empty_run(tmp_path):
    path = str(tmp_path / "empty.duckdb")
    case.write_case(path, HuntResult(alerts=[], stats=RunStats(files=1), problems=[], refused=[]), {})
    back = case.read_case(path)
    assert back.alerts == [] and back.stats.files == 1


def test_query_is_read_only_and_json_fields_queryable(case_file):
    cols, rows = case.query(
        case_file,
        "SELECT fields->>'ServiceName' AS svc FROM alerts WHERE rule_id = ? ".replace(
            "?", f"'{synthetic.PSEXEC.rule_id}'"
        ),
    )
    assert cols == ["svc"] and rows == [("PSEXESVC",)]
    with pytest.raises(duckdb.Error):
        case.query(case_file, "DELETE FROM alerts")
    with pytest.raises(duckdb.Error):
        case.query(case_file, "SELECT * FROM read_csv('/etc/hostname')")
    assert case.query(case_file, "SELECT count(*) FROM alerts")[1][0][0] == len(
        synthetic.sample_result().alerts
    )


def test_read_missing_case(tmp_path):
    with pytest.raises(FileNotFoundError):
        case.read_case(str(tmp_path / "nope.duckdb"))


def test_cli_query_prints_table_and_escapes(case_file):
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "query",
            case_file,
            "SELECT computer, count(*) AS n FROM alerts GROUP BY ALL ORDER BY n DESC, computer",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "DC01.corp.local" in res.output and synthetic.HOSTILE_HOST in res.output
    assert "5 row(s)" in res.output
    bad = runner.invoke(cli, ["query", case_file, "DROP TABLE alerts"])
    assert bad.exit_code != 0 and case_file in bad.output


def test_cli_report_renders_outputs(case_file, tmp_path):
    html, layer, jl = tmp_path / "r.html", tmp_path / "l.json", tmp_path / "a.jsonl"
    res = CliRunner().invoke(
        cli, ["report", case_file, "--html", str(html), "--navigator", str(layer), "--jsonl", str(jl)]
    )
    assert res.exit_code == 0, res.output
    assert "svchunt-data" in html.read_text(encoding="utf-8") and "run-1" in html.read_text(encoding="utf-8")
    assert {t["techniqueID"] for t in json.loads(layer.read_text())["techniques"]} >= {
        "T1543.003",
        "T1021.002",
    }
    assert len(jl.read_text().splitlines()) == len(synthetic.sample_result().alerts)
    summary = CliRunner().invoke(cli, ["report", case_file])
    assert summary.exit_code == 0 and "Alerts by rule" in summary.output


def test_cli_report_on_non_case_file(tmp_path):
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    res = CliRunner().invoke(cli, ["report", str(junk), "--html", str(tmp_path / "r.html")])
    assert res.exit_code != 0 and "cannot read case file" in res.output


def _counted_run(tmp_path):
    """A hunt with a flagged record (a timestamp out of range), a skipped record and a skipped file."""
    from svchunt.engine.hunt import HuntOptions, run_hunt

    good = {"EventID": 7045, "Channel": "System", "Hostname": "FS01", "ServiceName": "updsvc",
            "ImagePath": "C:\\Users\\Public\\updsvc.exe", "@timestamp": "2024-05-01T10:00:00Z", "RecordNumber": 1}
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [good, good | {"RecordNumber": 2, "@timestamp": "9999-12-31T23:30:00-05:00"}]
    (logs / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "{broken\n")
    (logs / "empty.json").write_bytes(b"")
    return run_hunt(HuntOptions(paths=[str(logs)]))


def test_flagged_records_and_skipped_files_read_back_as_counted(tmp_path):
    result = _counted_run(tmp_path)
    stats = result.stats
    assert (stats.records_flagged, stats.records_skipped, stats.files_skipped) == (1, 1, 1)
    path = str(tmp_path / "case.duckdb")
    case.write_case(path, result, {"run_id": "r1"})
    back = case.read_case(path)
    assert back.problems == result.problems and any(p.kept for p in back.problems)
    for name in ("records_read", "records_flagged", "records_skipped", "files_skipped", "records_matched"):
        assert getattr(back.stats, name) == getattr(stats, name), name
    [run] = case.runs(path)
    assert (run["records_flagged"], run["files_skipped"], run["records_skipped"]) == (1, 1, 1)


def test_a_case_written_before_the_flag_counts_is_upgraded(tmp_path):
    path = str(tmp_path / "old.duckdb")
    case.write_case(path, synthetic.sample_result(), {"run_id": "old"})
    con = duckdb.connect(path)
    con.execute("ALTER TABLE runs DROP COLUMN records_flagged")
    con.execute("ALTER TABLE runs DROP COLUMN files_skipped")
    con.close()
    result = _counted_run(tmp_path)
    case.write_case(path, result, {"run_id": "new"})
    rows = {r["run_id"]: r for r in case.runs(path)}
    assert rows["old"]["records_flagged"] is None and rows["new"]["records_flagged"] == 1
    assert rows["new"]["files_skipped"] == 1
    assert case.read_case(path).stats.records_flagged == 1


def test_every_kept_problem_reads_back_kept(tmp_path):
    """Not only flagged events: a rebuilt EVTX header or a record-number jump is kept too, and says so."""
    from svchunt.model import Problem

    kept = [Problem("a.evtx", "file header", "damaged (x): chunks read with a rebuilt header", kept=True),
            Problem("a.evtx", "file", "record numbers jump from 4 to 90000 after chunk 0", kept=True)]
    assert all(Problem.from_row(p.source, p.position, p.reason) == p for p in kept)
    result = HuntResult(alerts=[], stats=RunStats(records_flagged=2), problems=kept, refused=[])
    path = str(tmp_path / "case.duckdb")
    case.write_case(path, result, {"run_id": "r"})
    back = case.read_case(path)
    assert back.problems == kept
    assert (back.stats.records_flagged, back.stats.files_skipped) == (2, 0)

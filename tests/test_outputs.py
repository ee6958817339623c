"""JSONL, CSV, terminal summary, Navigator layer and HTML safety checks that need no browser."""

from __future__ import annotations

import csv
import json
import re
import sys
from base64 import b64encode
from hashlib import sha256

import orjson
import pytest
from conftest import FIXTURES
from rich.console import Console

from svchunt.model import LEVELS, Alert, RuleInfo
from svchunt.outputs import csv_out, html_report, jsonl, navigator, terminal

sys.path.insert(0, str(FIXTURES / "outputs"))
import synthetic  # noqa: E402


@pytest.fixture
def result():
    return synthetic.sample_result()


# ---------------------------------------------------------------- JSONL
def test_jsonl_one_alert_per_line_and_deterministic(tmp_path, result):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert jsonl.write_jsonl(result.alerts, str(a)) == len(result.alerts)
    jsonl.write_jsonl(list(reversed(result.alerts)), str(b))
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_bytes().splitlines()
    assert len(lines) == len(result.alerts)
    decoded = [orjson.loads(line) for line in lines]
    assert {d["alert_id"] for d in decoded} == {al.alert_id for al in result.alerts}
    corr = next(d for d in decoded if d["kind"] == "correlation")
    assert len(corr["evidence"]) == 3 and corr["group"] == {"Computer": "DC01.corp.local"}
    hostile = next(d for d in decoded if d["fields"].get("ServiceName") == synthetic.XSS_SCRIPT)
    assert hostile["fields"]["AccountName"] == synthetic.XSS_LINK


# ---------------------------------------------------------------- CSV
def _csv_alert(value: str, n: int) -> Alert:
    from svchunt.model import Evidence

    rule = RuleInfo(rule_id=f"r{n}", title=value, level="high", tags=("attack.t1543.003",))
    ev = Evidence(
        source=value, record_id=n, event_id=7045, channel="System", timestamp="2020-01-01T00:00:00.000000Z"
    )
    return Alert(
        rule=rule,
        timestamp=ev.timestamp,
        computer=value,
        evidence=[ev],
        fields={"ServiceName": value, "ImagePath": "C:\\ok.exe", "EventID": 7045},
    )


def test_csv_neutralises_formula_cells(tmp_path, result):
    alerts = [_csv_alert(v, i) for i, v in enumerate(synthetic.CSV_HOSTILE)] + result.alerts
    out = tmp_path / "a.csv"
    assert csv_out.write_csv(alerts, str(out)) == len(alerts)
    with out.open(encoding="utf-8", newline="") as fh:  # newline="" keeps a CR inside a cell as data
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(alerts)
    by_service = {r["ServiceName"]: r for r in rows}
    for value in synthetic.CSV_HOSTILE:
        row = by_service["'" + value]  # each hostile service name is present, prefixed
        for column in ("title", "computer", "ServiceName"):
            assert row[column] == "'" + value, column
        assert row["evidence"].startswith("'")
        assert row["ImagePath"] == "C:\\ok.exe"  # harmless cells untouched
    # No cell anywhere starts with a formula character.
    for r in rows:
        for column, cell in r.items():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (column, cell)


def test_csv_columns_and_evidence_refs(tmp_path, result):
    out = tmp_path / "a.csv"
    csv_out.write_csv(result.alerts, str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert tuple(rows[0].keys()) == csv_out.COLUMNS
    corr = next(r for r in rows if r["kind"] == "correlation")
    assert corr["evidence"].split(" | ") == [
        "logs/DC01-System.evtx#3001",
        "logs/DC01-Security.evtx#88100",
        "logs/DC01-Security.evtx#88130",
    ]
    sysmon = next(r for r in rows if r["EventID"] == "13")
    assert sysmon["evidence"] == "logs/ws02-sysmon.jsonl:42"
    psexec = next(r for r in rows if r["ServiceName"] == "PSEXESVC")
    assert psexec["techniques"] == "T1543.003;T1569.002"
    assert json.loads(psexec["fields_json"])["StartType"] == "demand start"


# ---------------------------------------------------------------- terminal
def test_terminal_summary_counts_and_escapes_markup(result):
    console = Console(record=True, width=200, color_system=None)
    terminal.render_summary(result, console)
    text = console.export_text()
    # Attacker-controlled strings print literally instead of being interpreted as rich markup.
    assert synthetic.HOSTILE_HOST in text
    assert synthetic.XSS_SCRIPT in text  # refused rule title
    for expected in (
        "PsExec service installed",
        "bad chunk checksum",
        "logs/broken.evtx (record 12)",
        "unsupported: near aggregation",
        "rules/uses_near.yml",
        "25311",
        "first run on host",
    ):
        assert expected in text
    assert re.search(r"critical\s+2", text) and re.search(r"records skipped\s+3", text)


def test_terminal_summary_markup_in_host_does_not_break(result):
    result.alerts[0].computer = synthetic.RICH_MARKUP
    console = Console(record=True, width=200, color_system=None)
    terminal.render_summary(result, console)
    assert synthetic.RICH_MARKUP in console.export_text()


def test_terminal_summary_limits_rows():
    big = synthetic.many_alerts(300, hosts=80)
    console = Console(record=True, width=160, color_system=None)
    terminal.render_summary(big, console, max_rows=10)
    text = console.export_text()
    hosts = {a.computer for a in big.alerts}
    assert len(hosts) > 10
    assert f"… {len(hosts) - 10} more" in text  # hosts beyond the first 10


# ---------------------------------------------------------------- Navigator
def _validate_layer(layer: dict) -> None:
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema not installed (pip install -e '.[test]')"
    )
    schema = json.loads((FIXTURES / "outputs" / "layer_schema.json").read_text())
    jsonschema.validate(layer, schema)


def test_alerts_layer_validates_and_counts(tmp_path, result):
    layer = navigator.alerts_layer(result.alerts)
    _validate_layer(layer)
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    # T1543.003: PsExec, user path, registry, 4697, baseline = 5; T1569.002: PsExec + correlation.
    assert scores == {"T1543.003": 5, "T1569.002": 2, "T1112": 1, "T1059.003": 1, "T1021.002": 1}
    t1569 = next(t for t in layer["techniques"] if t["techniqueID"] == "T1569.002")
    assert t1569["color"] == navigator.LEVEL_COLOURS["critical"]
    assert "DC01.corp.local" in t1569["comment"] and "WS01.corp.local" in t1569["comment"]
    path = tmp_path / "layer.json"
    navigator.write_layer(layer, str(path))
    assert json.loads(path.read_text()) == layer


def test_alerts_layer_level_score_and_bad_tags(result):
    odd = RuleInfo(
        rule_id="x", title="odd tags", level="high", tags=("attack.t15", "attack.t1543.0031", "attack.t1003")
    )
    result.alerts.append(Alert(rule=odd, timestamp=None, computer="h", evidence=[], fields={}))
    layer = navigator.alerts_layer(result.alerts, score="level")
    _validate_layer(layer)
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    assert "T15" not in scores and "T1543.0031" not in scores
    assert scores["T1003"] == LEVELS.index("high") + 1
    assert scores["T1543.003"] == LEVELS.index("critical") + 1


def test_coverage_layer(result):
    rules = [synthetic.PSEXEC, synthetic.SUSP_PATH, synthetic.LATERAL, synthetic.INFO]
    layer = navigator.coverage_layer(rules)
    _validate_layer(layer)
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    assert scores == {"T1543.003": 2, "T1569.002": 2, "T1021.002": 1}


def test_layer_schema_rejects_broken_layer(result):
    jsonschema = pytest.importorskip("jsonschema")
    layer = navigator.alerts_layer(result.alerts)
    layer["versions"]["layer"] = "4.2"
    with pytest.raises(jsonschema.ValidationError):
        _validate_layer(layer)


# ---------------------------------------------------------------- HTML (static)
def _data_block(page: str) -> str:
    m = re.search(r'<script id="svchunt-data" type="application/json">(.*?)</script>', page, re.S)
    assert m
    return m.group(1)


def test_html_embeds_data_without_markup(result):
    result.alerts[0].fields["Note"] = "line\u2028sep\u2029 & </script>"
    page = html_report.render_html(result, audit={"findings": [{"x": synthetic.XSS_SCRIPT}]})
    block = _data_block(page)
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\u2028" not in block and "\u2029" not in block
    data = json.loads(block)
    assert len(data["alerts"]) == len(result.alerts)
    values = json.dumps(data)
    for hostile in synthetic.HOSTILE:
        assert json.dumps(hostile)[1:-1] in values
    # Exactly two script elements: data and our own code; hostile markup never appears raw in the page.
    assert page.count("<script") == 2
    for hostile in synthetic.HOSTILE:
        if "<" in hostile:
            assert hostile not in page


def test_html_csp_is_strict_and_hash_matches(result):
    page = html_report.render_html(result)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "unsafe-eval" not in csp and "http" not in csp
    script = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    digest = b64encode(sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    # Self-contained: nothing is fetched from elsewhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page


def test_html_title_escaped_and_correlation_events(tmp_path, result):
    out = tmp_path / "r.html"
    html_report.write_html(str(out), result, title="case <b>x</b>")
    page = out.read_text(encoding="utf-8")
    assert "<title>case &lt;b&gt;x&lt;/b&gt;</title>" in page
    data = json.loads(_data_block(page))
    corr = next(a for a in data["alerts"] if a["kind"] == "correlation")
    assert [e["fields"]["EventID"] for e in corr["evidence"]] == [7045, 4624, 4688]
    assert "events" not in corr["extra"] and corr["extra"]["timespan"] == "5m"
    # Rule text is stored once per rule; alerts point at it.
    assert len(data["rules"]) == len({a.rule.rule_id for a in result.alerts})
    single = next(
        a for a in data["alerts"] if data["rules"][a["rule"]]["rule_id"] == synthetic.PSEXEC.rule_id
    )
    assert data["rules"][single["rule"]]["techniques"] == ["T1543.003", "T1569.002"]
    assert single["fields"]["ServiceName"] == "PSEXESVC" and "fields" not in single["evidence"][0]


def test_alerts_without_group_or_extra_share_one_empty_value_that_cannot_change() -> None:
    """Plain detections share the empty `group`/`extra` (memory per alert); a change to it would leak into
    every alert, so it refuses, and it stays shared through pickling (worker to parent) and copies."""
    import copy
    import pickle

    from svchunt.model import NO_VALUES

    rule = RuleInfo("r1", "t", "high")
    a = Alert(rule, None, None, [], {})
    b = Alert(rule, None, None, [], {})
    assert a.group is b.group is a.extra is NO_VALUES
    assert a.group == {} and not a.extra and orjson.dumps(a.extra) == b"{}"
    for change in (
        lambda d: d.__setitem__("k", 1), lambda d: d.update(k=1), lambda d: d.setdefault("k", 1), lambda d: d.clear()
    ):
        with pytest.raises(TypeError):
            change(a.extra)
    assert NO_VALUES == {}
    assert pickle.loads(pickle.dumps(a)).extra is NO_VALUES and copy.deepcopy(a).group is NO_VALUES
    own = Alert(rule, None, None, [], {}, kind="correlation", group={"Computer": "h"}, extra={"n": 2})
    own.extra["n"] = 3
    assert own.extra == {"n": 3} and a.extra == {}

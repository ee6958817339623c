"""`svchunt hunt` and `svchunt rules check` end to end, through the real command line."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import REPO

EXAMPLES = REPO / "examples"
SHAPES = REPO / "tests" / "fixtures" / "sources"
REQUIRED = {"rule_id", "title", "level", "tags", "covers", "timestamp", "computer", "evidence", "fields"}


def svchunt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "svchunt.cli.main", *args], capture_output=True, text=True, cwd=cwd, env=os.environ
    )


def alerts_of(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def test_examples_give_alerts_with_evidence_and_deterministic_output(tmp_path):
    out1, out2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    summary = tmp_path / "s.json"
    r = svchunt("hunt", str(EXAMPLES), "--jsonl", str(out1), "--summary-json", str(summary), "-q")
    assert r.returncode == 0, r.stderr
    alerts = alerts_of(out1)
    assert len(alerts) >= 10
    for alert in alerts:
        assert REQUIRED <= alert.keys()
        assert alert["timestamp"].endswith("Z")
        for ev in alert["evidence"]:
            assert {"source", "record_id", "event_id", "channel"} <= ev.keys()
            assert ev["source"].startswith(str(EXAMPLES))
    # The PsExec install on FS01 is found, with the 7045's own EventRecordID as evidence.
    psexec = [a for a in alerts if a["fields"].get("ServiceName") == "PSEXESVC" and a["evidence"][0]["event_id"] == 7045]
    assert psexec and all(isinstance(a["evidence"][0]["record_id"], int) for a in psexec)
    counts = orjson.loads(summary.read_bytes())
    assert counts["records_read"] == sum(1 for f in EXAMPLES.glob("*.jsonl") for line in f.open() if line.strip())
    assert counts["alerts"] == len(alerts) and counts["records_skipped"] == 0
    # Same input, same bytes: output order does not depend on worker scheduling.
    assert svchunt("hunt", str(EXAMPLES), "--jsonl", str(out2), "-q", "--workers", "1").returncode == 0
    assert out1.read_bytes() == out2.read_bytes()


def _alert_keys(path: Path) -> list[tuple]:
    # Milliseconds: NXLog's and Winlogbeat's @timestamp carry no finer time than that.
    return sorted(
        (a["rule_id"], a["timestamp"][:23], a["computer"], tuple(e["record_id"] for e in a["evidence"]))
        for a in alerts_of(path)
    )


def test_the_same_events_in_every_shape_give_the_same_alerts(tmp_path):
    results = []
    for shape in ("nested", "wrapped", "flat", "ecs"):
        out = tmp_path / f"{shape}.jsonl"
        r = svchunt("hunt", str(SHAPES / f"shapes_{shape}.jsonl"), "--jsonl", str(out), "-q")
        assert r.returncode == 0, r.stderr
        results.append(_alert_keys(out))
    assert results[0], "the shape fixture should raise alerts"
    assert all(r == results[0] for r in results[1:])


def test_compressed_input_gives_the_same_alerts(tmp_path):
    plain, packed = tmp_path / "plain.jsonl", tmp_path / "packed.jsonl"
    src = EXAMPLES / "psexec_lateral_movement.jsonl"
    gz = tmp_path / "logs.bin"  # no telling suffix: the format is chosen by content
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert svchunt("hunt", str(src), "--jsonl", str(plain), "-q").returncode == 0
    assert svchunt("hunt", str(gz), "--jsonl", str(packed), "-q").returncode == 0
    assert _alert_keys(plain) == _alert_keys(packed) != []


def test_exit_status_only_fails_on_usage_or_nothing_readable(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n\x00\x01garbage\n")
    r = svchunt("hunt", str(broken), "-q", "--summary-json", str(tmp_path / "s.json"))
    assert r.returncode == 1 and "nothing could be read" in r.stderr
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert summary["records_skipped"] == 2
    assert {p["position"] for p in summary["problems"]} == {"line 1", "line 2"}

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "broken.jsonl").write_text("{not json\n")
    (mixed / "good.jsonl").write_bytes((EXAMPLES / "psexec_lateral_movement.jsonl").read_bytes())
    r = svchunt("hunt", str(mixed), "-q", "--summary-json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    summary = orjson.loads((tmp_path / "m.json").read_bytes())
    assert summary["records_read"] > 0 and summary["records_skipped"] == 1 and summary["alerts"] > 0

    assert svchunt("hunt", str(mixed), "--no-builtin").returncode == 2
    assert svchunt("hunt", str(mixed), "--since", "yesterday").returncode == 2
    assert svchunt("hunt", str(tmp_path / "missing")).returncode == 1


def test_min_level_and_time_window_filter_alerts(tmp_path):
    every, high, window = tmp_path / "all.jsonl", tmp_path / "high.jsonl", tmp_path / "win.jsonl"
    assert svchunt("hunt", str(EXAMPLES), "--jsonl", str(every), "-q").returncode == 0
    assert svchunt("hunt", str(EXAMPLES), "--jsonl", str(high), "--min-level", "high", "-q").returncode == 0
    all_alerts, high_alerts = alerts_of(every), alerts_of(high)
    assert 0 < len(high_alerts) < len(all_alerts)
    assert all(a["level"] in ("high", "critical") for a in high_alerts)
    times = sorted(a["timestamp"] for a in all_alerts)
    day = times[0][:10]
    r = svchunt("hunt", str(EXAMPLES), "--jsonl", str(window), "--since", day, "--until", day + "T23:59:59", "-q")
    assert r.returncode == 0
    in_window = alerts_of(window)
    assert 0 < len(in_window) < len(all_alerts) and all(a["timestamp"].startswith(day) for a in in_window)


RULE = """title: Test service {value}
id: 6d1c0f3e-1111-4a6b-9c1d-{suffix}
status: test
logsource: {{product: windows, service: system}}
detection:
    selection: {{EventID: 7045, ServiceName: '{value}'}}
    condition: selection
level: high
"""


def test_rules_check_lists_every_refusal_with_its_reason(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text(RULE.format(value="PSEXESVC", suffix="000000000001"))
    (rules / "bad_yaml.yml").write_text("title: [unclosed\n")
    (rules / "linux.yml").write_text(
        RULE.format(value="x", suffix="000000000002").replace("product: windows, service: system", "product: linux")
    )
    (rules / "backref.yml").write_text(
        RULE.format(value="x", suffix="000000000003").replace("ServiceName: 'x'", "ServiceName|re: '(a)\\1'")
    )
    r = svchunt("rules", "check", str(rules), "--json")
    assert r.returncode == 0, r.stderr
    report = orjson.loads(r.stdout)
    assert report["rules_loaded"] == 1
    reasons = {Path(x["path"]).name: x["reason"] for x in report["refused"]}
    assert set(reasons) == {"bad_yaml.yml", "linux.yml", "backref.yml"}
    assert "YAML" in reasons["bad_yaml.yml"]
    assert "linux" in reasons["linux.yml"]
    assert "RE2" in reasons["backref.yml"]
    assert svchunt("rules", "check", str(rules), "--strict").returncode == 1


def test_rule_cache_never_serves_a_stale_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("SVCHUNT_CACHE_DIR", str(tmp_path / "cache"))
    rule = tmp_path / "r.yml"
    src = EXAMPLES / "psexec_lateral_movement.jsonl"
    out = tmp_path / "o.jsonl"
    rule.write_text(RULE.format(value="PSEXESVC", suffix="000000000004"))
    assert svchunt("hunt", str(src), "--rules", str(rule), "--no-builtin", "--jsonl", str(out), "-q").returncode == 0
    assert len(alerts_of(out)) == 1
    assert list((tmp_path / "cache").glob("rules-*.pickle")), "the first run fills the cache"
    rule.write_text(RULE.format(value="SomethingElse", suffix="000000000004"))  # same path, new content
    assert svchunt("hunt", str(src), "--rules", str(rule), "--no-builtin", "--jsonl", str(out), "-q").returncode == 0
    assert alerts_of(out) == []


@pytest.mark.parametrize("flag", ["--csv", "--html", "--navigator", "--case"])
def test_every_output_is_written(tmp_path, flag):
    target = tmp_path / ("case.duckdb" if flag == "--case" else "out")
    r = svchunt("hunt", str(EXAMPLES), flag, str(target), "-q")
    assert r.returncode == 0, r.stderr
    assert target.exists() and target.stat().st_size > 100


def test_state_file_builds_a_baseline_then_reports_new_services(tmp_path):
    state = tmp_path / "state.duckdb"
    first = svchunt("hunt", str(EXAMPLES / "psexec_lateral_movement.jsonl"), "--state", str(state),
                    "--summary-json", str(tmp_path / "1.json"), "-q")
    assert first.returncode == 0, first.stderr
    notes = orjson.loads((tmp_path / "1.json").read_bytes())["notes"]
    assert any("baseline built for host" in n for n in notes)
    again = svchunt("hunt", str(EXAMPLES / "psexec_lateral_movement.jsonl"), "--state", str(state),
                    "--jsonl", str(tmp_path / "2.jsonl"), "-q")
    assert again.returncode == 0
    assert not [a for a in alerts_of(tmp_path / "2.jsonl") if a["kind"] == "baseline"]


def test_a_folder_of_bad_inputs_is_read_around_and_every_problem_reported(tmp_path):
    import zipfile

    from conftest import shared

    sample = shared("evtx-attack-samples", "Lateral Movement", "LM_Remote_Service02_7045.evtx")
    bag = tmp_path / "bag"
    bag.mkdir()
    data = sample.read_bytes()
    (bag / "truncated.evtx").write_bytes(data[:6000])  # cut through the records of its only chunk
    (bag / "broken.jsonl").write_text('{"EventID": 7045\n' + (EXAMPLES / "malicious_services_nxlog.jsonl").read_text())
    (bag / "empty.jsonl").write_bytes(b"")
    with zipfile.ZipFile(bag / "collection.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../../etc/evil.jsonl", (EXAMPLES / "psexec_lateral_movement.jsonl").read_text())
        zf.writestr("host/psexec.jsonl", (EXAMPLES / "psexec_lateral_movement.jsonl").read_text())
    with zipfile.ZipFile(bag / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.jsonl", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(150):
                member.write(chunk)
    summary = tmp_path / "s.json"
    out = tmp_path / "a.jsonl"
    r = svchunt("hunt", str(bag), "--summary-json", str(summary), "--jsonl", str(out), "-q")
    assert r.returncode == 0, r.stderr
    counts = orjson.loads(summary.read_bytes())
    by_file: dict[str, list[str]] = {}
    for p in counts["problems"]:
        by_file.setdefault(Path(p["source"].split("!")[0]).name, []).append(f"{p['position']}: {p['reason']}")
    assert {"truncated.evtx", "broken.jsonl", "empty.jsonl", "collection.zip", "bomb.zip"} <= set(by_file), by_file
    assert any(pos.startswith("line 1") for pos in by_file["broken.jsonl"])
    assert any("../" in pos for pos in by_file["collection.zip"])
    assert any("bomb" in pos.lower() or "ratio" in pos.lower() or "size" in pos.lower() for pos in by_file["bomb.zip"])
    # Everything readable was read: the good archive member and the rest of the broken file raise alerts.
    sources = {e["source"] for a in alerts_of(out) for e in a["evidence"]}
    assert any(s.endswith("collection.zip!host/psexec.jsonl") for s in sources)
    assert any(s.endswith("broken.jsonl") for s in sources)
    good_lines = sum(
        1 for f in ("malicious_services_nxlog.jsonl", "psexec_lateral_movement.jsonl")
        for line in (EXAMPLES / f).read_text().splitlines() if line.strip()
    )
    assert counts["records_read"] >= good_lines
    assert counts["records_skipped"] >= 2 and counts["files_skipped"] >= 3


def test_loldrivers_csv_extends_the_vulnerable_driver_hashes(tmp_path):
    import csv

    from conftest import shared

    drivers_csv = shared("loldrivers", "drivers.csv")
    builtin = (REPO / "src/svchunt/content/allowlists/svchunt_vulnerable_driver_hashes.txt").read_text().upper()
    with drivers_csv.open(encoding="utf-8", newline="") as fh:
        sha256 = next(
            h.strip().upper()
            for row in csv.DictReader(fh)
            for h in (row.get("KnownVulnerableSamples_SHA256") or "").split(",")
            if len(h.strip()) == 64 and h.strip().upper() not in builtin
        )
    event = {"Event": {
        "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": 6, "EventRecordID": 4242,
                   "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "ws7.example",
                   "TimeCreated": {"#attributes": {"SystemTime": "2024-03-01T10:00:00.000000Z"}}},
        "EventData": {"ImageLoaded": "C:\\Users\\bob\\AppData\\Local\\Temp\\zz81.sys",
                      "Hashes": f"SHA1=0000000000000000000000000000000000000000,MD5=00000000000000000000000000000000,"
                                f"SHA256={sha256},IMPHASH=00000000000000000000000000000000",
                      "Signed": "true", "Signature": "Some Vendor", "SignatureStatus": "Valid"}}}
    log = tmp_path / "drv.jsonl"
    log.write_bytes(orjson.dumps(event) + b"\n")
    without, with_list = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert svchunt("hunt", str(log), "--jsonl", str(without), "-q").returncode == 0
    r = svchunt("hunt", str(log), "--loldrivers", str(drivers_csv), "--jsonl", str(with_list), "-q")
    assert r.returncode == 0, r.stderr
    title = "Known vulnerable driver loaded (BYOVD)"
    assert title not in {a["title"] for a in alerts_of(without)}
    hits = [a for a in alerts_of(with_list) if a["title"] == title]
    assert [a["evidence"][0]["record_id"] for a in hits] == [4242]
    bad = svchunt("hunt", str(log), "--loldrivers", str(EXAMPLES / "psexec_lateral_movement.jsonl"), "-q")
    assert bad.returncode == 2 and "LOLDrivers" in bad.stderr

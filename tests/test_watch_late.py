"""`svchunt watch`: an event later than the allowed lateness is counted, shown in the stats and written to
the problems file while the run goes on, and still gets its single-event detections."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson

from svchunt.watch.synthetic import BASE, line

SVCHUNT = [sys.executable, "-m", "svchunt.cli.main"]


def _wait(cond, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        assert proc.poll() is None, f"watch exited early ({proc.returncode}) waiting for {what}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(r) for r in path.read_bytes().splitlines() if r.strip()] if path.exists() else []


def test_late_event_is_counted_written_as_it_goes_and_still_detected(tmp_path):
    events, alerts, problems = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl", tmp_path / "problems.jsonl"
    events.write_bytes(b"".join(line(i) for i in range(100)))  # 10 s of event time, a PsExec install at 0.7 s
    proc = subprocess.Popen(
        [*SVCHUNT, "watch", str(events), "--jsonl", str(alerts), "--problems", str(problems), "--lateness", "2",
         "--state", str(tmp_path / "state"), "--stats", "--stats-interval", "0.2", "--flush-interval", "0.05"],
        stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: any(a["fields"].get("ServiceName") == "PSEXESVC0" for a in _lines(alerts)), proc, "first alerts")
        # the same PsExec install, one hour older than anything seen: far beyond the 2 s lateness
        with events.open("ab") as fh:
            fh.write(line(7, base=BASE - timedelta(hours=1)))
        _wait(lambda: any(p.get("kind") == "late" for p in _lines(problems)), proc, "the late event in the problems file")
        late = [p for p in _lines(problems) if p.get("kind") == "late"]
        assert late == [{"source": str(events), "position": "line 101", "kind": "late", "reason": late[0]["reason"]}]
        assert "2025-12-31T23:00:00.700000Z is older than the watermark 2026-01-01T00:00:0" in late[0]["reason"]
        _wait(lambda: any(e.get("line") == 101 for a in _lines(alerts) for e in a["evidence"]), proc,
              "the single-event detection of the late event")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    stats = orjson.loads([r for r in err.decode().splitlines() if "stats {" in r][-1].split("stats ", 1)[1])
    assert stats["late_events"] == 1 and stats["events"] == 101
    assert "line 101: late event" in err.decode()
    detected = [a for a in _lines(alerts) if any(e.get("line") == 101 for e in a["evidence"])]
    assert detected and all(a["kind"] == "detection" for a in detected)

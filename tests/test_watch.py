"""`svchunt watch`: same answers as hunt, file following, restarts, bad input on every input, sinks."""

from __future__ import annotations

import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from conftest import REPO, shared

from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.watch.input_file import FileFollower
from svchunt.watch.input_http import HttpInput
from svchunt.watch.input_syslog import SyslogInput, _frames
from svchunt.watch.pipeline import Watcher, WatchOptions
from svchunt.watch.records import RecordParser
from svchunt.watch.sink_jsonl import JsonlSink, recover_tail
from svchunt.watch.sink_webhook import WebhookSink
from svchunt.watch.synthetic import event, line

SVCHUNT = [sys.executable, "-m", "svchunt.cli.main"]


# -- helpers ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset(HuntOptions(paths=[]))


def ids_of(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [orjson.loads(row)["alert_id"] for row in path.read_bytes().splitlines() if row.strip()]


def hunt_ids(paths: list[str], ruleset) -> set[str]:
    result = run_hunt(HuntOptions(paths=paths, workers=1), ruleset)
    return {a.alert_id for a in result.alerts}


def wait_until(cond, timeout: float = 15.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """A Watcher on its own thread, stopped (gracefully) at the end."""

    def __init__(self, tmp: Path, ruleset, inputs, sinks=None, **options) -> None:
        self.alerts = tmp / "alerts.jsonl"
        self.logs: list[str] = []
        sinks = sinks if sinks is not None else [JsonlSink(str(self.alerts), fsync=False)]
        opts = {"flush_interval": 0.05, **options}
        self.watcher = Watcher(WatchOptions(state_path=str(tmp / "state.db"), **opts), ruleset, inputs, sinks,
                               log=self.logs.append)
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)
        self.thread.start()

    @property
    def stats(self):
        return self.watcher.stats

    def stop(self) -> None:
        self.watcher.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()


def write_events(path: Path, indexes, mode: str = "ab", **kw) -> None:
    with path.open(mode) as fh:
        for i in indexes:
            fh.write(line(i, **kw))


# -- same answers as hunt --------------------------------------------------------------------------------
def test_same_alerts_as_hunt_on_synthetic_stream(tmp_path, ruleset):
    events = tmp_path / "events.jsonl"
    write_events(events, range(6000), "wb")
    expected = hunt_ids([str(events)], ruleset)
    run = Running(tmp_path, ruleset, [FileFollower([str(events)], once=True)], batch_size=700)
    run.thread.join(60)
    got = ids_of(run.alerts)
    assert len(got) == len(set(got))
    assert set(got) == expected and len(expected) > 200
    kinds = {orjson.loads(r)["kind"] for r in run.alerts.read_bytes().splitlines()}
    assert kinds == {"detection", "correlation"}


def test_out_of_order_within_lateness_gives_the_same_alerts(tmp_path, ruleset):
    rng = random.Random(7)
    order = list(range(4000))
    for start in range(0, len(order), 40):  # shuffle within 40 events = 4 s of event time
        block = order[start : start + 40]
        rng.shuffle(block)
        order[start : start + 40] = block
    events = tmp_path / "events.jsonl"
    write_events(events, order, "wb")
    expected = hunt_ids([str(events)], ruleset)
    run = Running(tmp_path, ruleset, [FileFollower([str(events)], once=True)], batch_size=300, lateness=30.0)
    run.thread.join(60)
    assert set(ids_of(run.alerts)) == expected
    assert not run.watcher.correlator.skipped


def _convert(tmp_path: Path, shape: str) -> Path:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import evtx_to_jsonl
    finally:
        sys.path.pop(0)
    root = shared("evtx-attack-samples")
    out = tmp_path / f"samples_{shape}.jsonl"
    written, _problems = evtx_to_jsonl.convert([str(root)], str(out), shape)
    assert written > 1000
    return out


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_replayed_evtx_samples_give_the_alerts_of_hunt(tmp_path, ruleset, shape):
    converted = _convert(tmp_path, shape)
    run = Running(tmp_path, ruleset, [FileFollower([str(converted)], once=True)], lateness=float("inf"))
    run.thread.join(120)
    got = ids_of(run.alerts)
    assert len(got) == len(set(got))
    assert set(got) == hunt_ids([str(converted)], ruleset)  # same events: identical alert ids

    def key(alert: dict) -> tuple:  # provenance (file, line) differs from the EVTX; the rest may not
        return (alert["rule_id"], alert["kind"], alert["timestamp"], alert["computer"],
                tuple(sorted((e["record_id"], e["event_id"], e["timestamp"]) for e in alert["evidence"])))

    evtx_result = run_hunt(HuntOptions(paths=[str(shared("evtx-attack-samples"))], workers=2), ruleset)
    on_evtx = {key(a.to_dict()) for a in evtx_result.alerts}
    assert {key(orjson.loads(r)) for r in run.alerts.read_bytes().splitlines()} == on_evtx
    assert len(on_evtx) > 20


# -- files: growth, partial lines, rotation, truncation, restart -----------------------------------------------
def test_follow_growth_partial_line_rotation_and_truncation(tmp_path, ruleset):
    folder = tmp_path / "logs"
    folder.mkdir()
    current = folder / "events.jsonl"
    write_events(current, range(0, 500), "wb")
    run = Running(tmp_path, ruleset, [FileFollower([str(folder)], poll_interval=0.05)])
    wait_until(lambda: run.stats.events == 500, what="first 500 events")
    with current.open("ab") as fh:  # half a line: must wait for the rest
        fh.write(line(500)[:30])
    time.sleep(0.3)
    assert run.stats.events == 500
    with current.open("ab") as fh:
        fh.write(line(500)[30:])
    write_events(current, range(501, 700))
    wait_until(lambda: run.stats.events == 700, what="growth")
    os.rename(current, folder / "events.jsonl.1")  # rotation: rename, then a new file
    with (folder / "events.jsonl.1").open("ab") as fh:  # the writer's last lines to the old file
        fh.write(line(700))
    write_events(current, range(701, 900), "wb")
    wait_until(lambda: run.stats.events == 900, what="rotation")
    with current.open("r+b") as fh:  # copytruncate
        fh.truncate(0)
    time.sleep(0.3)
    write_events(current, range(900, 950))
    wait_until(lambda: run.stats.events == 950, what="truncation")
    run.stop()
    assert any("truncated" in text for text in run.logs)
    got = ids_of(run.alerts)
    assert len(got) == len(set(got))
    # every service install (one in 50 events) gave its detections
    installs = sum(1 for i in range(950) if event(i)["EventID"] == 7045)
    per_install = {orjson.loads(r)["rule_id"] for r in run.alerts.read_bytes().splitlines()}
    assert len(got) >= installs * 2 and per_install


def test_restart_resumes_without_loss_or_repeat(tmp_path, ruleset):
    events = tmp_path / "events.jsonl"
    write_events(events, range(3000), "wb")
    run = Running(tmp_path, ruleset, [FileFollower([str(events)])], batch_size=500)
    wait_until(lambda: run.stats.events == 3000)
    run.stop()
    write_events(events, range(3000, 6000))
    rerun = Running(tmp_path, ruleset, [FileFollower([str(events)], once=True)], batch_size=500)
    rerun.thread.join(60)
    assert rerun.stats.events == 3000  # only the new part was read
    got = ids_of(rerun.alerts)
    assert len(got) == len(set(got))
    assert set(got) == hunt_ids([str(events)], ruleset)


def test_rotation_while_stopped_reads_the_rest_of_the_old_file(tmp_path, ruleset):
    folder = tmp_path / "logs"
    folder.mkdir()
    current = folder / "events.jsonl"
    write_events(current, range(1000), "wb")
    run = Running(tmp_path, ruleset, [FileFollower([str(folder)], poll_interval=0.05)])
    wait_until(lambda: run.stats.events == 1000)
    run.stop()
    write_events(current, range(1000, 1200))  # written while stopped, then rotated away
    os.rename(current, folder / "events.jsonl.1")
    write_events(current, range(1200, 1300), "wb")
    rerun = Running(tmp_path, ruleset, [FileFollower([str(folder)], once=True)])
    rerun.thread.join(30)
    assert rerun.stats.events == 300


def test_torn_sink_line_is_cut_and_its_ids_not_written_again(tmp_path):
    sink = tmp_path / "alerts.jsonl"
    sink.write_bytes(b'{"alert_id":"a1"}\n{"alert_id":"a2"}\n{"alert_id":"a3"')
    ids, notice = recover_tail(str(sink), len(b'{"alert_id":"a1"}\n'))
    assert ids == {"a2"} and notice and "torn" in notice
    assert sink.read_bytes().endswith(b'{"alert_id":"a2"}\n')


# -- bad input -------------------------------------------------------------------------------------------------
BAD_LINES = [
    b'{"EventID": 7045, "Channel": "System", broken',
    b"\x00\x01\xff\xfe garbage \x89PNG",
    b'{"no": "event"}',
    b"[1, 2, 3]",
    b'{"EventID": 7045, "Channel": "System", "ImagePath": "' + b"A" * 5000 + b'"}',
]


def test_record_parser_reports_each_kind_of_bad_record():
    parser = RecordParser()
    reasons = [parser.parse(raw, "src", n).reason for n, raw in enumerate(BAD_LINES[:4], 1)]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1].startswith("binary data")
    assert "not a Windows event" in reasons[2] and "not a Windows event" in reasons[3]
    assert parser.parse(line(7), "src", 5).fields["EventID"] == 7045


def test_bad_lines_in_a_file_are_counted_and_the_rest_flows(tmp_path, ruleset):
    events = tmp_path / "events.jsonl"
    with events.open("wb") as fh:
        for i in range(200):
            fh.write(line(i))
            if i % 40 == 0:
                fh.write(BAD_LINES[(i // 40) % len(BAD_LINES)] + b"\n")
    problems = tmp_path / "problems.jsonl"
    run = Running(tmp_path, ruleset, [FileFollower([str(events)], once=True, max_line=4096)],
                  problems_path=str(problems))
    run.thread.join(30)
    assert run.stats.events == 200
    assert run.stats.skipped == {"invalid JSON": 1, "binary data": 1, "not a Windows event (no Event, EventID or winlog)": 2,
                                 "oversized line": 1}
    rows = [orjson.loads(r) for r in problems.read_bytes().splitlines()]
    assert len(rows) == 5 and all(r["source"] == str(events) and r["position"].startswith("line ") for r in rows)
    oversized = {int(r["position"].split()[1]) for r in rows if r["reason"].startswith("oversized")}
    by_hunt = run_hunt(HuntOptions(paths=[str(events)], workers=1), ruleset).alerts
    # hunt's line limit is 16 MiB, so it also reads the oversized line; the rest is the same
    assert set(ids_of(run.alerts)) == {a.alert_id for a in by_hunt if a.evidence[0].line not in oversized}


def _post(port: int, body: bytes, token: str | None = None, headers=None) -> tuple[int, dict]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {"Content-Type": "application/x-ndjson", **(headers or {})}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    con.request("POST", "/", body=body, headers=h)
    resp = con.getresponse()
    data = orjson.loads(resp.read() or b"{}")
    con.close()
    return resp.status, data


def test_http_input_acknowledges_after_commit_and_refuses_bad_requests(tmp_path, ruleset):
    http_in = HttpInput("127.0.0.1", 0, max_body=200_000, max_line=4096, read_timeout=0.5)
    run = Running(tmp_path, ruleset, [http_in])
    wait_until(lambda: http_in._server is not None)
    port = http_in.bound_port
    body = b"".join(line(i) for i in range(100)) + b"\n".join(BAD_LINES) + b"\n"
    status, reply = _post(port, body)
    assert status == 200 and reply["received"] == 105 and reply["oversized"] == 1
    # the reply came after the commit: the batch is already counted and its alerts are in the sink
    assert run.stats.events == 100 and len(ids_of(run.alerts)) >= 4
    assert sum(run.stats.skipped.values()) == 5
    assert _post(port, b"x" * 300_000)[0] == 413
    with socket.create_connection(("127.0.0.1", port)) as sock:  # half a body, then silence
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + line(1)[:40])
        wait_until(lambda: run.stats.skipped.get("partial message") == 1, what="stalled client counted")
    status, _ = _post(port, line(150))  # and the endpoint still works
    assert status == 200 and run.stats.events == 101
    run.stop()


def test_http_off_loopback_needs_a_token_and_refuses_wrong_ones(tmp_path, ruleset):
    with pytest.raises(ValueError, match="token"):
        HttpInput("0.0.0.0", 0)
    logs: list[str] = []
    http_in = HttpInput("0.0.0.0", 0, token="s3cret", log=logs.append)
    run = Running(tmp_path, ruleset, [http_in])
    wait_until(lambda: http_in._server is not None)
    port = http_in.bound_port
    assert _post(port, line(7))[0] == 401
    assert _post(port, line(7), token="wrong")[0] == 401
    assert run.stats.events == 0
    assert _post(port, line(7), token="s3cret")[0] == 200
    assert run.stats.events == 1 and run.stats.refused["http 401"] == 2
    assert sum("401" in text for text in logs) == 2
    run.stop()


def test_cli_refuses_an_open_http_bind_without_token(tmp_path):
    proc = subprocess.run([*SVCHUNT, "watch", "--http", "0.0.0.0:0", "--state", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "SVCHUNT_HTTP_TOKEN": ""})
    assert proc.returncode == 2 and "token" in proc.stderr


def test_syslog_framing():
    msgs, rest, problems = _frames(b'12 {"a": "b c"}\n{"x": 1}\n<13>1 - h app - - - {"y"', 1000)
    assert msgs == [b'{"a": "b c"}', b'{"x": 1}'] and rest.startswith(b"<13>1") and not problems
    assert _frames(b"99999999 x", 1000)[2][0].startswith("framing error")


def test_syslog_input_octet_counting_newlines_garbage_and_stalls(tmp_path, ruleset):
    logs: list[str] = []
    syslog_in = SyslogInput("127.0.0.1", 0, max_line=4096, idle_timeout=0.3, log=logs.append)
    run = Running(tmp_path, ruleset, [syslog_in])
    wait_until(syslog_in._ready.is_set)
    port = syslog_in.bound_port
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for i in range(60):
            payload = b"<13>1 2026-01-01T00:00:00Z host nxlog - - - " + line(i).rstrip(b"\n")
            sock.sendall(str(len(payload)).encode() + b" " + payload if i % 2 else payload + b"\n")
        sock.sendall(BAD_LINES[0] + b"\n" + BAD_LINES[1] + b"\n")
    with socket.create_connection(("127.0.0.1", port)) as sock:  # half a message, then silence
        sock.sendall(b"500 " + line(3)[:20])
        wait_until(lambda: run.stats.skipped.get("partial message") == 1, what="stall counted")
    wait_until(lambda: run.stats.events == 60)
    assert run.stats.skipped["invalid JSON"] == 2
    assert len(ids_of(run.alerts)) >= 2
    run.stop()


def test_stdin_through_the_cli(tmp_path):
    body = b"".join(line(i) for i in range(300)) + BAD_LINES[1] + b"\n"
    proc = subprocess.run([*SVCHUNT, "watch", "--stdin", "--stdout", "--stats", "--state", str(tmp_path / "s")],
                          input=body, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    alerts = [orjson.loads(r) for r in proc.stdout.splitlines()]
    assert alerts and all(a["evidence"][0]["source"] == "<stdin>" for a in alerts)
    last = [r for r in proc.stderr.decode().splitlines() if "stats {" in r][-1]
    stats = orjson.loads(last.split("stats ", 1)[1])
    assert stats["events"] == 300 and stats["skipped_by_reason"] == {"binary data": 1}


# -- Redis -----------------------------------------------------------------------------------------------------
@pytest.fixture()
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    wait_until(lambda: _ping(client), what="redis-server")
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


def test_redis_list_is_consumed_reliably_with_bad_items_counted(tmp_path, redis_url, ruleset):
    import redis

    from svchunt.watch.input_redis import RedisInput

    client = redis.Redis.from_url(redis_url)
    client.rpush("filebeat", *[line(i) for i in range(500)], *BAD_LINES)
    run = Running(tmp_path, ruleset, [RedisInput(redis_url, "filebeat", max_line=4096, once=True)])
    run.thread.join(30)
    assert run.stats.events == 500 and sum(run.stats.skipped.values()) == 5
    assert client.llen("filebeat") == 0 and client.llen("filebeat:svchunt:processing") == 0
    assert int(client.get("filebeat:svchunt:acked")) == 505
    assert len(ids_of(run.alerts)) >= 20


def test_redis_items_taken_but_not_committed_are_read_again(tmp_path, redis_url, ruleset):
    import redis

    from svchunt.watch.input_redis import RedisInput

    client = redis.Redis.from_url(redis_url)
    # a crash after the move, before the commit: the items sit in the processing list
    client.rpush("filebeat:svchunt:processing", *[line(i) for i in range(100)])
    client.rpush("filebeat", *[line(i) for i in range(100, 200)])
    run = Running(tmp_path, ruleset, [RedisInput(redis_url, "filebeat", once=True)])
    run.thread.join(30)
    assert run.stats.events == 200
    assert client.llen("filebeat:svchunt:processing") == 0


# -- webhook ---------------------------------------------------------------------------------------------------
def test_webhook_queues_on_disk_while_down_then_delivers_each_alert_once(tmp_path, ruleset):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    received: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.extend(a["alert_id"] for a in orjson.loads(body)["alerts"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    events = tmp_path / "events.jsonl"
    write_events(events, range(1000), "wb")
    logs: list[str] = []
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", str(tmp_path / "queue"), max_backoff=0.2, log=logs.append)
    run = Running(tmp_path, ruleset, [FileFollower([str(events)])], sinks=[sink])
    wait_until(lambda: run.stats.events == 1000)
    wait_until(lambda: sink.failures >= 2, what="failed posts")
    assert sink.pending() > 0 and (tmp_path / "queue" / "spool.jsonl").stat().st_size > 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_until(lambda: sink.pending() == 0, what="delivery")
        run.stop()
    finally:
        server.shutdown()
    assert len(received) == len(set(received)) == run.stats.alerts > 0
    assert any("stay queued" in text for text in logs)

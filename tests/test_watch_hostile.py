"""`svchunt watch` on hostile input: poisoned records are counted and checkpointed past (never re-read),
a malformed Content-Length gets 400, and a burst of 50 concurrent HTTP clients is served."""

from __future__ import annotations

import json
import socket
import threading

import orjson
import pytest
from test_hostile_input import GOOD, HOSTILE_LINES
from test_watch import Running, _post, hunt_ids, ids_of, wait_until

from svchunt.engine.hunt import HuntOptions, load_ruleset
from svchunt.watch.input_file import FileFollower
from svchunt.watch.input_http import HttpInput
from svchunt.watch.synthetic import line


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset(HuntOptions(paths=[]))


def _hostile_bytes(value: str | dict) -> bytes:
    return (value if isinstance(value, str) else json.dumps(value)).encode() + b"\n"


def test_poisoned_records_are_counted_then_checkpointed_past(tmp_path, ruleset):
    events = tmp_path / "events.jsonl"
    with events.open("wb") as fh:
        for n, name in enumerate(sorted(HOSTILE_LINES)):
            fh.write(line(n))
            fh.write(_hostile_bytes(HOSTILE_LINES[name]))
        fh.write(b'{"EventID": 7045, "Data": ' + b"[" * 3000 + b"]" * 3000 + b"}\n")  # too deep even to parse
    total = 2 * len(HOSTILE_LINES) + 1
    problems = tmp_path / "problems.jsonl"
    run = Running(tmp_path, ruleset, [FileFollower([str(events)])], problems_path=str(problems))
    wait_until(lambda: run.stats.events + sum(run.stats.skipped.values()) == total, what="every line handled")
    # the problems file is written as the run goes, not only at exit
    wait_until(lambda: problems.exists() and problems.stat().st_size > 0, what="problems written while running")
    run.stop()
    assert run.stats.flagged >= 5 and sum(run.stats.skipped.values()) >= 1
    rows = [orjson.loads(r) for r in problems.read_bytes().splitlines()]
    assert {r.get("kind") for r in rows} >= {"flagged"} and all(r["position"].startswith("line ") for r in rows)
    first_ids = set(ids_of(run.alerts))
    assert first_ids == hunt_ids([str(events)], ruleset)  # same answers as hunt, hostile lines included
    # a restart goes on after the poisoned lines: nothing is read, counted or alerted again
    rerun = Running(tmp_path, ruleset, [FileFollower([str(events)], once=True)])
    rerun.thread.join(60)
    assert rerun.stats.events == 0 and not rerun.stats.skipped and rerun.stats.flagged == 0
    assert set(ids_of(rerun.alerts)) == first_ids  # the same sink file: nothing added


def _raw_request(port: int, headers: bytes, body: bytes = b"") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body)
        reply = sock.recv(4096)
    return int(reply.split()[1])


def test_http_malformed_content_length_is_400_and_the_endpoint_goes_on(tmp_path, ruleset):
    http_in = HttpInput("127.0.0.1", 0, max_body=200_000, read_timeout=0.5)
    run = Running(tmp_path, ruleset, [http_in])
    wait_until(lambda: http_in._server is not None)
    port = http_in.bound_port
    body = line(1)
    for value in (b"abc", b"-5", b"1e3", b"12 34", "\u0661\u0662".encode(), b"9" * 40):
        assert _raw_request(port, b"Content-Length: " + value + b"\r\n", body) == 400, value
    twice = f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}\r\n".encode()
    assert _raw_request(port, twice, body) == 400
    assert _raw_request(port, b"") == 411
    assert run.stats.refused["http 400"] == 7 and run.stats.events == 0
    assert _post(port, body)[0] == 200 and run.stats.events == 1
    run.stop()


def test_http_serves_a_burst_of_50_concurrent_clients(tmp_path, ruleset):
    http_in = HttpInput("127.0.0.1", 0, max_body=200_000)
    run = Running(tmp_path, ruleset, [http_in])
    wait_until(lambda: http_in._server is not None)
    port = http_in.bound_port
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def client(n: int) -> None:
        start.wait()  # all connect at once
        status, _ = _post(port, line(n) + _hostile_bytes(GOOD | {"RecordNumber": 10_000 + n}))
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 50
    assert run.stats.events == 100 and not run.stats.refused
    run.stop()


def test_watch_cli_on_a_poisoned_file_exits_cleanly_and_does_not_read_it_again(tmp_path):
    from test_hostile_input import svchunt

    events = tmp_path / "events.jsonl"
    with events.open("wb") as fh:
        for n, name in enumerate(sorted(HOSTILE_LINES)):
            fh.write(line(n))
            fh.write(_hostile_bytes(HOSTILE_LINES[name]))
    args = ["watch", str(events), "--once", "--state", str(tmp_path / "w.state"), "--jsonl", str(tmp_path / "a.jsonl"),
            "--problems", str(tmp_path / "p.jsonl")]  # fmt: skip
    first = svchunt(*args)
    assert first.returncode == 0 and "Traceback" not in first.stderr, first.stderr[-2000:]
    alerts = ids_of(tmp_path / "a.jsonl")
    rows = (tmp_path / "p.jsonl").read_bytes().splitlines()
    assert alerts and len(rows) >= len(HOSTILE_LINES) - 1
    again = svchunt(*args)  # the state holds the position past every poisoned line
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    assert ids_of(tmp_path / "a.jsonl") == alerts and (tmp_path / "p.jsonl").read_bytes().splitlines() == rows

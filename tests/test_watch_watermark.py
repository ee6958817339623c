"""`svchunt watch`: one watermark per input, idle inputs and idle windows, pruning of emitted ids, and the
input lifecycle shared by every input."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import orjson
import pytest
from conftest import REPO
from test_watch import Running, wait_until, write_events

from svchunt.correlate.timeparse import to_micros
from svchunt.engine.hunt import HuntOptions, load_ruleset, run_hunt
from svchunt.watch.chunk import Chunk
from svchunt.watch.input_file import FileFollower
from svchunt.watch.input_http import HttpInput
from svchunt.watch.input_redis import RedisInput
from svchunt.watch.input_stdin import StdinInput
from svchunt.watch.input_syslog import SyslogInput
from svchunt.watch.state import Prune, StateStore
from svchunt.watch.threaded import ThreadedInput
from svchunt.watch.watermark import Watermarks

IDLE_RULES = REPO / "tests" / "fixtures" / "watch" / "idle_rules.yml"
S = 1_000_000  # µs


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset(HuntOptions(paths=[]))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _key(alert: dict) -> tuple:
    """An alert without its provenance paths: stdin and a file of the same events give the same key."""
    evidence = tuple(sorted((e["record_id"], e["timestamp"], e["event_id"]) for e in alert["evidence"]))
    return alert["rule_id"], alert["kind"], evidence


# -- the tracker itself, on a fake clock ----------------------------------------------------------------------
def test_watermark_is_the_minimum_over_active_inputs_and_idle_ones_stop_holding_it():
    clock = Clock()
    marks = Watermarks(lateness=10, idle_timeout=5, clock=clock)
    for key in ("files", "redis:x"):
        marks.add_input(key)
    fast, slow = Chunk("file:a", "a"), Chunk("redis:x", "redis:x")
    marks.handed(fast, "files")
    marks.processed(fast, 5000 * S)
    assert marks.watermark() is None  # redis has handed on nothing yet: its events may be the oldest
    marks.handed(slow, "redis:x")
    assert marks.watermark() is None  # handed on but still queued: its event time is not known yet
    marks.processed(slow, 100 * S)
    assert marks.watermark() == 90 * S  # the slow input holds it, not the fast one (4990 s)
    clock.now += 4
    marks.handed(fast2 := Chunk("file:a", "a"), "files")
    marks.processed(fast2, 6000 * S)
    assert marks.watermark() == 90 * S
    clock.now += 2  # redis quiet for 6 s, nothing of it pending: it no longer holds the watermark back
    assert marks.watermark() == 5990 * S
    marks.handed(slow2 := Chunk("redis:x", "redis:x"), "redis:x")  # pending (queued, not processed): active again
    clock.now += 30
    assert marks.watermark() == 90 * S
    marks.processed(slow2, 200 * S)
    assert marks.watermark() == 190 * S
    marks.done("redis:x")  # an input that ended holds nothing back
    assert marks.watermark() is not None and marks.watermark() >= 5990 * S


def test_an_input_never_heard_from_holds_the_watermark_only_for_the_idle_timeout():
    clock = Clock()
    marks = Watermarks(lateness=10, idle_timeout=5, clock=clock)
    marks.add_input("files")
    marks.add_input("http:1")
    chunk = Chunk("file:a", "a")
    marks.handed(chunk, "files")
    marks.processed(chunk, 500 * S)
    assert marks.watermark() is None
    clock.now += 5.1
    assert marks.watermark() == 500 * S  # everything idle now: jumps to the newest event time


def test_when_everything_is_quiet_event_time_follows_the_wall_clock_beyond_the_lateness():
    clock = Clock()
    marks = Watermarks(lateness=10, idle_timeout=5, clock=clock)
    marks.add_input("stdin")
    chunk = Chunk("stdin", "<stdin>")
    marks.handed(chunk, "stdin")
    marks.processed(chunk, 500 * S)
    assert marks.watermark() == 490 * S
    clock.now += 5
    assert marks.watermark() == 500 * S  # idle: no lateness left to wait for
    clock.now += 5  # 10 s quiet = the lateness: no event time owed yet
    assert marks.watermark() == 500 * S
    clock.now += 7
    assert marks.watermark() == 507 * S
    assert Watermarks(float("inf"), 5).watermark() is None  # replays: windows wait for the end of the input


def test_a_stream_without_event_times_does_not_hold_the_watermark():
    clock = Clock()
    marks = Watermarks(lateness=10, idle_timeout=5, clock=clock)
    good, bad = Chunk("file:a", "a"), Chunk("http:1", "http:1")
    marks.handed(good, "files")
    marks.handed(bad, "http:1")
    marks.processed(good, 500 * S)
    marks.processed(bad, None)  # only unreadable records so far
    assert marks.watermark() == 490 * S


# -- gap 1: an input far ahead in event time does not make a slower one late ------------------------------------
def test_backlog_far_ahead_and_a_trickling_input_give_the_alerts_of_hunt(tmp_path, ruleset):
    backlog = tmp_path / "backlog.jsonl"
    write_events(backlog, range(20000, 26000), "wb")  # 2000 s of event time ahead of the trickle
    trickle = tmp_path / "trickle.jsonl"
    write_events(trickle, range(3000), "wb")
    expected = run_hunt(HuntOptions(paths=[str(backlog), str(trickle)], workers=1), ruleset).alerts
    expected_keys = {_key(a.to_dict()) for a in expected}
    assert sum(a.kind == "correlation" for a in expected) > 20

    read_fd, write_fd = os.pipe()
    run = Running(tmp_path, ruleset, [FileFollower([str(backlog)], once=True),
                                      StdinInput(stream=os.fdopen(read_fd, "rb"))],
                  lateness=30.0, idle_timeout=3.0, batch_size=500)
    data = trickle.read_bytes().splitlines(keepends=True)
    with os.fdopen(write_fd, "wb") as pipe:
        time.sleep(0.5)  # the backlog is read first and runs far ahead
        for start in range(0, len(data), 100):
            pipe.write(b"".join(data[start : start + 100]))
            pipe.flush()
            time.sleep(0.03)
    run.thread.join(60)
    assert not run.thread.is_alive()
    got = [orjson.loads(row) for row in run.alerts.read_bytes().splitlines()]
    assert not run.watcher.correlator.skipped, run.watcher.correlator.skipped
    assert {_key(a) for a in got} == expected_keys
    assert any(a["kind"] == "correlation" and a["evidence"][0]["source"] == "<stdin>" for a in got)


# -- gap 2: a window waiting for traffic closes while the process keeps running -------------------------------
def _pair(i: int, second: float, kind: int) -> bytes:
    ts = f"2026-01-01T00:{int(second) // 60:02d}:{second % 60:09.6f}Z"
    ev = {"@timestamp": ts, "Hostname": "HOSTA.corp.local", "RecordNumber": i, "EventID": kind, "Channel": "System",
          "SourceName": "Service Control Manager"}
    if kind == 7045:
        ev.update(ServiceName="x", ImagePath="C:\\x.exe")
    else:
        ev.update(param1="x", param2="running")
    return orjson.dumps(ev) + b"\n"


def test_an_idle_window_is_decided_without_more_traffic(tmp_path):
    rules = load_ruleset(HuntOptions(paths=[], rule_paths=[str(IDLE_RULES)], builtin=False, use_cache=False))
    events = tmp_path / "events.jsonl"
    events.write_bytes(_pair(1, 10.0, 7045) + _pair(2, 11.0, 7036))  # the second event is the last one
    run = Running(tmp_path, rules, [FileFollower([str(events)])], lateness=0.5, idle_timeout=0.5)

    def correlations() -> list[dict]:
        rows = run.alerts.read_bytes().splitlines() if run.alerts.exists() else []
        return [a for a in map(orjson.loads, rows) if a["kind"] == "correlation"]

    try:
        wait_until(lambda: run.stats.events >= 2, what="the two events")
        started = time.monotonic()
        # window [10 s, 12 s] ends 1 s after the newest event: idle after 0.5 s, then 1 s + lateness of quiet
        wait_until(lambda: len(correlations()) == 1, timeout=10, what="the correlation alert while running")
        assert time.monotonic() - started < 8
        assert run.thread.is_alive() and not run.watcher.correlator.finished
        assert [e["record_id"] for e in correlations()[0]["evidence"]] == [1, 2]
        # traffic after the quiet period is not late: a second pair correlates too
        with events.open("ab") as fh:
            fh.write(_pair(3, 600.0, 7045) + _pair(4, 601.0, 7036))
        wait_until(lambda: len(correlations()) == 2, timeout=10, what="the second correlation alert")
        assert not run.watcher.correlator.skipped
    finally:
        run.stop()


def test_idle_windows_wait_for_the_end_when_the_idle_rule_is_off(tmp_path):
    rules = load_ruleset(HuntOptions(paths=[], rule_paths=[str(IDLE_RULES)], builtin=False, use_cache=False))
    events = tmp_path / "events.jsonl"
    events.write_bytes(_pair(1, 10.0, 7045) + _pair(2, 11.0, 7036))
    run = Running(tmp_path, rules, [FileFollower([str(events)])], lateness=0.5, idle_timeout=float("inf"))
    try:
        wait_until(lambda: run.stats.events >= 2, what="the two events")
        time.sleep(2.5)  # longer than the window needed above
        assert run.watcher.correlator.horizon < to_micros("2026-01-01T00:00:12Z")
        assert all(orjson.loads(r)["kind"] != "correlation" for r in run.alerts.read_bytes().splitlines())
    finally:
        run.stop()


# -- gap 4: emitted ids are pruned behind the watermark, in the committed transaction ----------------------------
def test_state_prunes_by_evidence_time_and_unknown_ones_by_commit_time(tmp_path):
    store = StateStore(str(tmp_path / "s.db"))
    store.commit({}, {}, [("old", 100 * S), ("new", 900 * S), "unknown"])
    pruned = store.commit({"k": 1}, {}, [("newer", 950 * S)], Prune(500 * S, 3600.0))
    assert pruned == ["old"]
    assert store.emitted_ids() == {"new", "newer", "unknown"}
    time.sleep(0.05)
    assert sorted(store.commit({}, {}, [], Prune(None, 0.01))) == ["unknown"]
    store.close()


def test_old_state_file_gets_the_column_and_keeps_its_ids(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
                      "CREATE TABLE emitted (alert_id TEXT PRIMARY KEY, committed REAL NOT NULL);"
                      "INSERT INTO emitted VALUES ('a', 1.0);")
    con.commit()
    con.close()
    store = StateStore(str(path))
    assert store.emitted_ids() == {"a"}
    assert store.commit({}, {}, [("b", 5)], Prune(10, 1e12)) == ["b"]
    store.close()


def test_watch_forgets_ids_of_alerts_older_than_the_retention(tmp_path, ruleset):
    events = tmp_path / "events.jsonl"
    write_events(events, range(6000), "wb")  # 600 s of event time
    run = Running(tmp_path, ruleset, [FileFollower([str(events)], once=True)], lateness=30.0,
                  dedupe_retention=60.0, batch_size=500, checkpoint_interval=0.0)
    run.thread.join(60)
    emitted = [orjson.loads(r) for r in run.alerts.read_bytes().splitlines()]
    assert len(emitted) > 100
    con = sqlite3.connect(tmp_path / "state.db")
    kept = dict(con.execute("SELECT alert_id, newest FROM emitted").fetchall())
    horizon = orjson.loads(con.execute("SELECT value FROM kv WHERE key = 'correlator'").fetchone()[0])["horizon"]
    con.close()
    assert run.watcher.pruned > 0 and run.stats.dedupe_pruned == run.watcher.pruned
    assert len(kept) + run.watcher.pruned == len(emitted)
    newest = {a["alert_id"]: max(to_micros(e["timestamp"]) for e in a["evidence"]) for a in emitted}
    cutoff = horizon - 60 * S
    # exactly the old ones are gone (ids the final flush emitted are recorded after the last pruning)
    assert all(kept[i] == newest[i] for i in kept)
    assert all(newest[i] >= cutoff or i not in kept for i in newest)
    assert {i for i in newest if newest[i] < cutoff} - set(kept)
    assert not {i for i in newest if i not in kept} & run.watcher.seen  # memory shrinks with the table


def test_cli_parses_the_new_durations():
    from click.testing import CliRunner

    from svchunt.cli.watch import _duration, watch

    assert _duration("7d", "--x") == 7 * 86400 and _duration("90", "--x") == 90 and _duration("30m", "--x") == 1800
    result = CliRunner().invoke(watch, ["x.jsonl", "--dedupe-retention", "-1d"])
    assert result.exit_code != 0 and "--dedupe-retention" in result.output


# -- gap 3: one lifecycle for every input ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [FileFollower, StdinInput, RedisInput, HttpInput, SyslogInput])
def test_every_input_uses_the_shared_lifecycle(cls):
    assert issubclass(cls, ThreadedInput)
    for name in ("join", "_put"):
        assert name not in vars(cls), f"{cls.__name__} still defines its own {name}"


def test_threaded_input_put_gives_up_when_stopped():
    import queue

    class One(ThreadedInput):
        key = "one"

        def _run(self) -> None:
            self._put("a")
            self._put("b")  # the queue is full: waits until stopped
            self.after = True

    out: queue.Queue = queue.Queue(maxsize=1)
    source = One()
    source.start(out, {}, None)  # type: ignore[arg-type]
    wait_until(lambda: out.full(), what="first item")
    assert source._thread is not None and source._thread.is_alive()
    source.stop()
    source.join(2)
    assert not source._thread.is_alive() and source.after and out.get_nowait() == "a"


def test_stdin_input_reads_a_pipe_to_its_end(tmp_path):
    import queue

    read_fd, write_fd = os.pipe()
    out: queue.Queue = queue.Queue()
    source = StdinInput(stream=os.fdopen(read_fd, "rb"))
    source.start(out, {}, None)  # type: ignore[arg-type]
    threading.Thread(target=lambda: (os.write(write_fd, b'{"a": 1}\n{"b"'), os.close(write_fd))).start()
    source.join(5)
    items = [out.get_nowait() for _ in range(out.qsize())]
    assert items[0].lines == [(1, b'{"a": 1}')]
    assert "partial message" in items[1].problems[0].reason and items[-1].key == "stdin"

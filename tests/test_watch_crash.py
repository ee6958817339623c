"""Crash test: SIGKILL `svchunt watch` at random points while a producer writes 200k events to a followed file
and a Redis list; after restarts, the alerts equal those of one uninterrupted run, none lost, none repeated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from test_watch import redis_url  # noqa: F401 - fixture

from svchunt.watch.synthetic import line

TOTAL = 200_000
KILLS = 4
# A finite lateness: the watermark is kept per input, so the file backlog read faster than the Redis list after
# each restart cannot make the list's events late (the same alerts as one run, with one watermark per input).
LATENESS = "60"
SHAPE = {"step_ms": 50, "every": 500}


def _cmd(url: str, db: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "svchunt.cli.main", "watch", "events.jsonl", "--redis", f"{url}/{db}",
            "--redis-key", "filebeat", "--state", "watch.state", "--jsonl", "alerts.jsonl", "--lateness", LATENESS,
            "--flush-interval", "0.2", "-q", *extra]


def _ids(path: Path) -> list[str]:
    return [orjson.loads(r)["alert_id"] for r in path.read_bytes().splitlines() if r.strip()]


def _produce(folder: Path, url: str, db: int, pace: float = 0.0) -> None:
    """Even events to the file, odd ones to Redis, in steps of 1000 so both stay close in event time."""
    import redis

    client = redis.Redis.from_url(f"{url}/{db}")
    with (folder / "events.jsonl").open("ab") as fh:
        for start in range(0, TOTAL, 1000):
            fh.write(b"".join(line(i, **SHAPE) for i in range(start, start + 1000, 2)))
            fh.flush()
            client.rpush("filebeat", *[line(i, **SHAPE) for i in range(start + 1, start + 1000, 2)])
            if pace:
                time.sleep(pace)


def test_sigkill_at_random_points_loses_and_repeats_nothing(tmp_path, redis_url):  # noqa: F811
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    ref.mkdir()
    crash.mkdir()
    # paths are relative and the Redis key is the same, so both runs give events the same provenance

    # one uninterrupted run over everything
    _produce(ref, redis_url, 1)
    subprocess.run(_cmd(redis_url, 1, "--once"), cwd=ref, env=env, check=True, timeout=240)
    expected = _ids(ref / "alerts.jsonl")
    assert len(expected) == len(set(expected)) and len(expected) > 1000

    # the same stream written while watch is killed and restarted
    (crash / "events.jsonl").touch()
    producer = threading.Thread(target=_produce, args=(crash, redis_url, 2, 0.03))
    producer.start()
    rng = random.Random(20261129)
    kills = 0
    while kills < KILLS:
        proc = subprocess.Popen(_cmd(redis_url, 2), cwd=crash, env=env)
        time.sleep(rng.uniform(1.5, 4.5))  # start-up takes about 1 s: kills land during start, reads, writes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    producer.join()
    before_final = len(_ids(crash / "alerts.jsonl"))
    assert before_final > 0, "the killed runs made no progress: the kills did not test anything"
    print(f"alerts before the final run: {before_final} of {len(expected)}")
    subprocess.run(_cmd(redis_url, 2, "--once"), cwd=crash, env=env, check=True, timeout=240)
    got = _ids(crash / "alerts.jsonl")
    assert len(got) == len(set(got)), "an alert was written twice"
    assert set(got) == set(expected)

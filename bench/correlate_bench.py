"""Throughput of the correlator on synthetic signals (correlations run only on signals, so this is the
budget they must stay well inside). Usage: .venv/bin/python bench/correlate_bench.py [n_signals]"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

from svchunt.correlate import Correlator, load_correlations
from svchunt.model import Event, RuleInfo, Signal

RULES = [RuleInfo(rule_id=name, title=name, name=name) for name in ("a", "b", "c", "reg", "s7045")]
DOCS = [
    {"title": "count", "id": "count", "correlation": {"type": "event_count", "rules": ["a", "b"], "timespan": "5m",
                                                      "group-by": ["Computer"], "condition": {"gte": 50}}},
    {"title": "users", "id": "users", "correlation": {"type": "value_count", "rules": ["a"], "timespan": "10m",
                                                      "group-by": ["Computer"],
                                                      "condition": {"field": "User", "gte": 20}}},
    {"title": "seq", "id": "seq", "correlation": {"type": "temporal_ordered", "rules": ["a", "b", "c"],
                                                  "timespan": "2m", "group-by": ["Computer", "User"]}},
    {"title": "gap", "id": "gap", "correlation": {"type": "absence", "rules": ["reg"], "absent": ["s7045"],
                                                  "timespan": "60s", "group-by": ["Computer", "ServiceName"]}},
]


def main(count: int) -> None:
    rules, refused = load_correlations([("bench.yml", d) for d in DOCS], RULES)
    assert not refused, refused
    rnd = random.Random(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    signals = []
    for index in range(count):
        stamp = (start + timedelta(seconds=rnd.randrange(86400))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = {"Computer": f"h{rnd.randrange(50)}", "User": f"u{rnd.randrange(200)}",
                  "ServiceName": f"s{rnd.randrange(100)}"}
        signals.append(Signal(rnd.choice(RULES), Event(fields, stamp, "bench.evtx", record_id=index)))
    began = time.perf_counter()
    alerts = Correlator(rules).run(signals)
    batch = time.perf_counter() - began
    began = time.perf_counter()
    stream = Correlator(rules, lateness_seconds=60)
    ordered = sorted(signals, key=lambda s: s.event.timestamp)
    streamed = [a for i in range(0, count, 1000) for a in stream.feed(ordered[i : i + 1000])] + stream.flush()
    streaming = time.perf_counter() - began
    print(f"{count} signals, {len(rules)} correlations: batch {batch:.2f}s ({count / batch:,.0f} signals/s), "
          f"{len(alerts)} alerts; streaming in chunks of 1000: {streaming:.2f}s, {len(streamed)} alerts")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)

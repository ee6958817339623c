"""The embedded state file (SQLite, WAL): input positions, correlator state, sink sizes and emitted alert ids.

Everything of one batch is committed in one transaction, so after a crash the state is that of the last
committed batch as a whole: the inputs resume right after it and the correlator has exactly its windows.

Each emitted id keeps the event time of its alert's newest evidence (`newest`, microseconds since the epoch),
so the table can be pruned by event time in the same transaction (`--dedupe-retention`); ids with no known
evidence time (read back from a sink after a crash, or written by an older version) are pruned by the wall
clock time of their commit instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Prune:
    """Which emitted ids to forget: evidence older than `newest_before_us`; ids without an evidence time
    once committed more than `retention_s` seconds ago."""

    newest_before_us: int | None
    retention_s: float


SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS emitted (alert_id TEXT PRIMARY KEY, committed REAL NOT NULL, newest INTEGER);
"""


class StateStore:
    def __init__(self, path: str) -> None:
        self.path = path
        # check_same_thread off: the pipeline thread is the only writer, but it may not be the one that opened it
        self._con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash may lose the last batch
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(SCHEMA)
        columns = {row[1] for row in self._con.execute("PRAGMA table_info(emitted)")}
        if "newest" not in columns:  # a state file of a version without pruning
            self._con.execute("ALTER TABLE emitted ADD COLUMN newest INTEGER")
        self._con.execute("CREATE INDEX IF NOT EXISTS emitted_newest ON emitted (newest)")

    def get(self, key: str) -> Any:
        row = self._con.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def get_bytes(self, key: str) -> bytes | None:
        row = self._con.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def positions(self, prefix: str) -> dict[str, Any]:
        rows = self._con.execute("SELECT key, value FROM kv WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff"))
        return {key[len(prefix) :]: orjson.loads(value) for key, value in rows}

    def emitted_ids(self) -> set[str]:
        return {row[0] for row in self._con.execute("SELECT alert_id FROM emitted")}

    def commit(
        self,
        values: dict[str, Any],
        raw: dict[str, bytes],
        alert_ids: Iterable[str | tuple[str, int | None]],
        prune: Prune | None = None,
    ) -> list[str]:
        """One atomic transaction: JSON `values`, `raw` byte values, the newly emitted alert ids (alone or as
        `(id, newest evidence time in µs)`) and, with `prune`, the removal of old ids. Returns the removed ids."""
        now = time.time()
        rows = [(i, now, None) if isinstance(i, str) else (i[0], now, i[1]) for i in alert_ids]
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                [(k, orjson.dumps(v)) for k, v in values.items()] + list(raw.items()),
            )
            con.executemany("INSERT OR IGNORE INTO emitted VALUES (?, ?, ?)", rows)
            pruned: list[str] = []
            if prune is not None:
                if prune.newest_before_us is not None:
                    pruned += [r[0] for r in con.execute(
                        "DELETE FROM emitted WHERE newest < ? RETURNING alert_id", (prune.newest_before_us,))]
                pruned += [r[0] for r in con.execute(
                    "DELETE FROM emitted WHERE newest IS NULL AND committed < ? RETURNING alert_id",
                    (now - prune.retention_s,))]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return pruned

    def emitted_count(self) -> int:
        return self._con.execute("SELECT count(*) FROM emitted").fetchone()[0]

    def close(self) -> None:
        self._con.close()

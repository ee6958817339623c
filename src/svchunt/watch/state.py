"""The embedded state file (SQLite, WAL): input positions, correlator state, sink sizes and emitted alert ids.

Everything of one batch is committed in one transaction, so after a crash the state is that of the last
committed batch as a whole: the inputs resume right after it and the correlator has exactly its windows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS emitted (alert_id TEXT PRIMARY KEY, committed REAL NOT NULL);
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

    def commit(self, values: dict[str, Any], raw: dict[str, bytes], alert_ids: Iterable[str]) -> None:
        """One atomic transaction: JSON `values`, `raw` byte values and the newly emitted alert ids."""
        now = time.time()
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                [(k, orjson.dumps(v)) for k, v in values.items()] + list(raw.items()),
            )
            con.executemany("INSERT OR IGNORE INTO emitted VALUES (?, ?)", [(i, now) for i in alert_ids])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._con.close()

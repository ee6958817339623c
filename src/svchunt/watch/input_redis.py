"""A Redis list as the Beats/Logstash Redis output writes it (RPUSH of JSON strings), consumed reliably.

Items are moved atomically (Lua) from the list to a processing list `KEY:svchunt:processing` and only removed
from there when the batch that holds them is committed. Every item gets a sequence number (its `line`), kept in
the state file; the number already removed from the processing list is kept in Redis (`KEY:svchunt:acked`),
set in the same atomic step as the trim. After a crash the two tell exactly which items of the processing list
were committed (trim them) and which were not (read them again, with the same numbers, so alert ids repeat).
"""

from __future__ import annotations

import time
from typing import Any

from svchunt.model import Problem
from svchunt.watch.chunk import Chunk, Done
from svchunt.watch.threaded import ThreadedInput

CHUNK_ITEMS = 1000

_MOVE = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('LTRIM', KEYS[1], #items, -1)
end
return items
"""
_ACK = """
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


class RedisInput(ThreadedInput):
    thread_name = "watch-redis"

    def __init__(self, url: str, list_key: str, max_line: int = 1 << 20, once: bool = False) -> None:
        super().__init__()
        self.url = url
        self.list_key = list_key
        self.processing = f"{list_key}:svchunt:processing"
        self.acked_key = f"{list_key}:svchunt:acked"
        self.source = f"redis:{list_key}"  # no host/port: moving the server must not change alert ids
        self.key = f"redis:{list_key}"
        self.max_line = max_line
        self.once = once

    def _client(self):
        import redis

        return redis.Redis.from_url(self.url, decode_responses=False, socket_timeout=10)

    def _prepare(self, positions: dict[str, Any]) -> None:
        self._client_main = self._client()
        self._client_ack = self._client()  # acks come from the pipeline thread
        self._move = self._client_main.register_script(_MOVE)
        self._ack_script = self._client_ack.register_script(_ACK)
        saved = positions.get(self.key) or {}
        self._seq = int(saved.get("seq", 0))
        self._recover()

    def _recover(self) -> None:
        r = self._client_main
        acked = int(r.get(self.acked_key) or 0)
        if acked > self._seq:
            self._stats.count_notice(
                f"{self.source}: Redis says {acked} items were acknowledged but the state file only {self._seq}"
                " (state file replaced?): continuing after the acknowledged ones"
            )
            self._seq = acked
        elif self._seq > acked:  # committed, but the trim did not happen before the crash
            self._ack_script(keys=[self.processing, self.acked_key], args=[self._seq - acked, self._seq])

    def _run(self) -> None:
        r = self._client_main
        try:
            pending = r.lrange(self.processing, 0, -1)  # taken before a crash and never committed
        except Exception as exc:  # noqa: BLE001 - reported, then the loop retries
            self._stats.count_notice(f"{self.source}: {exc}")
            pending = []
        for start in range(0, len(pending), CHUNK_ITEMS):
            self._emit(pending[start : start + CHUNK_ITEMS])
        backoff = 0.2
        while not self._stop.is_set():
            try:
                items = self._move(keys=[self.list_key, self.processing], args=[CHUNK_ITEMS])
                if not items:
                    if self.once:
                        self._put(Done(self.key))
                        return
                    item = r.blmove(self.list_key, self.processing, 0.2, "LEFT", "RIGHT")
                    items = [item] if item is not None else []
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 - connection lost: retry with backoff
                self._stats.count_notice(f"{self.source}: {exc}; retrying in {backoff:.1f}s")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if items:
                self._emit(items)

    def _emit(self, items: list[bytes]) -> None:
        chunk = Chunk(self.key, self.source, received=time.time())
        first = self._seq + 1
        for raw in items:
            self._seq += 1
            if len(raw) > self.max_line:
                chunk.problems.append(
                    Problem(self.source, f"line {self._seq}", f"oversized line: longer than {self.max_line} bytes")
                )
            else:
                chunk.lines.append((self._seq, raw))
        count, last = self._seq - first + 1, self._seq
        chunk.position = {"seq": last}
        chunk.ack = lambda: self._ack_script(keys=[self.processing, self.acked_key], args=[count, last])
        self._put(chunk)

"""HTTP endpoint: `POST` a body of JSON lines; the response is sent once the batch holding it is committed.

Bound to 127.0.0.1 by default. Any other bind requires a bearer token (the CLI refuses to start without one);
when a token is set it is checked on every request, and a wrong or missing one gets 401 and a log line.
The body size is limited (413), a body must have a Content-Length (411) that is one plain decimal number
(400 otherwise), the listen backlog holds 128 waiting connections, and a client that stops sending
in the middle of its body is dropped after `read_timeout` seconds and counted.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from svchunt.model import Problem
from svchunt.watch.chunk import Chunk
from svchunt.watch.threaded import ThreadedInput

ACK_TIMEOUT = 60.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    # The listen backlog: connections the kernel holds while every handler thread is busy. The
    # socketserver default (5) refuses a burst of agents reconnecting after a restart.
    request_queue_size = 128


class HttpInput(ThreadedInput):
    thread_name = "watch-http"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8514,
        token: str | None = None,
        max_body: int = 16 << 20,
        max_line: int = 1 << 20,
        read_timeout: float = 10.0,
        log=None,
    ) -> None:
        super().__init__()
        if not is_loopback(host) and not token:
            raise ValueError(f"binding the HTTP input to {host} (not loopback) requires a bearer token")
        self.host, self.port, self.token = host, port, token
        self.max_body, self.max_line, self.read_timeout = max_body, max_line, read_timeout
        self.key = f"http:{port}"
        self.source = f"http:{port}"
        self.log = log or (lambda text: None)
        self._seq = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def bound_port(self) -> int:
        return self._server.server_address[1] if self._server else self.port

    def _prepare(self, positions: dict[str, Any]) -> None:
        self._seq = int((positions.get(self.key) or {}).get("seq", 0))
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = owner.read_timeout  # socket timeout: a stalled client is dropped
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass  # requests are counted in the stats; refusals are logged by _refuse

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                if self.path.rstrip("/") in ("", "/health"):
                    self._reply(200, {"status": "ok"})
                else:
                    self._reply(404, {"error": "POST JSON lines to /"})

            def do_POST(self) -> None:  # noqa: N802
                owner._handle(self)

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = orjson.dumps(body)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code >= 400:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True

    def _run(self) -> None:
        self._server.serve_forever(0.2)  # type: ignore[union-attr]

    def stop(self) -> None:
        super().stop()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _refuse(self, handler: Any, code: int, reason: str) -> None:
        client = handler.client_address[0]
        self._stats.count_refused(f"http {code}")
        self.log(f"{self.source}: refused {client}: {reason} ({code})")
        handler._reply(code, {"error": reason})

    def _handle(self, handler: Any) -> None:
        if self.token:
            given = handler.headers.get("Authorization", "")
            expected = f"Bearer {self.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                self._refuse(handler, 401, "missing or wrong bearer token")
                return
        lengths = handler.headers.get_all("Content-Length") or []
        if not lengths:
            self._refuse(handler, 411, "a Content-Length is required")
            return
        length_text = lengths[0].strip()
        # ASCII digits only (str.isdigit also takes other scripts' digits), one value, of sane width
        if len(lengths) > 1 or not length_text.isascii() or not length_text.isdigit() or len(length_text) > 18:
            self._refuse(handler, 400, f"malformed Content-Length {lengths[0][:40]!r}")
            handler.close_connection = True  # the body's end is unknown: the connection cannot be reused
            return
        length = int(length_text)
        if length > self.max_body:
            self._refuse(handler, 413, f"body of {length} bytes is over the limit of {self.max_body}")
            return
        try:
            body = handler.rfile.read(length)
        except TimeoutError:
            body = b""
        if len(body) < length:
            with self._lock:
                self._seq += 1
                seq = self._seq
            self._put_problem(Problem(self.source, f"line {seq}",
                                      f"partial message: client {handler.client_address[0]} sent {len(body)} of "
                                      f"{length} bytes then stalled"))
            handler.close_connection = True
            return
        done = threading.Event()
        chunk = Chunk(self.key, self.source, received=time.time(), ack=done.set)
        rejected = 0
        with self._lock:  # numbers and queue order agree, so the committed seq covers every earlier body
            for raw in body.split(b"\n"):
                raw = raw.rstrip(b"\r")
                if not raw.strip():
                    continue
                self._seq += 1
                if len(raw) > self.max_line:
                    rejected += 1
                    chunk.problems.append(Problem(self.source, f"line {self._seq}",
                                                  f"oversized line: longer than {self.max_line} bytes"))
                else:
                    chunk.lines.append((self._seq, raw))
            chunk.position = {"seq": self._seq}
            self._out.put(chunk)  # blocks when the pipeline is behind: the client waits (backpressure)
        if done.wait(ACK_TIMEOUT):
            handler._reply(200, {"received": len(chunk.lines) + rejected, "oversized": rejected})
        else:
            handler._reply(503, {"error": "not committed in time; send again (alerts are deduplicated by id)"})

    def _put_problem(self, problem: Problem) -> None:
        with self._lock:
            self._out.put(Chunk(self.key, self.source, problems=[problem], received=time.time()))

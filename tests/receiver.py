"""A real webhook receiver for the alert tests: a threaded http.server on a free loopback port.

It records every POST (path, headers, body) and answers with the statuses it
is told to, in order, then 200. It can hang: requests then wait (holding
their connection) until `release()`, as a receiver that stopped answering.
"""

import hashlib
import hmac
import http.server
import json
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict
    body: bytes
    client_port: int  # the sender's end of the connection

    def json(self):
        return json.loads(self.body)

    def verifies(self, secret: str) -> bool:
        """Check the signature the way the README's receiver does."""
        timestamp = self.headers["X-Chatquota-Timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + self.body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest("sha256=" + expected, self.headers["X-Chatquota-Signature"])


class Receiver:
    """Start with `with Receiver() as receiver:`; `receiver.url("/hook")` is where to send."""

    def __init__(self):
        self.received: list[Received] = []
        self.statuses: list[int] = []  # answers for the next requests, in order
        self.hanging = False
        self._released = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver._arrived(Received(self.path, dict(self.headers), body,
                                                    self.client_address[1]))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def _arrived(self, request: Received) -> int:
        with self._changed:
            self.received.append(request)
            hang = self.hanging
            status = self.statuses.pop(0) if self.statuses else 200
            self._changed.notify_all()
        if hang:
            self._released.wait(120)
        return status

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def hang(self) -> None:
        """Make requests from now on wait until `release()`."""
        self._released.clear()
        self.hanging = True

    def release(self) -> None:
        """Answer the waiting requests, and the next ones at once."""
        self.hanging = False
        self._released.set()

    def wait_for(self, count: int, timeout: float = 30, path: str | None = None) -> list[Received]:
        """Wait until `count` requests (to `path`, if given) arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.at(path)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.at(path))} of {count} requests arrived")
                self._changed.wait(left)
            return self.at(path)

    def at(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received if path is None or r.path == path]

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()

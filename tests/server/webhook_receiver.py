"""A webhook receiver for the tests: an HTTP server on 127.0.0.1 that records what it is
sent, and the README's signature check."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret: str, headers, body: bytes, tolerance_s: float = 300) -> bool:
    """The README's receiver check, line for line."""
    timestamp = headers["Octavia-Webhook-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) < tolerance_s
    return fresh and hmac.compare_digest(headers["Octavia-Signature"], "v1=" + expected.hexdigest())


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST; it answers ``fail`` times with
    500 (or with ``answer``), then 204."""

    def __init__(self, fail: int = 0, answer: tuple[int, dict[str, str]] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        self.answer = answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                if receiver.answer is not None:
                    status, headers = receiver.answer
                elif receiver.fail > 0:
                    receiver.fail -= 1
                    status, headers = 500, {}
                else:
                    status, headers = 204, {}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # a redirect's target: must never be asked
                receiver.requests.append(({"GET": self.path}, b""))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/octavia"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests if body]

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, self.requests

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

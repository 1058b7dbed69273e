"""A local webhook endpoint over a real socket that can fail a set number of times.

``WebhookReceiver(fail_first=2, fail_status=503)`` answers the first two POSTs
with 503 and later ones with 204; every request (path, headers, JSON body) is
kept in ``requests``. It runs an HTTP server on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


class WebhookReceiver:
    def __init__(self, fail_first: int = 0, fail_status: int = 503, ok_status: int = 204) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.ok_status = ok_status
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            status = self.fail_status if len(self.requests) < self.fail_first else self.ok_status
            self.requests.append(ReceivedRequest(path, headers, json.loads(raw or b"null"), status))
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(self.path, headers, raw)
                body = b"" if status == 204 else b'{"ok": false}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

"""HTTP/1.1 and WebSocket plumbing of the fake Alpaca trading server (tests only).

Just enough HTTP/1.1 for ``requests``: a request head plus a ``Content-Length``
body, keep-alive answers. The ``/stream`` WebSocket is upgraded by hand and
driven with websockets' sans-I/O ``Protocol``, so the fake decides exactly what
happens on the socket (binary frames like Alpaca's paper server, silence, resets).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.protocol import Protocol, Side, State

from trademk.engine.clock import datetime_to_ns

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Frames carry the secret (authenticate): never log them, even at DEBUG.
_WIRE_LOGGER = logging.getLogger(f"{__name__}.frames")
_WIRE_LOGGER.setLevel(logging.INFO)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int | None = None


@dataclass
class HttpResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class StreamConnection:
    """One ``/stream`` WebSocket, driven with websockets' sans-I/O protocol."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.protocol = Protocol(Side.SERVER, logger=_WIRE_LOGGER)
        self.authenticated = False
        self.listening = False
        self.silent = False
        self.received: list[Any] = []

    @property
    def open(self) -> bool:
        return self.protocol.state is State.OPEN and not self.writer.is_closing()

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data and not self.writer.is_closing():
                self.writer.write(data)
            elif not data:
                self.writer.close()

    def send(self, message: dict[str, Any]) -> bool:
        if self.silent or not self.open:
            return False
        self.protocol.send_binary(json.dumps(message).encode())
        self.flush()
        return True

    def close(self, code: int = 1008, reason: str = "") -> None:
        if self.open:
            self.protocol.send_close(code, reason)
            self.flush()

    def abort(self) -> None:
        self.writer.transport.abort()


def accept_websocket(request: RecordedRequest, writer: asyncio.StreamWriter) -> StreamConnection:
    """Answer an upgrade request with 101 and return the open WebSocket."""
    key = request.headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )
    request.status = 101
    return StreamConnection(writer)


async def read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    """One HTTP/1.1 request (head and ``Content-Length`` body), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    raw = await reader.readexactly(length) if length else b""
    body = json.loads(raw, parse_float=Decimal) if raw else None
    parts = urlsplit(target)
    return RecordedRequest(method, parts.path, dict(parse_qsl(parts.query)), headers, body)


def encode_response(response: HttpResponse) -> bytes:
    phrase = HTTPStatus(response.status).phrase
    headers = {"Connection": "keep-alive", **response.headers}
    payload = b""
    if response.status != 204:
        payload = json.dumps(response.body).encode()
        headers["Content-Type"] = "application/json; charset=UTF-8"
        headers["Content-Length"] = str(len(payload))
    head = f"HTTP/1.1 {response.status} {phrase}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return head.encode() + b"\r\n" + payload


def query_time(value: str | None) -> int | None:
    if not value:
        return None
    return datetime_to_ns(datetime.fromisoformat(value.replace("Z", "+00:00")))

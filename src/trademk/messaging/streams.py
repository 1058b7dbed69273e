"""Stream-id arithmetic and consumer naming shared by the Redis messaging classes."""

from __future__ import annotations

import os
import secrets
import socket

from trademk.messaging.codec import as_text


def parse_stream_id(stream_id: bytes | str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` as a comparable tuple; raises ``ValueError`` on anything else."""
    text = as_text(stream_id)
    millis, sep, sequence = text.partition("-")
    if not sep or not millis.isdigit() or not sequence.isdigit():
        raise ValueError(f"not a stream id: {text!r}")
    return int(millis), int(sequence)


def format_stream_id(parts: tuple[int, int]) -> str:
    return f"{parts[0]}-{parts[1]}"


def next_stream_id(stream_id: bytes | str) -> str:
    """The smallest id greater than ``stream_id``."""
    millis, sequence = parse_stream_id(stream_id)
    return format_stream_id((millis, sequence + 1))


def lowest_stream_id(ids: list[str]) -> str:
    """The smallest of some stream ids (by value, not by string order)."""
    if not ids:
        raise ValueError("no stream ids to compare")
    return min(ids, key=parse_stream_id)


def default_consumer_name() -> str:
    """``<host>-<pid>-<random>``: unique per process start, readable in ``XINFO``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

"""Payload encoding for Redis streams: JSON through orjson, Decimals as exact strings.

Bus payloads are JSON-ready mappings (strings for money, as ``order_payload``
builds them). A ``Decimal`` that slips in is written as its exact string, so a
remote subscriber receives ``"0.10"`` where a local one received
``Decimal("0.10")``; nothing is ever turned into a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class PayloadEncodingError(TypeError):
    """A payload cannot be written as JSON (non-string keys, unknown types)."""


class PayloadDecodingError(ValueError):
    """Bytes read from a stream are not a JSON object."""


def _encode_extra(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """JSON bytes for ``payload``; raises ``PayloadEncodingError`` saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise PayloadEncodingError(f"a payload must be a mapping, got {type(payload).__name__}")
    document = payload if isinstance(payload, dict) else dict(payload)
    try:
        return orjson.dumps(document, default=_encode_extra, option=_OPTIONS)
    except orjson.JSONEncodeError as err:
        raise PayloadEncodingError(f"payload is not JSON-serializable: {err}") from err


def decode_payload(data: bytes | str) -> dict[str, Any]:
    """The mapping ``encode_payload`` wrote."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise PayloadDecodingError(f"payload is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise PayloadDecodingError(f"payload is a JSON {type(value).__name__}, not an object")
    return value


def as_text(value: object) -> str:
    """A Redis reply value as text, whether or not the client decodes responses."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected bytes or str from Redis, got {type(value).__name__}")


def fields_as_text(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """Stream entry fields as a ``str -> str`` mapping (raises ``UnicodeDecodeError``)."""
    return {as_text(key): as_text(value) for key, value in fields.items()}

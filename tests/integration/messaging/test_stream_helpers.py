"""Pure helpers of the Redis messaging: stream-id arithmetic and payload encoding.

(No server needed; kept beside the Redis tests they support.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademk.messaging.codec import (
    PayloadDecodingError,
    PayloadEncodingError,
    as_text,
    decode_payload,
    encode_payload,
    fields_as_text,
)
from trademk.messaging.streams import (
    default_consumer_name,
    lowest_stream_id,
    next_stream_id,
    parse_stream_id,
)


def test_stream_ids_compare_by_value_not_by_text() -> None:
    assert lowest_stream_id(["10-0", "9-5", "9-12"]) == "9-5"
    assert parse_stream_id(b"1700000000000-3") == (1_700_000_000_000, 3)
    assert next_stream_id("9-9") == "9-10"


@pytest.mark.parametrize("text", ["", "12", "a-1", "1-b", "-1", "1--1"])
def test_a_malformed_stream_id_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a stream id"):
        parse_stream_id(text)


def test_lowest_of_no_ids_is_an_error() -> None:
    with pytest.raises(ValueError, match="no stream ids"):
        lowest_stream_id([])


def test_payload_round_trip_keeps_decimals_exact_as_strings() -> None:
    data = encode_payload({"qty": Decimal("0.00012300"), "n": 3, "x": None, "ok": True})
    assert decode_payload(data) == {"qty": "0.00012300", "n": 3, "x": None, "ok": True}


def test_payloads_that_are_not_json_objects_are_refused() -> None:
    with pytest.raises(PayloadEncodingError, match="must be a mapping"):
        encode_payload([1, 2])  # type: ignore[arg-type]
    with pytest.raises(PayloadEncodingError, match=r"not JSON-serializable.*set"):
        encode_payload({"tags": {1, 2}})
    with pytest.raises(PayloadDecodingError, match="not an object"):
        decode_payload(b"[1, 2]")
    with pytest.raises(PayloadDecodingError, match="not valid JSON"):
        decode_payload(b"{nope")


def test_reply_values_become_text_whether_or_not_the_client_decodes() -> None:
    assert fields_as_text({b"a": b"1", "b": "2"}) == {"a": "1", "b": "2"}
    with pytest.raises(TypeError, match="expected bytes or str"):
        as_text(None)


def test_default_consumer_names_are_unique_per_queue() -> None:
    assert default_consumer_name() != default_consumer_name()

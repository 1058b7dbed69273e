"""JWT issue and verification: claims, algorithms, keys, expiry, types, rotation."""

from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest

from trademk.engine.clock import SimClock
from trademk.security.tokens import TokenCodec, TokenError, TokenType, signing_key

NOW_NS = 1_800_000_000 * 1_000_000_000
SECRET = "unit-test-secret-key"


def codec(clock: SimClock, secret: str = SECRET, previous: tuple[str, ...] = ()) -> TokenCodec:
    return TokenCodec(secret, clock, 900, 86400, previous_secrets=previous)


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_issued_token_carries_the_required_claims_and_round_trips() -> None:
    clock = SimClock(NOW_NS)
    user_id = uuid.uuid4()
    issued = codec(clock).issue(user_id, TokenType.ACCESS)
    claims = _claims(issued.token)
    assert {"sub", "type", "jti", "iat", "exp", "iss"} <= set(claims)
    assert claims["exp"] == claims["iat"] + 900  # type: ignore[operator]
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    decoded = codec(clock).decode(issued.token, TokenType.ACCESS)
    assert decoded.user_id == user_id and decoded.token_id == issued.claims.token_id


def test_expiry_is_judged_by_the_injected_clock() -> None:
    clock = SimClock(NOW_NS)
    tokens = codec(clock)
    issued = tokens.issue(uuid.uuid4(), TokenType.ACCESS)
    clock.advance(899 * 1_000_000_000)
    assert tokens.decode(issued.token, TokenType.ACCESS)
    clock.advance(1_000_000_000)
    with pytest.raises(TokenError, match="expired"):
        tokens.decode(issued.token, TokenType.ACCESS)


def test_wrong_type_is_refused_both_ways() -> None:
    clock = SimClock(NOW_NS)
    tokens = codec(clock)
    refresh = tokens.issue(uuid.uuid4(), TokenType.REFRESH, family_id=uuid.uuid4())
    access = tokens.issue(uuid.uuid4(), TokenType.ACCESS)
    with pytest.raises(TokenError, match="expected access"):
        tokens.decode(refresh.token, TokenType.ACCESS)
    with pytest.raises(TokenError, match="expected refresh"):
        tokens.decode(access.token, TokenType.REFRESH)
    assert tokens.decode(refresh.token, TokenType.REFRESH).family_id == refresh.claims.family_id


def test_a_token_signed_with_another_key_is_refused() -> None:
    clock = SimClock(NOW_NS)
    forged = codec(clock, secret="someone-elses-key").issue(uuid.uuid4(), TokenType.ACCESS)
    with pytest.raises(TokenError, match="signature"):
        codec(clock).decode(forged.token, TokenType.ACCESS)


def _payload(clock: SimClock) -> dict[str, object]:
    now = clock.now_ns() // 1_000_000_000
    return {
        "sub": str(uuid.uuid4()),
        "type": "access",
        "jti": "x",
        "iat": now,
        "exp": now + 60,
        "iss": "trademk",
    }


def test_alg_none_and_other_algorithms_are_refused() -> None:
    clock = SimClock(NOW_NS)
    key = signing_key(SECRET)
    unsigned = jwt.encode(_payload(clock), key=None, algorithm="none")
    hs384 = jwt.encode(_payload(clock), key * 2, algorithm="HS384")
    header = base64.urlsafe_b64encode(b'{"alg":"None","typ":"JWT"}').rstrip(b"=").decode()
    mixed_case_none = ".".join([header, hs384.split(".")[1], ""])
    for token in (unsigned, hs384, mixed_case_none):
        with pytest.raises(TokenError, match="algorithm"):
            codec(clock).decode(token, TokenType.ACCESS)


def test_missing_claims_wrong_issuer_and_garbage_are_refused() -> None:
    clock = SimClock(NOW_NS)
    key = signing_key(SECRET)
    payload = _payload(clock)
    del payload["jti"]
    no_jti = jwt.encode(payload, key, algorithm="HS256")
    other_issuer = jwt.encode({**_payload(clock), "iss": "elsewhere"}, key, algorithm="HS256")
    for token in (no_jti, other_issuer, "garbage", ""):
        with pytest.raises(TokenError):
            codec(clock).decode(token, TokenType.ACCESS)


def test_tokens_from_the_future_are_refused() -> None:
    clock = SimClock(NOW_NS)
    ahead = SimClock(NOW_NS + 3600 * 1_000_000_000)
    issued = codec(ahead).issue(uuid.uuid4(), TokenType.ACCESS)
    with pytest.raises(TokenError, match="future"):
        codec(clock).decode(issued.token, TokenType.ACCESS)


def test_previous_key_still_verifies_during_rotation_new_tokens_use_the_new_key() -> None:
    clock = SimClock(NOW_NS)
    old = codec(clock, secret="old-secret").issue(uuid.uuid4(), TokenType.REFRESH)
    rotated = codec(clock, secret="new-secret", previous=("old-secret",))
    assert rotated.decode(old.token, TokenType.REFRESH).user_id == old.claims.user_id
    fresh = rotated.issue(uuid.uuid4(), TokenType.ACCESS)
    assert codec(clock, secret="new-secret").decode(fresh.token, TokenType.ACCESS)
    with pytest.raises(TokenError):
        codec(clock, secret="old-secret").decode(fresh.token, TokenType.ACCESS)


def test_signing_key_is_derived_and_full_length() -> None:
    assert len(signing_key("short")) == 32
    assert signing_key("a") != signing_key("b")
    assert signing_key("a") != b"a"

"""JSON Web Tokens: HS256 access and refresh tokens signed with SECRET_KEY.

Every token carries ``sub`` (user id), ``type`` (access | refresh), ``jti``,
``iat``, ``exp`` and ``iss``. Decoding accepts HS256 only (``alg: none`` and
every other algorithm are refused), checks the signature against the current
key and then against the previous one (key rotation), and checks expiry
against the platform clock rather than the machine's.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from trademk.engine.clock import Clock

ALGORITHM = "HS256"
ISSUER = "trademk"
_NANOS = 1_000_000_000
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "type", "iss"]
# The clock of another process may run slightly ahead of ours.
_FUTURE_IAT_TOLERANCE_SECONDS = 60


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class TokenError(Exception):
    """A token that must not be accepted; the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token."""

    user_id: uuid.UUID
    token_type: TokenType
    token_id: str
    issued_at: int
    expires_at: int
    family_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


def signing_key(secret: str) -> bytes:
    """The 32-byte HMAC key for tokens, derived from SECRET_KEY.

    Deriving keeps SECRET_KEY's other uses separate from token signing and
    gives HS256 a full-length key whatever the length of the secret.
    """
    return hmac.new(secret.encode(), b"trademk/jwt/v1", hashlib.sha256).digest()


class TokenCodec:
    """Issues and verifies tokens."""

    def __init__(
        self,
        secret: str,
        clock: Clock,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
        previous_secrets: tuple[str, ...] = (),
    ) -> None:
        if not secret:
            raise ValueError("the token secret is empty")
        self._keys = [signing_key(secret), *(signing_key(s) for s in previous_secrets if s)]
        self._clock = clock
        self._ttl = {TokenType.ACCESS: access_ttl_seconds, TokenType.REFRESH: refresh_ttl_seconds}

    def now(self) -> int:
        return self._clock.now_ns() // _NANOS

    def ttl_seconds(self, token_type: TokenType) -> int:
        return self._ttl[token_type]

    def issue(
        self, user_id: uuid.UUID, token_type: TokenType, family_id: uuid.UUID | None = None
    ) -> IssuedToken:
        """A new signed token for ``user_id`` valid for the type's lifetime."""
        now = self.now()
        claims = TokenClaims(
            user_id=user_id,
            token_type=token_type,
            token_id=uuid.uuid4().hex,
            issued_at=now,
            expires_at=now + self._ttl[token_type],
            family_id=family_id,
        )
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "type": token_type.value,
            "jti": claims.token_id,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "iss": ISSUER,
        }
        if family_id is not None:
            payload["fam"] = str(family_id)
        token = jwt.encode(payload, self._keys[0], algorithm=ALGORITHM)
        return IssuedToken(token=token, claims=claims)

    def decode(self, token: str, expected: TokenType) -> TokenClaims:
        """The claims of a valid token of the ``expected`` type; TokenError otherwise."""
        payload = self._verified_payload(token)
        if payload.get("type") != expected.value:
            raise TokenError(f"wrong token type: expected {expected.value}")
        now = self.now()
        expires_at, issued_at = payload["exp"], payload["iat"]
        if not isinstance(expires_at, int) or not isinstance(issued_at, int):
            raise TokenError("malformed token times")
        if now >= expires_at:
            raise TokenError("token expired")
        if issued_at > now + _FUTURE_IAT_TOLERANCE_SECONDS:
            raise TokenError("token issued in the future")
        try:
            user_id = uuid.UUID(str(payload["sub"]))
            family = uuid.UUID(str(payload["fam"])) if "fam" in payload else None
        except ValueError:
            raise TokenError("malformed token subject") from None
        return TokenClaims(
            user_id=user_id,
            token_type=expected,
            token_id=str(payload["jti"]),
            issued_at=issued_at,
            expires_at=expires_at,
            family_id=family,
        )

    def _verified_payload(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("token algorithm not accepted")
        options: dict[str, Any] = {
            "verify_exp": False,  # checked against the platform clock instead
            "verify_iat": False,
            "verify_nbf": False,
            "require": _REQUIRED_CLAIMS,
        }
        for key in self._keys:
            try:
                payload: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    issuer=ISSUER,
                    options=options,  # type: ignore[arg-type]
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as err:
                raise TokenError(f"invalid token: {err}") from None
            return payload
        raise TokenError("token signature does not verify")

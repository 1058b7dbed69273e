"""Password login: throttled, audited, answering the same for every kind of failure."""

from __future__ import annotations

from trademk.security.audit import Actor, AuditAction, AuditOutcome
from trademk.security.errors import AuthenticationError
from trademk.security.services import SecurityServices
from trademk.security.sessions import TokenPair

INVALID_CREDENTIALS = "invalid email or password"


async def login(
    services: SecurityServices,
    email: str,
    password: str,
    *,
    ip: str,
    request_id: str | None = None,
) -> TokenPair:
    """A new session for valid credentials.

    Raises RateLimitedError while the account or address is throttled (even
    for the right password), and AuthenticationError for a wrong password, an
    unknown or inactive account alike.
    """
    await services.login_throttle.check(email, ip)
    user = await services.users.authenticate(email, password)
    if user is None:
        await services.login_throttle.record_failure(email, ip)
        await services.audit.record(
            AuditAction.LOGIN,
            actor=Actor.anonymous(email.strip().lower()[:320]),
            outcome=AuditOutcome.FAILURE,
            request_id=request_id,
            ip=ip,
        )
        raise AuthenticationError(INVALID_CREDENTIALS)
    await services.login_throttle.record_success(email, ip)
    pair = await services.session_tokens.open(user.id)
    await services.audit.record(
        AuditAction.LOGIN,
        actor=Actor(user.id, user.email, "password"),
        target=user.email,
        request_id=request_id,
        ip=ip,
    )
    return pair

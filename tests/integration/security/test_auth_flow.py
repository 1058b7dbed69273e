"""Login, sessions, refresh rotation, logout, token rejection, login throttling, audit."""

from __future__ import annotations

import uuid

import jwt
from sqlalchemy import select

from tests.integration.security.conftest import PASSWORD, ApiFactory, bearer
from trademk.engine.clock import LiveClock, SimClock
from trademk.security.roles import Role
from trademk.security.tokens import TokenCodec, TokenType, signing_key
from trademk.storage.auth_models import RefreshTokenRecord


async def test_login_returns_tokens_that_identify_the_user(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.TRADER, email="Trader.One@Example.com")
        tokens = await api.login("trader.one@example.com")
        me = await api.client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    assert tokens["refresh_expires_in"] == 14 * 86400
    assert me.status_code == 200
    body = me.json()
    assert (body["id"], body["email"], body["role"]) == (str(user.id), user.email, "trader")
    assert body["auth_method"] == "jwt" and body["scopes"] == []


async def test_login_responses_are_not_cached(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        response = await api.client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_password_unknown_and_inactive_users_get_the_same_401(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        inactive = await api.user(Role.VIEWER)
        await api.platform.security.users.update(inactive.id, is_active=False)
        attempts = [
            {"email": user.email, "password": "wrong password!"},
            {"email": "nobody@example.com", "password": PASSWORD},
            {"email": inactive.email, "password": PASSWORD},
        ]
        responses = [await api.client.post("/api/v1/auth/login", json=a) for a in attempts]
    assert [r.status_code for r in responses] == [401, 401, 401]
    assert {r.json()["detail"] for r in responses} == {"invalid email or password"}


async def test_refresh_rotates_and_the_old_refresh_token_stops_working(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        first = await api.login(user.email)
        rotated = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        second = rotated.json()
        replayed = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        # Replaying a spent token revokes the whole session, the new token included.
        after_theft = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        me = await api.client.get("/api/v1/users/me", headers=bearer(second["access_token"]))
    assert rotated.status_code == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert replayed.status_code == 401
    assert "already used" in replayed.json()["detail"]
    assert after_theft.status_code == 401
    assert me.status_code == 200  # access tokens live until they expire


async def test_refresh_tokens_are_stored_only_as_digests(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        tokens = await api.login(user.email)
        async with api.platform.sessions() as session:
            rows = (
                await session.scalars(
                    select(RefreshTokenRecord).where(RefreshTokenRecord.user_id == user.id)
                )
            ).all()
    assert len(rows) == 1
    assert rows[0].token_hash != tokens["refresh_token"]
    assert len(rows[0].token_hash) == 64
    assert tokens["refresh_token"] not in repr([vars(row) for row in rows])


async def test_logout_ends_the_session_and_the_access_token_at_once(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        tokens = await api.login(user.email)
        headers = bearer(tokens["access_token"])
        out = await api.client.post(
            "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
        )
        me = await api.client.get("/api/v1/users/me", headers=headers)
        refresh = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
    assert out.status_code == 204
    assert me.status_code == 401
    assert refresh.status_code == 401


async def test_logout_of_all_sessions_revokes_every_refresh_token(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        laptop = await api.login(user.email)
        phone = await api.login(user.email)
        out = await api.client.post(
            "/api/v1/auth/logout",
            json={"all_sessions": True},
            headers=bearer(laptop["access_token"]),
        )
        refresh = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}
        )
    assert out.status_code == 204
    assert refresh.status_code == 401


async def test_expired_forged_wrong_key_and_alg_none_tokens_are_rejected(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        user = await api.user(Role.ADMIN)
        secret = api.platform.settings.secret_key.get_secret_value()
        past = SimClock(start_ns=LiveClock().now_ns() - 3600 * 1_000_000_000)
        expired = TokenCodec(secret, past, 60, 60).issue(user.id, TokenType.ACCESS).token
        wrong_key = TokenCodec("another-secret", LiveClock(), 900, 60)
        forged_key = wrong_key.issue(user.id, TokenType.ACCESS).token
        claims = {
            "sub": str(user.id),
            "type": "access",
            "jti": uuid.uuid4().hex,
            "iat": LiveClock().now_ns() // 1_000_000_000,
            "exp": LiveClock().now_ns() // 1_000_000_000 + 900,
            "iss": "trademk",
        }
        alg_none = jwt.encode(claims, key=None, algorithm="none")
        hs512 = jwt.encode(claims, signing_key(secret) * 2, algorithm="HS512")
        genuine = api.access_token(user)
        header, _, signature = genuine.split(".")
        other = api.access_token(await api.user(Role.VIEWER))
        spliced = ".".join([header, other.split(".")[1], signature])
        refresh_as_access = api.platform.security.tokens.issue(user.id, TokenType.REFRESH).token
        results = {}
        for name, token in {
            "expired": expired,
            "wrong key": forged_key,
            "alg none": alg_none,
            "hs512": hs512,
            "tampered payload": spliced,
            "refresh as access": refresh_as_access,
            "garbage": "not-a-token",
        }.items():
            response = await api.client.get("/api/v1/users/me", headers=bearer(token))
            results[name] = response.status_code
        ok = await api.client.get("/api/v1/users/me", headers=bearer(genuine))
    assert results == dict.fromkeys(results, 401)
    assert ok.status_code == 200


async def test_access_token_cannot_be_used_to_refresh(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        tokens = await api.login(user.email)
        response = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]}
        )
    assert response.status_code == 401
    assert "refresh" in response.json()["detail"]


async def test_access_tokens_expire_on_the_platform_clock(secure_api: ApiFactory) -> None:
    clock = SimClock(start_ns=LiveClock().now_ns())
    async with secure_api(clock=clock, access_token_minutes=5) as api:
        user = await api.user(Role.VIEWER)
        token = api.access_token(user)
        before = await api.client.get("/api/v1/users/me", headers=bearer(token))
        clock.advance(5 * 60 * 1_000_000_000)
        after = await api.client.get("/api/v1/users/me", headers=bearer(token))
    assert before.status_code == 200
    assert after.status_code == 401
    assert "expired" in after.json()["detail"]


async def test_missing_or_malformed_credentials_are_401_with_bearer_challenge(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        anonymous = await api.client.get("/api/v1/users/me")
        basic = await api.client.get("/api/v1/users/me", headers={"Authorization": "Basic eDp5"})
    assert anonymous.status_code == 401 and basic.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"


async def test_deactivating_a_user_refuses_their_live_token_at_once(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        user = await api.user(Role.TRADER)
        token = api.access_token(user)
        await api.platform.security.users.update(user.id, is_active=False)
        response = await api.client.get("/api/v1/users/me", headers=bearer(token))
    assert response.status_code == 401


async def test_repeated_failed_logins_are_throttled_even_with_the_right_password(
    secure_api: ApiFactory,
) -> None:
    async with secure_api(login_max_failures=3, login_failure_window_seconds=600) as api:
        victim = await api.user(Role.ADMIN)
        bystander = await api.user(Role.VIEWER)
        wrong = {"email": victim.email, "password": "guess-guess-guess"}
        failures = [
            (await api.client.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(3)
        ]
        throttled = await api.client.post(
            "/api/v1/auth/login", json={"email": victim.email, "password": PASSWORD}
        )
        other = await api.client.post(
            "/api/v1/auth/login", json={"email": bystander.email, "password": PASSWORD}
        )
    assert failures == [401, 401, 401]
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 600
    assert other.status_code == 200


async def test_failed_logins_from_one_address_are_throttled_across_accounts(
    secure_api: ApiFactory,
) -> None:
    async with secure_api(login_max_failures=10, login_max_failures_per_ip=4) as api:
        statuses = []
        for attempt in range(5):
            response = await api.client.post(
                "/api/v1/auth/login",
                json={"email": f"probe{attempt}@example.com", "password": "nope-nope-nope"},
            )
            statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 429]


async def test_logins_are_audited_with_request_id_and_outcome(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        await api.client.post(
            "/api/v1/auth/login",
            json={"email": user.email, "password": "wrong-wrong-wrong"},
            headers={"X-Request-ID": "req-failed-1"},
        )
        await api.client.post(
            "/api/v1/auth/login",
            json={"email": user.email, "password": PASSWORD},
            headers={"X-Request-ID": "req-ok-1"},
        )
        entries = await api.platform.security.audit.query(action="login")
    by_request = {entry.request_id: entry for entry in entries}
    assert by_request["req-failed-1"].outcome == "failure"
    assert by_request["req-failed-1"].actor_email == user.email
    assert by_request["req-failed-1"].actor_user_id is None
    assert by_request["req-ok-1"].outcome == "success"
    assert by_request["req-ok-1"].actor_user_id == user.id
    assert all("wrong-wrong-wrong" not in repr(entry) for entry in entries)

"""API keys: shown once, stored hashed, scoped, expiring, revocable, audited."""

from __future__ import annotations

from sqlalchemy import select

from tests.integration.security.conftest import ApiFactory, bearer
from trademk.engine.clock import LiveClock, SimClock
from trademk.security.roles import Role, Scope
from trademk.storage.auth_models import ApiKeyRecord

DAY_NS = 86400 * 1_000_000_000


async def test_created_key_is_shown_once_and_stored_as_a_digest(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.TRADER)
        headers = bearer(api.access_token(user))
        created = await api.client.post(
            "/api/v1/api-keys",
            json={"name": "bot", "scopes": ["read", "trade"], "expires_in_days": 30},
            headers=headers,
        )
        listed = await api.client.get("/api/v1/api-keys", headers=headers)
        async with api.platform.sessions() as session:
            row = await session.scalar(select(ApiKeyRecord).where(ApiKeyRecord.user_id == user.id))
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith(body["prefix"] + "_") and body["prefix"].startswith("tmk_")
    assert body["scopes"] == ["read", "trade"] and body["expires_at"] is not None
    assert listed.status_code == 200
    assert [k["prefix"] for k in listed.json()] == [body["prefix"]]
    assert "key" not in listed.json()[0]
    assert row is not None and row.prefix == body["prefix"]
    assert key not in repr(vars(row)) and row.key_hash != key


async def test_key_authenticates_by_bearer_and_by_x_api_key(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        key = await api.api_key(user, Scope.READ)
        by_bearer = await api.client.get("/api/v1/users/me", headers=bearer(key))
        by_header = await api.client.get("/api/v1/users/me", headers={"X-API-Key": key})
        conflicting = await api.client.get(
            "/api/v1/users/me", headers={"X-API-Key": key, **bearer(api.access_token(user))}
        )
    assert by_bearer.status_code == by_header.status_code == 200
    me = by_header.json()
    assert me["auth_method"] == "api_key" and me["scopes"] == ["read"]
    assert me["api_key_id"] is not None
    assert conflicting.status_code == 401


async def test_key_acts_with_owner_role_limited_by_scopes(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        read_key = await api.api_key(admin, Scope.READ)
        admin_key = await api.api_key(admin, Scope.ADMIN)
        with_read = await api.client.get("/api/v1/users", headers=bearer(read_key))
        with_admin = await api.client.get("/api/v1/users", headers=bearer(admin_key))
        me = await api.client.get("/api/v1/users/me", headers=bearer(read_key))
    assert with_read.status_code == 403
    assert "scope" in with_read.json()["detail"]
    assert with_admin.status_code == 200
    assert me.json()["role"] == "admin" and me.json()["effective_role"] == "viewer"


async def test_owner_demotion_limits_an_existing_admin_key(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        first_admin = await api.user(Role.ADMIN)
        second_admin = await api.user(Role.ADMIN)
        key = await api.api_key(second_admin, Scope.ADMIN)
        before = await api.client.get("/api/v1/users", headers=bearer(key))
        await api.platform.security.users.update(second_admin.id, role=Role.VIEWER)
        after = await api.client.get("/api/v1/users", headers=bearer(key))
    assert first_admin.role is Role.ADMIN
    assert before.status_code == 200
    assert after.status_code == 403


async def test_keys_cannot_carry_more_than_the_owner_role(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        viewer = await api.user(Role.VIEWER)
        response = await api.client.post(
            "/api/v1/api-keys",
            json={"name": "too strong", "scopes": ["trade"]},
            headers=bearer(api.access_token(viewer)),
        )
    assert response.status_code == 403
    assert "trade" in response.json()["detail"]


async def test_an_api_key_cannot_mint_api_keys(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        key = await api.api_key(admin, Scope.ADMIN)
        response = await api.client.post(
            "/api/v1/api-keys", json={"name": "child", "scopes": ["admin"]}, headers=bearer(key)
        )
    assert response.status_code == 403
    assert "login session" in response.json()["detail"]


async def test_revoked_key_is_refused_at_once(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.TRADER)
        created = await api.client.post(
            "/api/v1/api-keys",
            json={"name": "bot", "scopes": ["trade"]},
            headers=bearer(api.access_token(user)),
        )
        key, key_id = created.json()["key"], created.json()["id"]
        before = await api.client.get("/api/v1/users/me", headers=bearer(key))
        revoked = await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(key))
        after = await api.client.get("/api/v1/users/me", headers=bearer(key))
    assert before.status_code == 200
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


async def test_expired_key_is_refused(secure_api: ApiFactory) -> None:
    clock = SimClock(start_ns=LiveClock().now_ns())
    async with secure_api(clock=clock) as api:
        user = await api.user(Role.VIEWER)
        key = await api.api_key(user, Scope.READ, days=1)
        before = await api.client.get("/api/v1/users/me", headers=bearer(key))
        clock.advance(DAY_NS + 1)
        after = await api.client.get("/api/v1/users/me", headers=bearer(key))
    assert before.status_code == 200
    assert after.status_code == 401
    assert "expired" in after.json()["detail"]


async def test_forged_and_malformed_keys_are_refused(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.VIEWER)
        key = await api.api_key(user, Scope.READ)
        prefix, _, secret = key.rpartition("_")
        forged = f"{prefix}_{'x' * len(secret)}"
        statuses = [
            (await api.client.get("/api/v1/users/me", headers=bearer(candidate))).status_code
            for candidate in (forged, "tmk_short", "tmk_0123456789ab_" + "y" * 43)
        ]
    assert statuses == [401, 401, 401]


async def test_deactivated_owner_key_is_refused(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        user = await api.user(Role.TRADER)
        key = await api.api_key(user, Scope.TRADE)
        await api.platform.security.users.update(user.id, is_active=False)
        response = await api.client.get("/api/v1/users/me", headers=bearer(key))
    assert response.status_code == 401


async def test_admin_sees_and_revokes_other_users_keys_others_cannot(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        owner = await api.user(Role.TRADER)
        stranger = await api.user(Role.TRADER)
        key = await api.api_key(owner, Scope.TRADE)
        keys = await api.platform.security.api_keys.list_for(owner.id)
        key_id = keys[0].id
        as_stranger_list = await api.client.get(
            f"/api/v1/users/{owner.id}/api-keys", headers=bearer(api.access_token(stranger))
        )
        as_stranger_revoke = await api.client.delete(
            f"/api/v1/api-keys/{key_id}", headers=bearer(api.access_token(stranger))
        )
        still_works = await api.client.get("/api/v1/users/me", headers=bearer(key))
        as_admin_list = await api.client.get(
            f"/api/v1/users/{owner.id}/api-keys", headers=bearer(api.access_token(admin))
        )
        as_admin_revoke = await api.client.delete(
            f"/api/v1/api-keys/{key_id}", headers=bearer(api.access_token(admin))
        )
        refused = await api.client.get("/api/v1/users/me", headers=bearer(key))
    assert as_stranger_list.status_code == 403
    assert as_stranger_revoke.status_code == 404
    assert still_works.status_code == 200
    assert as_admin_list.status_code == 200
    assert [k["id"] for k in as_admin_list.json()] == [str(key_id)]
    assert as_admin_revoke.status_code == 200
    assert refused.status_code == 401


async def test_key_creation_and_revocation_are_audited_without_the_key(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        user = await api.user(Role.TRADER)
        headers = bearer(api.access_token(user))
        created = (
            await api.client.post(
                "/api/v1/api-keys",
                json={"name": "audited", "scopes": ["read"]},
                headers={**headers, "X-Request-ID": "req-key-create"},
            )
        ).json()
        await api.client.delete(f"/api/v1/api-keys/{created['id']}", headers=headers)
        created_entries = await api.platform.security.audit.query(action="key_create")
        revoked_entries = await api.platform.security.audit.query(action="key_revoke")
    assert created_entries[0].target == created["prefix"]
    assert created_entries[0].actor_user_id == user.id
    assert created_entries[0].request_id == "req-key-create"
    assert revoked_entries[0].target == created["prefix"]
    assert created["key"] not in repr(created_entries + revoked_entries)

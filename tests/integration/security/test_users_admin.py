"""User administration over the API, the last-admin guard and the first-run admin."""

from __future__ import annotations

import uuid

from tests.integration.security.conftest import PASSWORD, ApiFactory, bearer
from trademk.security.roles import Role


async def test_admin_creates_reads_updates_and_deletes_users(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        headers = bearer(api.access_token(admin))
        created = await api.client.post(
            "/api/v1/users",
            json={"email": "New.Trader@Example.com", "password": PASSWORD, "role": "trader"},
            headers=headers,
        )
        user_id = created.json()["id"]
        duplicate = await api.client.post(
            "/api/v1/users",
            json={"email": "new.trader@example.com", "password": PASSWORD},
            headers=headers,
        )
        fetched = await api.client.get(f"/api/v1/users/{user_id}", headers=headers)
        listed = await api.client.get("/api/v1/users", headers=headers)
        patched = await api.client.patch(
            f"/api/v1/users/{user_id}", json={"role": "viewer"}, headers=headers
        )
        deleted = await api.client.delete(f"/api/v1/users/{user_id}", headers=headers)
        gone = await api.client.get(f"/api/v1/users/{user_id}", headers=headers)
    assert created.status_code == 201
    assert created.json()["email"] == "new.trader@example.com"
    assert created.json()["role"] == "trader"
    assert duplicate.status_code == 409
    assert fetched.status_code == 200 and fetched.json()["id"] == user_id
    assert {u["email"] for u in listed.json()} >= {admin.email, "new.trader@example.com"}
    assert patched.status_code == 200 and patched.json()["role"] == "viewer"
    assert deleted.status_code == 204
    assert gone.status_code == 404


async def test_non_admins_cannot_manage_users(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        trader = await api.user(Role.TRADER)
        headers = bearer(api.access_token(trader))
        listing = await api.client.get("/api/v1/users", headers=headers)
        creating = await api.client.post(
            "/api/v1/users",
            json={"email": "x@example.com", "password": PASSWORD, "role": "admin"},
            headers=headers,
        )
    assert listing.status_code == 403 and creating.status_code == 403
    assert listing.json()["detail"] == "this action needs the admin role"


async def test_a_role_change_takes_effect_on_the_next_request(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        await api.user(Role.ADMIN)
        promoted = await api.user(Role.VIEWER)
        token = api.access_token(promoted)
        before = await api.client.get("/api/v1/users", headers=bearer(token))
        await api.platform.security.users.update(promoted.id, role=Role.ADMIN)
        after = await api.client.get("/api/v1/users", headers=bearer(token))
    assert before.status_code == 403
    assert after.status_code == 200


async def test_the_last_active_admin_cannot_be_removed(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        other = await api.user(Role.ADMIN)
        headers = bearer(api.access_token(admin))
        demote_other = await api.client.patch(
            f"/api/v1/users/{other.id}", json={"role": "trader"}, headers=headers
        )
        demote_self = await api.client.patch(
            f"/api/v1/users/{admin.id}", json={"role": "trader"}, headers=headers
        )
        deactivate_self = await api.client.patch(
            f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=headers
        )
        delete_self = await api.client.delete(f"/api/v1/users/{admin.id}", headers=headers)
    assert demote_other.status_code == 200
    assert demote_self.status_code == 409 and "last active admin" in demote_self.json()["detail"]
    assert deactivate_self.status_code == 409
    assert delete_self.status_code == 409


async def test_weak_passwords_are_refused_without_echoing_them(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        headers = bearer(api.access_token(admin))
        weak = await api.client.post(
            "/api/v1/users",
            json={"email": "weak@example.com", "password": "short-pw"},
            headers=headers,
        )
        too_long = await api.client.post(
            "/api/v1/users",
            json={"email": "long@example.com", "password": "p" * 300},
            headers=headers,
        )
        missing_email = await api.client.post(
            "/api/v1/users", json={"password": "hunter2-hunter2"}, headers=headers
        )
    assert weak.status_code == 422 and "at least 10" in weak.json()["detail"][0]["msg"]
    assert too_long.status_code == 422 and "p" * 300 not in too_long.text
    assert missing_email.status_code == 422
    assert "hunter2-hunter2" not in missing_email.text


async def test_password_change_ends_sessions_and_the_new_password_works(
    secure_api: ApiFactory,
) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        user = await api.user(Role.VIEWER)
        tokens = await api.login(user.email)
        changed = await api.client.patch(
            f"/api/v1/users/{user.id}",
            json={"password": "a brand new passphrase"},
            headers=bearer(api.access_token(admin)),
        )
        refresh = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        new_login = await api.client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": "a brand new passphrase"}
        )
        entries = await api.platform.security.audit.query(action="user_update")
    assert changed.status_code == 200
    assert refresh.status_code == 401
    assert new_login.status_code == 200
    assert entries[0].detail == {"changed": ["password"]}


async def test_deleting_a_user_keeps_their_audit_trail(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        user = await api.user(Role.VIEWER)
        await api.login(user.email)
        deleted = await api.client.delete(
            f"/api/v1/users/{user.id}", headers=bearer(api.access_token(admin))
        )
        logins = await api.platform.security.audit.query(action="login")
    assert deleted.status_code == 204
    mine = [entry for entry in logins if entry.actor_email == user.email]
    assert len(mine) == 1 and mine[0].actor_user_id is None


async def test_first_start_creates_the_admin_from_settings(secure_api: ApiFactory) -> None:
    async with secure_api(
        trademk_admin_email="Boss@Example.com", trademk_admin_password="first-run-password"
    ) as api:
        tokens = await api.login("boss@example.com", "first-run-password")
        me = await api.client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        users = await api.platform.security.users.list()
    assert me.json()["role"] == "admin"
    assert [u.email for u in users] == ["boss@example.com"]


async def test_first_run_admin_is_not_created_when_users_exist(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        await api.user(Role.VIEWER, email="early@example.com")
    async with secure_api(
        trademk_admin_email="late@example.com", trademk_admin_password="first-run-password"
    ) as api:
        users = await api.platform.security.users.list()
        created = await api.platform.security.ensure_first_admin(generate=True)
    assert [u.email for u in users] == ["early@example.com"]
    assert created is None


async def test_generated_first_admin_password_logs_in(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        first = await api.platform.security.ensure_first_admin(generate=True)
        assert first is not None and first.generated_password is not None
        tokens = await api.login(first.user.email, first.generated_password)
    assert first.user.email == "admin@localhost"
    assert first.user.role is Role.ADMIN
    assert len(first.generated_password) >= 20
    assert tokens["access_token"]


async def test_unknown_user_ids_are_404(secure_api: ApiFactory) -> None:
    async with secure_api() as api:
        admin = await api.user(Role.ADMIN)
        response = await api.client.get(
            f"/api/v1/users/{uuid.uuid4()}", headers=bearer(api.access_token(admin))
        )
    assert response.status_code == 404

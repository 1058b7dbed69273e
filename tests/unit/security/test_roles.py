"""Roles, scopes and who satisfies which rule."""

from __future__ import annotations

import uuid

import pytest

from trademk.security.principal import Principal
from trademk.security.roles import (
    AuthMethod,
    Requirement,
    Role,
    Scope,
    parse_role,
    parse_scopes,
    stored_role,
)


def session(role: Role) -> Principal:
    return Principal(uuid.uuid4(), "u@example.com", role, AuthMethod.JWT)


def key(role: Role, *scopes: Scope) -> Principal:
    return Principal(
        uuid.uuid4(), "u@example.com", role, AuthMethod.API_KEY, frozenset(scopes), uuid.uuid4()
    )


def test_roles_are_ordered_viewer_trader_admin() -> None:
    assert Role.ADMIN.includes(Role.TRADER) and Role.TRADER.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.TRADER)
    assert not Role.TRADER.includes(Role.ADMIN)


def test_each_scope_maps_to_one_role_and_back() -> None:
    assert [scope.role for scope in Scope] == [Role.VIEWER, Role.TRADER, Role.ADMIN]
    assert Requirement.of(Role.TRADER).scope is Scope.TRADE
    assert Requirement.of(Role.VIEWER).scope is Scope.READ
    assert Requirement.of(Role.ADMIN).scope is Scope.ADMIN


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.TRADER, False),
        (Role.TRADER, Role.TRADER, True),
        (Role.TRADER, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_sessions_need_the_role(role: Role, required: Role, allowed: bool) -> None:
    assert session(role).satisfies(Requirement.of(required)) is allowed


def test_a_key_needs_both_the_owner_role_and_a_scope() -> None:
    trade_rule = Requirement.of(Role.TRADER)
    assert key(Role.ADMIN, Scope.TRADE).satisfies(trade_rule)
    assert key(Role.ADMIN, Scope.ADMIN).satisfies(trade_rule)  # admin scope includes trade
    assert not key(Role.ADMIN, Scope.READ).satisfies(trade_rule)
    assert not key(Role.VIEWER, Scope.ADMIN).satisfies(trade_rule)  # role caps the scope


def test_effective_role_is_the_role_capped_by_the_key_scopes() -> None:
    assert key(Role.ADMIN, Scope.READ).effective_role is Role.VIEWER
    assert key(Role.TRADER, Scope.ADMIN).effective_role is Role.TRADER
    assert key(Role.ADMIN, Scope.READ, Scope.TRADE).effective_role is Role.TRADER
    assert session(Role.TRADER).effective_role is Role.TRADER


def test_session_only_rules_refuse_keys() -> None:
    rule = Requirement.of(Role.VIEWER, sessions_only=True)
    assert session(Role.VIEWER).satisfies(rule)
    assert not key(Role.ADMIN, Scope.ADMIN).satisfies(rule)


def test_acts_as_admin_needs_admin_role_and_for_keys_admin_scope() -> None:
    assert session(Role.ADMIN).acts_as_admin()
    assert key(Role.ADMIN, Scope.ADMIN).acts_as_admin()
    assert not key(Role.ADMIN, Scope.TRADE).acts_as_admin()
    assert not session(Role.TRADER).acts_as_admin()


def test_parsing_names_roles_and_scopes_clearly() -> None:
    assert parse_role(" Trader ") is Role.TRADER
    assert parse_scopes(["READ", "trade"]) == {Scope.READ, Scope.TRADE}
    with pytest.raises(ValueError, match="unknown role 'root'"):
        parse_role("root")
    with pytest.raises(ValueError, match="unknown scope 'write'"):
        parse_scopes(["write"])
    with pytest.raises(ValueError, match="list"):
        parse_scopes("read")


def test_an_unknown_stored_role_gets_the_least_rights() -> None:
    assert stored_role("superuser") is Role.VIEWER
    assert stored_role("admin") is Role.ADMIN

"""Roles, API-key scopes and the access rule a route declares.

The three roles are ordered: a trader can do everything a viewer can, an admin
everything a trader can. API-key scopes are ordered the same way and map onto
the roles one to one (read ⇒ viewer-level actions, trade ⇒ trader-level,
admin ⇒ admin-level). A request authenticated by an API key acts with its
owner's role, limited by the key's scopes: it needs both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a user may do; each role includes the ones before it."""

    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def includes(self, other: Role) -> bool:
        """Whether this role may do everything ``other`` may."""
        return self.rank >= other.rank


class Scope(StrEnum):
    """What an API key may be used for; each scope includes the ones before it."""

    READ = "read"
    TRADE = "trade"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _SCOPE_RANK[self]

    @property
    def role(self) -> Role:
        """The highest role whose actions this scope permits."""
        return SCOPE_ROLE[self]


class AuthMethod(StrEnum):
    """How a request proved who it is."""

    JWT = "jwt"
    API_KEY = "api_key"


_ROLE_RANK = {Role.VIEWER: 1, Role.TRADER: 2, Role.ADMIN: 3}
_SCOPE_RANK = {Scope.READ: 1, Scope.TRADE: 2, Scope.ADMIN: 3}
SCOPE_ROLE = {Scope.READ: Role.VIEWER, Scope.TRADE: Role.TRADER, Scope.ADMIN: Role.ADMIN}
ROLE_SCOPE = {role: scope for scope, role in SCOPE_ROLE.items()}


def parse_role(value: str) -> Role:
    """The role named ``value``; a clear ValueError for anything else."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {value!r}: use one of {names}") from None


def stored_role(value: str) -> Role:
    """The role stored for a user; an unknown stored value gets the least rights."""
    try:
        return Role(value)
    except ValueError:
        return Role.VIEWER


def parse_scopes(values: object) -> frozenset[Scope]:
    """A set of scopes from a list of names; unknown names are a ValueError."""
    if not isinstance(values, list | tuple | set | frozenset):
        raise ValueError("scopes must be a list of scope names")
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(str(value).strip().lower()))
        except ValueError:
            names = ", ".join(scope.value for scope in Scope)
            raise ValueError(f"unknown scope {value!r}: use one of {names}") from None
    return frozenset(scopes)


def highest_scope_rank(scopes: frozenset[Scope]) -> int:
    return max((scope.rank for scope in scopes), default=0)


@dataclass(frozen=True, slots=True)
class Requirement:
    """The access rule of a route.

    ``role`` is the least role the user needs and ``scope`` the least scope an
    API key needs. ``sessions_only`` routes refuse API keys (for example
    creating API keys, so a key cannot mint a stronger one). ``public_when``
    names a boolean setting that, when true, opens the route to anonymous
    callers (``public_market_data``).
    """

    role: Role
    scope: Scope
    sessions_only: bool = False
    public_when: str | None = None

    @classmethod
    def of(
        cls,
        role: Role,
        scope: Scope | None = None,
        *,
        sessions_only: bool = False,
        public_when: str | None = None,
    ) -> Requirement:
        """The rule for ``role``; the scope defaults to the one matching the role."""
        return cls(role, scope or ROLE_SCOPE[role], sessions_only, public_when)

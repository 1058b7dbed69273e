"""The authenticated caller of a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from trademk.security.roles import AuthMethod, Requirement, Role, Scope, highest_scope_rank


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and how they proved it.

    ``role`` is the user's role as stored now (a demotion takes effect on the
    next request). For API keys ``scopes`` and ``key_id`` are set, and the
    effective rights are the role limited by the scopes.
    """

    user_id: uuid.UUID
    email: str
    role: Role
    auth_method: AuthMethod
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    key_id: uuid.UUID | None = None
    token_id: str | None = None

    @property
    def is_api_key(self) -> bool:
        return self.auth_method is AuthMethod.API_KEY

    @property
    def effective_role(self) -> Role:
        """The role this request acts with: the user's role, capped by key scopes."""
        if not self.is_api_key:
            return self.role
        cap = highest_scope_rank(self.scopes)
        allowed = [role for role in Role if role.rank <= min(cap, self.role.rank)]
        return allowed[-1] if allowed else Role.VIEWER

    def has_role(self, role: Role) -> bool:
        """Whether the user's role reaches ``role`` (ignoring key scopes)."""
        return self.role.includes(role)

    def has_scope(self, scope: Scope) -> bool:
        """Sessions have every scope; an API key needs one at least as strong."""
        return not self.is_api_key or highest_scope_rank(self.scopes) >= scope.rank

    def satisfies(self, requirement: Requirement) -> bool:
        """Whether this caller may use a route declaring ``requirement``."""
        if requirement.sessions_only and self.is_api_key:
            return False
        return self.has_role(requirement.role) and self.has_scope(requirement.scope)

    def acts_as_admin(self) -> bool:
        """Admin rights for this request: admin role and, for keys, the admin scope."""
        return self.satisfies(Requirement.of(Role.ADMIN))

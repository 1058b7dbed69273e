"""Errors of the security services; the API maps each to one HTTP status."""

from __future__ import annotations


class SecurityError(Exception):
    """Base of the security errors; the message is safe to show to the caller."""


class AuthenticationError(SecurityError):
    """The caller did not prove who they are (HTTP 401)."""


class PermissionDeniedError(SecurityError):
    """The caller is known but may not do this (HTTP 403)."""


class NotFoundError(SecurityError):
    """No such user or key, or not one the caller may see (HTTP 404)."""


class ConflictError(SecurityError):
    """The change conflicts with the current state (HTTP 409)."""


class InvalidInputError(SecurityError, ValueError):
    """The input is malformed; the message says what to change (HTTP 422).

    ``location`` names the offending input the way request validation does,
    e.g. ``("body", "email")`` or ``("query", "since")``.
    """

    def __init__(self, message: str, location: tuple[str, ...] = ("body",)) -> None:
        super().__init__(message)
        self.location = location

"""The error tree, shaped for retry decisions (DESIGN.md §6.7).

Callers decide by type, never by message:

- ``TransientError``: the operation may succeed if repeated (network blip, venue
  hiccup); retry with backoff. ``RateLimitedError`` is a transient error that
  says how long to wait.
- ``RejectedError``: the venue or the risk engine said no; repeating the same
  request gets the same answer, so do not retry.
- ``InvariantViolation``: our own model is inconsistent (an illegal order
  transition, an overfill); stop and fail fast rather than trade on bad state.
"""

from __future__ import annotations


class TrademkError(Exception):
    """Root of every error Trademk raises on purpose."""


class TransientError(TrademkError):
    """A temporary failure: retrying the same operation may succeed."""


class RateLimitedError(TransientError):
    """The venue throttled us; wait ``retry_after`` seconds (if known) before retrying."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        if retry_after is not None and retry_after < 0:
            raise ValueError(f"retry_after must be >= 0 seconds, got {retry_after}")
        super().__init__(message)
        self.retry_after = retry_after


class RejectedError(TrademkError):
    """The venue or the risk engine refused the request; retrying will not help."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


class InvariantViolation(TrademkError):
    """The model reached, or was asked to reach, a state that must never exist."""


class IllegalOrderTransition(InvariantViolation):
    """An order event asked for a status change the lifecycle table does not allow."""

    def __init__(self, client_order_id: str, from_status: str, to_status: str) -> None:
        super().__init__(
            f"order {client_order_id!r}: illegal transition {from_status} -> {to_status}"
        )
        self.client_order_id = client_order_id
        self.from_status = from_status
        self.to_status = to_status

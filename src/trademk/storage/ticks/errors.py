"""Errors raised by the TickStore backends."""

from __future__ import annotations


class TickStoreError(Exception):
    """A tick store could not do what was asked."""


class TickStoreUnavailableError(TickStoreError, ConnectionError):
    """The store's server cannot be reached (refused, dropped, timed out, shutting down).

    Transient: the caller may retry the same call later; a write retried with the
    same ``batch_id`` is never stored twice.
    """


class TickStoreNotStartedError(TickStoreError, RuntimeError):
    """A store was used before ``start()`` or after ``close()``."""

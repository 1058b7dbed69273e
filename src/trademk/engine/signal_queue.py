"""Signals in flight between the API (or strategies) and the execution side.

In one process the queue is an asyncio queue. With ``REDIS_URL`` it is a Redis
Stream with a consumer group (messaging/redis_signals.py): several execution
workers share it, each signal is acknowledged only after its order is durable,
and a signal taken by a worker that died is claimed by another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from trademk.domain.signals import OrderRequest

log = structlog.get_logger(__name__)

SignalHandler = Callable[[OrderRequest], Awaitable[None]]


class SignalQueue(Protocol):
    async def put(self, request: OrderRequest) -> None: ...

    async def consume(self, handler: SignalHandler) -> None:
        """Run forever: hand each signal to ``handler``; it is done when handler returns."""
        ...

    async def stop(self) -> None:
        """Let ``consume`` finish the signal in hand and return."""
        ...

    def status(self) -> dict[str, Any]: ...


class InProcessSignalQueue:
    """A bounded asyncio queue: ``put`` waits when the execution side falls behind."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._queue: asyncio.Queue[OrderRequest] = asyncio.Queue(maxsize=capacity)
        self.received = 0
        self.executed = 0
        self.failed = 0

    async def put(self, request: OrderRequest) -> None:
        self.received += 1
        await self._queue.put(request)

    async def consume(self, handler: SignalHandler) -> None:
        while True:
            request = await self._queue.get()
            try:
                await handler(request)
                self.executed += 1
            except Exception:
                self.failed += 1
                log.exception("signal failed", client_order_id=request.client_order_id)
            finally:
                self._queue.task_done()

    async def stop(self) -> None:
        """Nothing to release: cancelling ``consume`` while it waits is safe here."""

    async def drain(self) -> None:
        """Wait until every signal put so far has been handled."""
        await self._queue.join()

    def status(self) -> dict[str, Any]:
        return {
            "backend": "in-process",
            "pending": self._queue.qsize(),
            "received": self.received,
            "executed": self.executed,
            "failed": self.failed,
        }

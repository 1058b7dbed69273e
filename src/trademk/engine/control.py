"""Commands between processes: the API asks workers to act, workers answer and report in.

In a split deployment the API holds no trading core and no strategy runner;
it asks the processes that do. Three bus topics carry this (the Redis bus
relays them between processes; in one process the in-process bus does):

- ``control``: commands ``{"type": "command", "id", "role", "command", "args",
  "origin"}``. Every process of ``role`` receives every command.
- ``control.replies``: answers ``{"id", "instance", "role", "handled", "ok",
  "result", "error", "kind", "status"}`` (``status`` as in a heartbeat, taken
  right after the command, so the asker's view is current at once). A worker
  that has nothing to do with a command (a cancel for an order it does not
  hold) answers ``handled: false``, so the asker stops waiting once every live
  worker has answered.
- ``workers``: heartbeats ``{"instance", "role", "status"}`` every
  ``heartbeat_interval`` seconds; the API's view of which workers are alive and
  what they report (trading state, open orders, running strategies).

Liveness is measured on the event loop's monotonic clock: it says whether a
process spoke recently, it is never a timestamp of the domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from trademk.engine.bus import MessageBus, Subscription, watch_topics

log = structlog.get_logger(__name__)

CONTROL_TOPIC: Final = "control"
REPLIES_TOPIC: Final = "control.replies"
WORKERS_TOPIC: Final = "workers"


def instance_name(role: str) -> str:
    """A name for this process that is unique across the deployment."""
    return f"{role}@{socket.gethostname()}:{secrets.token_hex(3)}"


class CommandRefused(Exception):
    """A worker refuses a command; ``kind`` says why (``conflict``, ``invalid``, ``not_found``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class NotMine(Exception):
    """The command concerns something this worker does not hold (it answers ``handled: false``)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One worker's answer to a command."""

    instance: str
    role: str
    handled: bool
    ok: bool
    result: Mapping[str, Any]
    error: str | None = None
    kind: str | None = None

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Reply:
        return cls(
            instance=str(payload.get("instance", "")),
            role=str(payload.get("role", "")),
            handled=bool(payload.get("handled", True)),
            ok=bool(payload.get("ok", False)),
            result=payload.get("result") or {},
            error=payload.get("error"),
            kind=payload.get("kind"),
        )


@dataclass(slots=True)
class WorkerSeen:
    """The last heartbeat of one worker."""

    instance: str
    role: str
    status: Mapping[str, Any]
    seen_at: float


CommandHandler = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
"""Runs one command with its ``args``; returns the result, raises ``CommandRefused``
(handled, not ok) or ``NotMine`` (not handled)."""


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class ControlServer:
    """A worker's side: runs the commands for its role, answers, and sends heartbeats."""

    def __init__(
        self,
        bus: MessageBus,
        role: str,
        handlers: Mapping[str, CommandHandler],
        status: Callable[[], Mapping[str, Any]],
        *,
        instance: str | None = None,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self.bus = bus
        self.role = role
        self.handlers = dict(handlers)
        self.status = status
        self.instance = instance or instance_name(role)
        self.heartbeat_interval = heartbeat_interval
        self.counters = {"commands": 0, "refused": 0, "failed": 0}
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._tasks:
            return
        self._subscription = self.bus.subscribe(CONTROL_TOPIC, capacity=10_000)
        await watch_topics(self.bus, CONTROL_TOPIC)
        self._tasks = [
            asyncio.create_task(self._serve(self._subscription), name=f"control-{self.role}"),
            asyncio.create_task(self._heartbeat(), name=f"heartbeat-{self.role}"),
        ]
        self.beat()
        log.info("control channel open", role=self.role, instance=self.instance)

    async def stop(self) -> None:
        for task in self._tasks:
            await _cancel(task)
        self._tasks = []
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def _status(self) -> dict[str, Any]:
        try:
            return dict(self.status())
        except Exception as err:  # a heartbeat must go out even if a status source fails
            return {"error": f"{type(err).__name__}: {err}"}

    def beat(self) -> None:
        """Publish a heartbeat now (also done every ``heartbeat_interval`` seconds)."""
        self.bus.publish(
            WORKERS_TOPIC, {"instance": self.instance, "role": self.role, "status": self._status()}
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self.beat()

    async def _serve(self, subscription: Subscription) -> None:
        async for _topic, command in subscription:
            if command.get("role") != self.role or command.get("type") != "command":
                continue
            self.counters["commands"] += 1
            reply = await self._run(command)
            reply["status"] = self._status()
            self.bus.publish(REPLIES_TOPIC, reply)

    async def _run(self, command: Mapping[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "id": command.get("id"),
            "instance": self.instance,
            "role": self.role,
            "handled": True,
            "ok": False,
            "result": {},
            "error": None,
            "kind": None,
        }
        name = str(command.get("command"))
        handler = self.handlers.get(name)
        if handler is None:
            reply.update(error=f"{self.role} workers know no command {name!r}", kind="invalid")
            return reply
        try:
            result = await handler(command.get("args") or {})
        except NotMine:
            reply["handled"] = False
        except CommandRefused as err:
            self.counters["refused"] += 1
            reply.update(error=str(err), kind=err.kind)
        except Exception as err:
            self.counters["failed"] += 1
            log.exception("command failed", command=name)
            reply.update(error=f"{type(err).__name__}: {err}", kind="failed")
        else:
            reply.update(ok=True, result=dict(result))
        return reply


class NoWorkerAnswered(Exception):
    """No worker of the role answered in time (none running, or all busy)."""


@dataclass(slots=True)
class _Pending:
    role: str
    expected: set[str]
    want_all: bool
    replies: list[Reply] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, reply: Reply) -> None:
        self.replies.append(reply)
        answered = {r.instance for r in self.replies}
        if (not self.want_all and reply.handled) or (self.expected and self.expected <= answered):
            self.done.set()


class ControlClient:
    """The API's side: sends commands, gathers answers, and tracks live workers."""

    def __init__(
        self,
        bus: MessageBus,
        *,
        instance: str | None = None,
        timeout: float = 5.0,
        alive_for: float = 5.0,
    ) -> None:
        self.bus = bus
        self.instance = instance or instance_name("api")
        self.timeout = timeout
        self.alive_for = alive_for
        self._workers: dict[str, WorkerSeen] = {}
        self._pending: dict[str, _Pending] = {}
        self._heard = asyncio.Event()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        self._subscription = self.bus.subscribe(REPLIES_TOPIC, WORKERS_TOPIC, capacity=10_000)
        await watch_topics(self.bus, REPLIES_TOPIC, WORKERS_TOPIC)
        self._task = asyncio.create_task(self._listen(self._subscription), name="control-client")

    async def stop(self) -> None:
        await _cancel(self._task)
        self._task = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def workers(self, role: str) -> list[WorkerSeen]:
        """Workers of ``role`` heard from within ``alive_for`` seconds, by name."""
        now = asyncio.get_running_loop().time()
        return sorted(
            (
                w
                for w in self._workers.values()
                if w.role == role and now - w.seen_at <= self.alive_for
            ),
            key=lambda w: w.instance,
        )

    async def wait_for_workers(self, role: str, within: float) -> list[WorkerSeen]:
        """The live workers of ``role``, waiting up to ``within`` s for a first heartbeat."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while not self.workers(role):
                    self._heard.clear()
                    await self._heard.wait()
        return self.workers(role)

    async def ask(
        self,
        role: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        want_all: bool = False,
        within: float | None = None,
    ) -> list[Reply]:
        """Send ``command`` to the workers of ``role`` and gather their replies.

        Returns at the first reply that handled the command (``want_all``
        False), once every live worker answered, or at the timeout, whichever
        comes first. ``NoWorkerAnswered`` if nobody answered at all.
        """
        limit = self.timeout if within is None else within
        expected = {w.instance for w in await self.wait_for_workers(role, min(limit, 2.0))}
        command_id = secrets.token_hex(12)
        pending = _Pending(role, expected, want_all)
        self._pending[command_id] = pending
        try:
            self.bus.publish(
                CONTROL_TOPIC,
                {
                    "type": "command",
                    "id": command_id,
                    "role": role,
                    "command": command,
                    "args": dict(args or {}),
                    "origin": self.instance,
                },
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.done.wait(), limit)
        finally:
            self._pending.pop(command_id, None)
        if not pending.replies:
            raise NoWorkerAnswered(
                f"no {role} worker answered within {limit:g} s "
                f"({len(expected)} seen alive): is `trademk worker --role {role}` running?"
            )
        return pending.replies

    async def _listen(self, subscription: Subscription) -> None:
        loop = asyncio.get_running_loop()
        async for topic, payload in subscription:
            status = payload.get("status")
            if isinstance(status, Mapping):
                # Heartbeats, and replies (which carry the status right after the command).
                instance = str(payload.get("instance", ""))
                self._workers[instance] = WorkerSeen(
                    instance, str(payload.get("role", "")), status, loop.time()
                )
                self._heard.set()
            if topic == WORKERS_TOPIC:
                continue
            pending = self._pending.get(str(payload.get("id")))
            if pending is not None:
                pending.add(Reply.of(payload))

"""Health checks that tell the truth: real round trips, each with its latency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from trademk.engine.clock import Clock, utc_now

CheckFn = Callable[[], Awaitable[dict[str, Any] | None]]
StatusFn = Callable[[], dict[str, Any]]


@dataclass
class HealthService:
    """Runs dependency checks concurrently and reports component states.

    ``checks`` are awaited with a timeout; one that raises or times out makes
    the whole report unhealthy with its reason. ``components`` return a status
    dict with a ``state``; ``degraded`` or ``stopped`` makes the report unhealthy.
    """

    clock: Clock
    service: str
    version: str
    timeout: float = 2.0
    checks: dict[str, CheckFn] = field(default_factory=dict)
    components: dict[str, StatusFn] = field(default_factory=dict)
    started_monotonic_ns: int = 0

    def __post_init__(self) -> None:
        self.started_monotonic_ns = self.clock.monotonic_ns()

    def add_check(self, name: str, check: CheckFn) -> None:
        self.checks[name] = check

    def add_component(self, name: str, status: StatusFn) -> None:
        self.components[name] = status

    @property
    def uptime_seconds(self) -> float:
        return (self.clock.monotonic_ns() - self.started_monotonic_ns) / 1e9

    async def _run_check(self, check: CheckFn) -> dict[str, Any]:
        start = self.clock.monotonic_ns()
        try:
            details = await asyncio.wait_for(check(), timeout=self.timeout)
        except TimeoutError:
            result: dict[str, Any] = {
                "status": "unhealthy",
                "error": f"no answer in {self.timeout}s",
            }
        except Exception as err:
            result = {"status": "unhealthy", "error": f"{type(err).__name__}: {err}"}
        else:
            result = {"status": "healthy", **(details or {})}
        result["latency_ms"] = round((self.clock.monotonic_ns() - start) / 1e6, 3)
        return result

    def _component(self, status: StatusFn) -> dict[str, Any]:
        try:
            data = dict(status())
        except Exception as err:
            return {"status": "unhealthy", "error": f"{type(err).__name__}: {err}"}
        state = str(data.get("state", "running"))
        data["status"] = "unhealthy" if state in ("degraded", "stopped") else "healthy"
        return data

    def basic(self) -> dict[str, Any]:
        return {
            "status": "healthy",
            "timestamp": utc_now(self.clock).isoformat(),
            "service": self.service,
            "version": self.version,
        }

    async def detailed(self) -> tuple[bool, dict[str, Any]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run_check(self.checks[n]) for n in names))
        dependencies = dict(zip(names, results, strict=True))
        components = {name: self._component(fn) for name, fn in self.components.items()}
        failed = [n for n, r in {**dependencies, **components}.items() if r["status"] != "healthy"]
        report = {
            **self.basic(),
            "status": "unhealthy" if failed else "healthy",
            "uptime_seconds": round(self.uptime_seconds, 3),
            "dependencies": dependencies,
            "components": components,
        }
        if failed:
            every = {**dependencies, **components}
            report["failed"] = failed
            report["reason"] = "; ".join(f"{n}: {_failure_reason(every[n])}" for n in failed)
        return not failed, report


def _failure_reason(result: dict[str, Any]) -> str:
    return str(result.get("error") or result.get("reason") or f"state {result.get('state')}")

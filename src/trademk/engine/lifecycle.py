"""Component lifecycle as an explicit state machine (DESIGN.md §6.2)."""

from __future__ import annotations

import enum
from typing import Final


class ComponentState(enum.StrEnum):
    READY = "ready"
    RUNNING = "running"
    DEGRADED = "degraded"
    STOPPED = "stopped"


class IllegalStateTransition(RuntimeError):
    """A component was asked to move between states the table does not allow."""


_TRANSITIONS: Final[dict[ComponentState, frozenset[ComponentState]]] = {
    ComponentState.READY: frozenset({ComponentState.RUNNING, ComponentState.STOPPED}),
    ComponentState.RUNNING: frozenset({ComponentState.DEGRADED, ComponentState.STOPPED}),
    ComponentState.DEGRADED: frozenset({ComponentState.RUNNING, ComponentState.STOPPED}),
    ComponentState.STOPPED: frozenset(),
}


class Lifecycle:
    """Holds a component's state and the reason for the last change."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = ComponentState.READY
        self.reason = ""

    def to(self, new: ComponentState, reason: str = "") -> None:
        if new == self.state:
            self.reason = reason or self.reason
            return
        if new not in _TRANSITIONS[self.state]:
            raise IllegalStateTransition(f"{self.name}: {self.state} -> {new} is not allowed")
        self.state = new
        self.reason = reason

    @property
    def healthy(self) -> bool:
        return self.state in (ComponentState.READY, ComponentState.RUNNING)

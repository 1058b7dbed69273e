"""Commands between processes over the bus: who answers, who waits, who is alive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from trademk.engine.bus import InProcessBus
from trademk.engine.control import (
    CommandRefused,
    ControlClient,
    ControlServer,
    NotMine,
    NoWorkerAnswered,
)


def _worker(bus: InProcessBus, name: str, holds: set[str], log: list[str]) -> ControlServer:
    async def cancel(args: Mapping[str, Any]) -> Mapping[str, Any]:
        cid = str(args["client_order_id"])
        if cid not in holds:
            raise NotMine(cid)
        if cid.startswith("done"):
            raise CommandRefused("conflict", f"order {cid} is filled")
        log.append(f"{name} canceled {cid}")
        return {"client_order_id": cid}

    async def halt(args: Mapping[str, Any]) -> Mapping[str, Any]:
        log.append(f"{name} halted: {args['reason']}")
        return {"canceled": len(holds)}

    return ControlServer(
        bus,
        "execution",
        {"cancel": cancel, "halt": halt},
        lambda: {"holds": sorted(holds)},
        instance=name,
        heartbeat_interval=0.05,
    )


@pytest.fixture
async def deployment() -> AsyncIterator[tuple[ControlClient, list[str]]]:
    bus = InProcessBus()
    log: list[str] = []
    workers = [
        _worker(bus, "w1", {"a1", "done1"}, log),
        _worker(bus, "w2", {"b1"}, log),
    ]
    client = ControlClient(bus, timeout=2.0, alive_for=1.0)
    await client.start()
    for worker in workers:
        await worker.start()
    try:
        yield client, log
    finally:
        for worker in workers:
            await worker.stop()
        await client.stop()


async def test_only_the_worker_holding_an_order_cancels_it(
    deployment: tuple[ControlClient, list[str]],
) -> None:
    client, log = deployment
    replies = await client.ask("execution", "cancel", {"client_order_id": "b1"})
    assert [r.instance for r in replies if r.handled and r.ok] == ["w2"]
    assert log == ["w2 canceled b1"]


async def test_an_order_nobody_holds_gets_only_not_mine_answers_from_every_worker(
    deployment: tuple[ControlClient, list[str]],
) -> None:
    client, log = deployment
    await client.wait_for_workers("execution", 1.0)
    replies = await asyncio.wait_for(
        client.ask("execution", "cancel", {"client_order_id": "zz"}), 1.5
    )
    assert sorted(r.instance for r in replies) == ["w1", "w2"]
    assert not any(r.handled for r in replies)
    assert log == []


async def test_a_refusal_carries_its_kind_and_message(
    deployment: tuple[ControlClient, list[str]],
) -> None:
    client, _ = deployment
    replies = await client.ask("execution", "cancel", {"client_order_id": "done1"})
    refused = [r for r in replies if r.handled]
    assert [(r.ok, r.kind, r.error) for r in refused] == [
        (False, "conflict", "order done1 is filled")
    ]


async def test_a_broadcast_waits_for_every_live_worker(
    deployment: tuple[ControlClient, list[str]],
) -> None:
    client, log = deployment
    replies = await client.ask("execution", "halt", {"reason": "test"}, want_all=True)
    assert sorted(r.instance for r in replies) == ["w1", "w2"]
    assert sum(int(r.result["canceled"]) for r in replies) == 3
    assert sorted(log) == ["w1 halted: test", "w2 halted: test"]


async def test_an_unknown_command_is_refused_as_invalid(
    deployment: tuple[ControlClient, list[str]],
) -> None:
    client, _ = deployment
    replies = await client.ask("execution", "explode", {})
    assert replies[0].kind == "invalid" and "explode" in (replies[0].error or "")


async def test_heartbeats_show_which_workers_are_alive_and_what_they_report(
    deployment: tuple[ControlClient, list[str]],
) -> None:
    client, _ = deployment
    alive = await client.wait_for_workers("execution", 1.0)
    await asyncio.sleep(0.15)
    alive = client.workers("execution")
    assert [(w.instance, w.status["holds"]) for w in alive] == [
        ("w1", ["a1", "done1"]),
        ("w2", ["b1"]),
    ]
    assert client.workers("strategies") == []


async def test_no_worker_of_the_role_means_no_worker_answered() -> None:
    bus = InProcessBus()
    client = ControlClient(bus, timeout=0.3)
    await client.start()
    try:
        with pytest.raises(NoWorkerAnswered, match="worker --role strategies"):
            await client.ask("strategies", "strategy.running", {"strategy_id": "x"})
    finally:
        await client.stop()


async def test_a_stopped_worker_drops_out_of_the_live_set() -> None:
    bus = InProcessBus()
    log: list[str] = []
    worker = _worker(bus, "w1", set(), log)
    client = ControlClient(bus, alive_for=0.2)
    await client.start()
    await worker.start()
    try:
        assert [w.instance for w in await client.wait_for_workers("execution", 1.0)] == ["w1"]
        await worker.stop()
        await asyncio.sleep(0.3)
        assert client.workers("execution") == []
    finally:
        await client.stop()

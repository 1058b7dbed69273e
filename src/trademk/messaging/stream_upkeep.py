"""Housekeeping of a signal stream: safe trimming, departed consumers, status figures.

Trimming never removes an entry some consumer group has not acknowledged: the
cut-off is the oldest unacknowledged id over every group on the stream (the
lowest pending id, or the entry after the last one delivered).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from trademk.messaging.codec import as_text
from trademk.messaging.streams import lowest_stream_id, next_stream_id

# Deletes a consumer only if it still holds nothing and is still idle: atomic, so a
# message delivered to it between the listing and the deletion is never dropped.
_FORGET_CONSUMER_LUA = """
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, flat in ipairs(consumers) do
  local info = {}
  for i = 1, #flat, 2 do info[flat[i]] = flat[i + 1] end
  if info['name'] == ARGV[2] then
    if tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[3]) then
      return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    end
    return -1
  end
end
return -1
"""

TRIM_SCAN_LIMIT = 10_000


def is_missing_group(err: ResponseError) -> bool:
    """The stream or its consumer group does not exist (deleted, or Redis restarted empty)."""
    message = str(err)
    return any(mark in message for mark in ("NOGROUP", "no such key", "no longer exists"))


async def oldest_unacknowledged_id(redis: aioredis.Redis, stream: str) -> str | None:
    """Every entry below this id is acknowledged by every group; None without groups."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError as err:
        if is_missing_group(err):
            return None
        raise
    if not groups:
        return None
    candidates: list[str] = []
    for group in groups:
        if int(group["pending"]) > 0:
            summary = await redis.xpending(stream, group["name"])
            if summary["min"] is not None:
                candidates.append(as_text(summary["min"]))
                continue
        candidates.append(next_stream_id(group["last-delivered-id"]))
    return lowest_stream_id(candidates)


async def trim_acknowledged(
    redis: aioredis.Redis, stream: str, maxlen: int, scan_limit: int = TRIM_SCAN_LIMIT
) -> int:
    """Trim the oldest entries beyond ``maxlen``, stopping at the first unacknowledged one.

    At most ``scan_limit`` entries go per call; a backlog is trimmed over several calls.
    Returns how many entries were removed.
    """
    excess = await redis.xlen(stream) - maxlen
    if excess <= 0:
        return 0
    cutoff = await oldest_unacknowledged_id(redis, stream)
    if cutoff is None:
        return 0
    drop = min(excess, scan_limit)
    head = await redis.xrange(stream, "-", "+", count=drop + 1)
    if not head or len(head) <= drop:
        return 0
    first_kept = lowest_stream_id([as_text(head[drop][0]), cutoff])
    return int(await redis.xtrim(stream, minid=first_kept, approximate=False))


async def forget_departed_consumers(
    redis: aioredis.Redis, stream: str, group: str, keep: str, idle_ms: int
) -> int:
    """Delete consumers that hold no message and were idle ``idle_ms``; returns how many."""
    try:
        consumers = await redis.xinfo_consumers(stream, group)
    except ResponseError as err:
        if is_missing_group(err):
            return 0
        raise
    forget = redis.register_script(_FORGET_CONSUMER_LUA)
    forgotten = 0
    for consumer in consumers:
        name = as_text(consumer["name"])
        if name == keep or int(consumer["pending"]) or int(consumer["idle"]) < idle_ms:
            continue
        if int(await forget(keys=[stream], args=[group, name, idle_ms])) >= 0:
            forgotten += 1
    return forgotten


async def group_snapshot(
    redis: aioredis.Redis, stream: str, group: str, dead_letter_stream: str
) -> dict[str, Any]:
    """Stream length, unacknowledged and undelivered counts, consumers, dead letters.

    ``pending`` is what is not acknowledged yet: delivered-but-unacked plus
    undelivered (``undelivered`` is None when Redis cannot tell the group's lag).
    """
    length = int(await redis.xlen(stream))
    snapshot: dict[str, Any] = {
        "stream_length": length,
        "unacked": 0,
        "undelivered": length,
        "consumers": 0,
        "dead_letter_length": int(await redis.xlen(dead_letter_stream)),
    }
    if await redis.exists(stream):
        for info in await redis.xinfo_groups(stream):
            if as_text(info["name"]) != group:
                continue
            lag = info.get("lag")
            snapshot["unacked"] = int(info["pending"])
            snapshot["undelivered"] = None if lag is None else int(lag)
            snapshot["consumers"] = int(info["consumers"])
    snapshot["pending"] = snapshot["unacked"] + (snapshot["undelivered"] or 0)
    return snapshot

"""Waiting for a Redis that stopped answering, and going on the moment it answers again.

A caller whose Redis command failed (A's outbox, B's read loop) waits here before its next attempt instead of
sleeping a fixed time. While it waits, one PING is kept in flight through the caller's own client (bounded by
the client's timeouts and retries, sent again as soon as it fails). A hung Redis (a stopped process, a stalled
host) keeps that PING, like every command sent to it, and answers it the moment it runs again: the caller
goes on within milliseconds of that, where a fixed sleep cost up to its whole length (B slept 1 s, the outbox
up to 2 s, after each failure; measured in `bench/README.md`, "A Redis that hangs"). A Redis that refuses
connections (restarting) is asked at most once every `PING_EVERY_S`: a refused connection costs the server
nothing, and a PING sent no more often than that never amounts to a busy loop.

The next attempt is paced too: it goes no sooner than a floor after the failure, the floor doubling with each
failure in a row from `FLOOR_MIN_S` up to the caller's cap, so a Redis that answers PING but refuses the
caller's command (out of memory, a read-only replica) is never asked in a loop. A hung Redis's failure took
the client's whole timeout, by which time the first floor has long passed: it costs nothing there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from hedge_strategy.task_end import retrieve_outcome

PING_EVERY_S = 0.25  # the most often a Redis that fails at once (refused connections) is asked
FLOOR_MIN_S = 0.05  # the least time between a failed attempt and the next


class UntilAnswering:
    """One caller's waits while Redis fails: `await wait(stop)` after each failed attempt, `answered()`
    after each attempt that went through (the floor starts again from `FLOOR_MIN_S`)."""

    def __init__(self, redis: aioredis.Redis, floor_cap_s: float,
                 clock: Callable[[], float] | None = None) -> None:
        self.redis = redis
        self.floor_cap_s = floor_cap_s
        self.clock = clock  # the loop's clock unless given (tests)
        self.failures = 0  # attempts failed in a row
        self.pings = 0  # PINGs sent (tests count them)

    def answered(self) -> None:
        self.failures = 0

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """After a failed attempt: True once Redis has answered a PING and the floor has passed since the
        failure; False as soon as `stop` is set (a PING in flight is left to end by its timeouts)."""
        self.failures += 1
        now = self.clock or asyncio.get_running_loop().time
        ready_at = now() + min(FLOOR_MIN_S * 2 ** (self.failures - 1), self.floor_cap_s)
        while True:
            asked = now()
            if await self._ping(stop):
                break
            if stop is not None and stop.is_set():
                return False
            # A PING that failed at once is sent again only after PING_EVERY_S; one that waited out the
            # client's timeouts goes again at once (the Redis that hangs answers the new one when it runs).
            if not await _sleep(max(PING_EVERY_S - (now() - asked), 0.0), stop):
                return False
        return await _sleep(max(ready_at - now(), 0.0), stop)

    async def _ping(self, stop: asyncio.Event | None) -> bool:
        self.pings += 1
        ping: asyncio.Future[Any] = asyncio.ensure_future(self.redis.ping())
        ping.add_done_callback(retrieve_outcome)  # one left behind at a stop is never unread
        waits: set[asyncio.Future[Any]] = {ping}
        stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if stopped is not None:
            waits.add(stopped)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:  # stopping, or this wait cancelled: a PING still out is cancelled too (and
                waiting.cancel()  # bounded by the client's timeouts should the cancel be lost in redis-py)
        if not ping.done() or ping.cancelled():
            return False
        error = ping.exception()
        return error is None or isinstance(error, ResponseError)  # an error reply is an answer too


async def _sleep(seconds: float, stop: asyncio.Event | None) -> bool:
    """Wait `seconds`; False when `stop` is set first (or already)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return True
    if stop.is_set():
        return False
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return True
    return False

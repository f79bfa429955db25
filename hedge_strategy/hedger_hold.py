"""B's side of the hold (`Bus.hold_hedger`): before each read B passes this gate; while B is held it waits.

`hedgectl clear` holds B so that nothing B reads can reopen a position clear is closing: B finishes the hedge
in hand, then reads nothing new (the requests stay in the stream) until the hold is released. The wait is
woken by the hold channel, with a bounded re-check should a notification be lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loguru import logger

from hedge_strategy.bus import Bus, PauseState
from hedge_strategy.observe import EventKind, RoleEvents

RECHECK_S = 1.0  # a lost "released" message costs at most this; a stop is noticed as fast


class HoldGate:
    """`await gate.pass_when_released(stop)` before each read; `held` says whether B is waiting."""

    def __init__(self, bus: Bus, events: RoleEvents) -> None:
        self.bus = bus
        self.events = events
        self.hold: PauseState | None = None  # the hold B is honouring now, for the heartbeat
        self.known = False  # Redis answered a read of the hold once: `held` says what it holds, not a guess
        self.on_release: list[Callable[[], None]] = []  # called when a hold B honoured is lifted

    @property
    def held(self) -> bool:
        return self.hold is not None

    def heartbeat_info(self) -> dict[str, object]:
        return {"held": self.held, "hold_since_ms": self.hold.since_ms if self.hold else None}

    async def pass_when_released(self, stop: asyncio.Event) -> None:
        """Return at once when B is not held; otherwise wait until released or `stop` is set.

        Raises RedisError like any bus call (the caller retries); the hold is then kept, so the log line
        saying B is held is not repeated.
        """
        hold = await self.bus.hedger_hold()
        if hold is None:
            self._released()
            return
        self._held(hold)
        pubsub = self.bus.redis.pubsub()
        try:
            await pubsub.subscribe(self.bus.keys.channel_hold_changed)
            while not stop.is_set():
                hold = await self.bus.hedger_hold()  # read after subscribing: a release is never missed
                if hold is None:
                    self._released()
                    return
                self._held(hold)
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=RECHECK_S)
        finally:
            await pubsub.aclose()

    def _held(self, hold: PauseState) -> None:
        self.known = True
        if self.hold is None:
            logger.warning("B held by {}: {}; no hedges until released", hold.by, hold.reason)
            self.events.emit(EventKind.HELD, by=hold.by, reason=hold.reason)
        self.hold = hold

    def _released(self) -> None:
        self.known = True
        if self.hold is None:
            return
        logger.info("B released (hold by {} lifted); reading hedge requests again", self.hold.by)
        self.events.emit(EventKind.RELEASED, by=self.hold.by)
        self.hold = None
        for released in self.on_release:
            released()


"""The pair's two stop flags, mixed into `Bus`: A's pause and B's hold.

The pause (`P:pause`) stops A placing orders; the hold (`P:hold_b`) stops B reading new hedge requests (it
finishes the hedge in hand first). Both are `PauseState` values without TTL, so they survive restarts, and
each change is announced on its channel (`P:pause_changed`, `P:hold_b_changed`) so a waiting process wakes
at once. An unreadable value counts as set: when in doubt, do not trade.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from loguru import logger

from hedge_strategy.bus.messages import BusMessageError, PauseState, now_ms

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from hedge_strategy.bus.client import BusKeys

PAUSED, RESUMED = "paused", "resumed"
HELD, RELEASED = "held", "released"
HELD_CHECK_S = 0.2  # how often `wait_hedger_held` reads B's heartbeat


class PauseFlags:
    """Pause (A) and hold (B) of one pair; `Bus` provides `redis`, `keys` and `pair`."""

    redis: aioredis.Redis
    keys: BusKeys
    pair: str

    async def heartbeat(self, role: str) -> dict[str, Any] | None: ...  # `Bus.heartbeat`

    # ----- A's pause ----------------------------------------------------------------------------------------

    async def set_pause(self, reason: str, by: str) -> PauseState:
        """Pause the pair (replacing any earlier reason) until `clear_pause`; survives restarts."""
        return await self._set_flag(self.keys.pause, self.keys.channel_pause_changed, PAUSED, reason, by)

    async def clear_pause(self) -> PauseState | None:
        """Resume; returns the pause that was cleared, or None if the pair was not paused."""
        return await self._clear_flag(self.keys.pause, self.keys.channel_pause_changed, RESUMED)

    async def get_pause(self) -> PauseState | None:
        """The current pause, or None when trading is allowed (an unreadable value counts as paused)."""
        return await self._get_flag(self.keys.pause)

    async def put_pause(self, state: PauseState) -> PauseState:
        """Set the pause to `state` as it is (its reason, who and since when): A asserting a pause it kept in
        its journal, after Redis lost it or could not take it."""
        return await self._put_flag(self.keys.pause, self.keys.channel_pause_changed, PAUSED, state)

    # ----- B's hold -----------------------------------------------------------------------------------------

    async def hold_hedger(self, reason: str, by: str) -> PauseState:
        """Hold B (replacing any earlier hold) until `release_hedger`: B finishes the hedge in hand, then
        reads no new request; the requests stay in the stream."""
        return await self._set_flag(self.keys.hold_b, self.keys.channel_hold_changed, HELD, reason, by)

    async def release_hedger(self) -> PauseState | None:
        """Let B read again; returns the hold that was lifted, or None if B was not held."""
        return await self._clear_flag(self.keys.hold_b, self.keys.channel_hold_changed, RELEASED)

    async def hedger_hold(self) -> PauseState | None:
        """The current hold of B, or None (an unreadable value counts as held)."""
        return await self._get_flag(self.keys.hold_b)

    async def wait_hedger_held(self, hold: PauseState, timeout_s: float) -> tuple[str, bool]:
        """Wait (bounded) until B's heartbeat says it honours `hold` and is not busy, or B is not running.

        Returns what was seen and whether B is settled (held and idle, or absent): only then may the requests
        it read and did not answer be answered by someone else, since it is not hedging them.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            beat = await self.heartbeat("b")
            if beat is None:
                return "not running (no heartbeat)", True
            honours = bool(beat.get("held")) and beat.get("hold_since_ms") == hold.since_ms
            if honours and not beat.get("busy"):
                return "held and idle (reads nothing new until released)", True
            if loop.time() >= deadline:
                doing = "busy" if beat.get("busy") else "not yet held"
                return f"still {doing} after {timeout_s:g} s", False
            # B publishes no "held" event: its heartbeat is polled, bounded by `timeout_s`.
            await asyncio.sleep(HELD_CHECK_S)

    # ----- internals ----------------------------------------------------------------------------------------

    async def _set_flag(self, key: str, channel: str, word: str, reason: str, by: str) -> PauseState:
        return await self._put_flag(key, channel, word, PauseState(reason=reason, by=by, since_ms=now_ms()))

    async def _put_flag(self, key: str, channel: str, word: str, state: PauseState) -> PauseState:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, state.to_json())
            pipe.publish(channel, word)
            await pipe.execute()
        return state

    async def _clear_flag(self, key: str, channel: str, word: str) -> PauseState | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.getdel(key)
            pipe.publish(channel, word)
            raw, _ = await pipe.execute()
        return None if raw is None else self._parse_flag(raw, key)

    async def _get_flag(self, key: str) -> PauseState | None:
        raw = await self.redis.get(key)
        return None if raw is None else self._parse_flag(raw, key)

    def _parse_flag(self, raw: Any, key: str) -> PauseState:
        try:
            return PauseState.from_json(raw)
        except BusMessageError as exc:
            name = "pause" if key == self.keys.pause else "hold"
            logger.error("bus {}: {} value is unreadable ({}); treating it as set ({})", self.pair, name, exc,
                         key)
            return PauseState(reason=f"unreadable value in {key}", by="bus", since_ms=0)

"""Listening for B's outcomes: a confirmed pub/sub subscription, and A's event-driven wait for its requests.

Both are used through `Bus` (`bus.subscribe_outcomes()`, `bus.outcome_waiter(ids)`, `bus.wait_outcomes(...)`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from hedge_strategy.bus.messages import HedgeOutcome, decode_text

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

    from hedge_strategy.bus.client import Bus

SUBSCRIBE_TIMEOUT_S = 5.0

# on_progress(elapsed_s, missing_request_ids): a function or a coroutine function.
ProgressCallback = Callable[[float, list[str]], Awaitable[None] | None]


class OutcomeSubscription:
    """Outcomes published on the pair's `account_b_filled` / `account_b_hedge_failed` channels, as they come.

    `async with bus.subscribe_outcomes() as outcomes:` subscribes and returns once the server confirmed, so
    anything published after that point is received; `async for outcome in outcomes` then yields them
    (malformed messages are logged and skipped). Iterating without `async with` subscribes on the first
    `__anext__`; call `aclose()` then. Outcomes published while nobody listens are only in the store.
    """

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._pubsub: PubSub | None = None

    async def open(self) -> None:
        """Subscribe and wait for the server's confirmations (idempotent)."""
        if self._pubsub is not None:
            return
        keys = self._bus.keys
        channels = {keys.channel_b_filled, keys.channel_b_hedge_failed}
        pubsub = self._bus.redis.pubsub()
        self._pubsub = pubsub
        await pubsub.subscribe(*channels)
        # Until the server confirms, a message published meanwhile may not reach us: reading the store only
        # after the confirmation is what makes "check the store, then listen" miss nothing.
        confirmed: set[str] = set()
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            while confirmed != channels:
                message = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_S)
                if message is not None and decode_text(message.get("type")) == "subscribe":
                    confirmed.add(decode_text(message.get("channel")))

    async def aclose(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            await pubsub.aclose()

    async def __aenter__(self) -> OutcomeSubscription:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> OutcomeSubscription:
        return self

    async def __anext__(self) -> HedgeOutcome:
        while True:
            _, outcome = await self.receive(timeout_s=None)
            if outcome is not None:
                return outcome

    async def receive(self, timeout_s: float | None) -> tuple[bool, HedgeOutcome | None]:
        """Wait up to `timeout_s` (None: forever) for the next message: returns (woken, outcome or None).

        `woken` is True for any message, including a malformed one (outcome None, logged) and the confirmation
        of a resubscription after redis-py reconnected: either way, the caller should re-read the store.
        """
        await self.open()
        assert self._pubsub is not None
        message = await self._pubsub.get_message(timeout=timeout_s)
        if message is None:
            return False, None
        if decode_text(message.get("type")) != "message":
            return True, None
        return True, self._bus.parse_outcome(message.get("data"), "outcome message")


class OutcomeWaiter:
    """A's wait for the outcomes of its requests: `async with bus.outcome_waiter(ids) as w: await w.wait(t)`.

    Entering subscribes (confirmed) and then reads the stored outcomes, so nothing published before or after
    is missed; `wait` then sleeps on the subscription and wakes on each message.
    """

    def __init__(self, bus: Bus, request_ids: Iterable[str]) -> None:
        self._bus = bus
        self._subscription = OutcomeSubscription(bus)
        self.wanted = list(dict.fromkeys(request_ids))
        self.found: dict[str, HedgeOutcome] = {}

    @property
    def missing(self) -> list[str]:
        return [r for r in self.wanted if r not in self.found]

    async def __aenter__(self) -> OutcomeWaiter:
        if self.wanted:
            await self._subscription.open()
            await self._read_store()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._subscription.aclose()

    async def wait(
        self,
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 10.0,
        *,
        clock: Callable[[], float] | None = None,
    ) -> dict[str, HedgeOutcome]:
        """Until every request has an outcome or `timeout_s` passed; returns the outcomes by request id.

        Every `progress_interval_s` it re-reads the store (a safety net, should a message be lost) and calls
        `on_progress(elapsed_s, missing_ids)` when given and something is still missing. Time is read from
        `clock` (seconds; the loop's clock unless given).
        """
        clock = clock or asyncio.get_running_loop().time
        started = clock()
        deadline = started + timeout_s
        next_check = started + progress_interval_s
        while self.missing:
            now = clock()
            if now >= deadline:
                break
            if now >= next_check:
                next_check += progress_interval_s
                await self._read_store()
                if on_progress is not None and self.missing:
                    result = on_progress(now - started, self.missing)
                    if inspect.isawaitable(result):
                        await result
                continue
            woken, outcome = await self._subscription.receive(timeout_s=min(deadline, next_check) - now)
            if outcome is not None:
                self._take(outcome)
            if woken and self.missing:
                await self._read_store()
        return dict(self.found)

    def _take(self, outcome: HedgeOutcome) -> None:
        for request_id in outcome.request_ids:
            if request_id in self.wanted:
                self.found[request_id] = outcome

    async def _read_store(self) -> None:
        missing = self.missing
        if missing:
            self.found.update(await self._bus.get_outcomes(missing))

"""Client-side rate limiting, so the bot stays under Lighter's per-tier limits instead of hitting 429s.

Lighter counts requests over a rolling minute: standard accounts 60 unweighted requests, premium accounts
24,000 weight (sendTx/nextNonce 6, apikeys 150, accountInactiveOrders 100, trades 600, most others 300).
A token bucket of capacity C refilling at r per second lets through at most C + 60 r in any 60 s window, so
C + 60 r is set to the limit: bursts of C are allowed, and the rolling window can never be exceeded.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

STANDARD_PER_MINUTE = 60
PREMIUM_WEIGHT_PER_MINUTE = 24_000
BURST_FRACTION = 1 / 6  # share of the per-minute budget that may go out at once

PREMIUM_WEIGHTS: dict[str, int] = {
    "sendTx": 6,
    "sendTxBatch": 6,
    "nextNonce": 6,
    "accountInactiveOrders": 100,
    "apikeys": 150,
    "trades": 600,
    "recentTrades": 600,
}
PREMIUM_DEFAULT_WEIGHT = 300


class TokenBucket:
    def __init__(
        self, capacity: float, refill_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("token bucket capacity and refill rate must be positive")
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill_per_s)
        self._stamp = now

    def try_take(self, amount: float) -> float:
        """Take `amount` tokens now and return 0, or take nothing and return the seconds until they exist."""
        if amount > self.capacity:
            raise ValueError(f"request of {amount} tokens exceeds the bucket capacity {self.capacity}")
        self._refill()
        if self._tokens >= amount:
            self._tokens -= amount
            return 0.0
        return (amount - self._tokens) / self.refill_per_s

    async def take(self, amount: float) -> float:
        """Wait until `amount` tokens are available and take them; returns the seconds waited.

        The lock makes waiters first-come first-served, so a heavy request is not starved by light ones.
        """
        waited = 0.0
        async with self._lock:
            while (delay := self.try_take(amount)) > 0:
                await asyncio.sleep(delay)
                waited += delay
        return waited

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens


class RequestThrottle:
    """One per account: turns endpoint names into weights for the account's tier."""

    def __init__(self, tier: str, clock: Callable[[], float] = time.monotonic) -> None:
        if tier not in ("standard", "premium"):
            raise ValueError(f"unknown account tier {tier!r} (standard | premium)")
        self.tier = tier
        budget = STANDARD_PER_MINUTE if tier == "standard" else PREMIUM_WEIGHT_PER_MINUTE
        capacity = budget * BURST_FRACTION
        self.bucket = TokenBucket(capacity, (budget - capacity) / 60.0, clock)

    def weight(self, endpoint: str) -> int:
        if self.tier == "standard":
            return 1
        return PREMIUM_WEIGHTS.get(endpoint, PREMIUM_DEFAULT_WEIGHT)

    async def acquire(self, endpoint: str) -> float:
        return await self.bucket.take(self.weight(endpoint))


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [base, min(cap, base * 2^attempt)]."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt)))
    return (rng or random).uniform(base_s, max(base_s, ceiling))

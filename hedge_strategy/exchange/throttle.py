"""Client-side rate limiting, so the bot stays under Lighter's per-tier limits instead of hitting 429s.

Lighter counts requests over a rolling minute: standard accounts 60 unweighted requests, premium accounts
24,000 weight (sendTx/nextNonce 6, apikeys 150, accountInactiveOrders 100, trades 600, most others 300).
A token bucket of capacity C refilling at r per second lets through at most C + 60 r in any 60 s window, so
C + 60 r is set to the limit: bursts of C are allowed, and the rolling window can never be exceeded.

Where the tokens come from is a `RateBudget`: by default this process's own `TokenBucket`. Limits apply per IP
and per L1 address, and two sub-accounts of one L1 address may share them (lighter-venue.md, from the venue's
documentation; not verified from captured traffic), so A and B can be given one budget kept in Redis instead
(`exchange.shared_budget`; the implementation is `hedge_strategy.bus.budget.SharedBudget`, since Redis lives
in `bus/`): the throttle only calls `take`.

The periodic REST cross-checks (reconciliation, which also checks the account's streamed position; the
exposure watchdog's read of B, which also checks the position B published; A's look at its resting
order while its stream is silent) take their default pace from the same budget (`reconcile_interval_s`,
`exposure_check_interval_s`, `resting_check_interval_s`), so a Standard account's 60 requests a minute
are not spent on them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Protocol

from hedge_strategy.exchange.movement import maker_speed_bump_ms

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
        self._stamp = clock()  # its clock at the last refill: every token was given at such a reading
        self._started = self._stamp
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

    async def take(self, amount: float, may_use_reserve: bool = False) -> float:
        """Wait until `amount` tokens are available and take them; returns the seconds waited.

        A process's own bucket keeps no reserve (`may_use_reserve` is for the shared budget). The lock makes
        waiters first-come first-served, so a heavy request is not starved by light ones.
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

    def most_given(self) -> float:
        """The most tokens it can have given so far: its capacity plus its refill over its own clock, from its
        creation to its last refill. What it gave is at most this (tests check a budget against it)."""
        return self.capacity + (self._stamp - self._started) * self.refill_per_s


class RateBudget(Protocol):
    """Where a throttle takes its tokens: `TokenBucket` (this process alone) or a budget shared with the
    other account of the pair (`hedge_strategy.bus.budget.SharedBudget`)."""

    async def take(self, amount: float, may_use_reserve: bool = False) -> float:
        """Wait until `amount` may go out and take it; returns the seconds waited. `may_use_reserve`: the
        request may take the budget's last tokens, which the others leave (B's hedges on a shared budget)."""
        ...


TX_ENDPOINTS = frozenset({"sendTx", "sendTxBatch"})


def budget_per_minute(tier: str) -> int:
    """The venue's per-minute budget of `tier`: requests (standard) or weight (premium)."""
    if tier not in ("standard", "premium"):
        raise ValueError(f"unknown account tier {tier!r} (standard | premium)")
    return STANDARD_PER_MINUTE if tier == "standard" else PREMIUM_WEIGHT_PER_MINUTE


def bucket_shape(tier: str, share: float = 1.0) -> tuple[float, float]:
    """(capacity, refill per second) of a bucket holding `share` of `tier`'s budget: capacity + 60 x refill
    is the share of the per-minute budget, so no rolling minute can see more."""
    budget = budget_per_minute(tier) * share
    capacity = budget * BURST_FRACTION
    return capacity, (budget - capacity) / 60.0


def local_bucket(tier: str, share: float = 1.0, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
    """This process's own bucket for `share` of `tier`'s budget."""
    capacity, refill_per_s = bucket_shape(tier, share)
    return TokenBucket(capacity, refill_per_s, clock)


class RequestThrottle:
    """One per account: turns endpoint names into weights for the account's tier and takes them from its
    budget (its own token bucket unless `budget` is given). `reserved_endpoints` may take the budget's
    reserve (B's transactions: its hedges)."""

    def __init__(self, tier: str, clock: Callable[[], float] = time.monotonic,
                 budget: RateBudget | None = None, reserved_endpoints: frozenset[str] = frozenset()) -> None:
        self.per_minute = budget_per_minute(tier)  # refuses an unknown tier
        self.tier = tier
        self.budget: RateBudget = budget if budget is not None else local_bucket(tier, clock=clock)
        self.reserved_endpoints = reserved_endpoints

    def weight(self, endpoint: str) -> int:
        if self.tier == "standard":
            return 1
        return PREMIUM_WEIGHTS.get(endpoint, PREMIUM_DEFAULT_WEIGHT)

    async def acquire(self, endpoint: str) -> float:
        if endpoint in self.reserved_endpoints:
            return await self.budget.take(self.weight(endpoint), may_use_reserve=True)
        return await self.budget.take(self.weight(endpoint))


# The periodic cross-checks' default pace: the longer of the interval shipped before the tiers were
# measured (premium keeps it) and the interval that holds the check to its share of the tier's budget. Shares
# of one account's budget; a budget shared by A and B gives each account half of it.
RECONCILE_SHARE = 1 / 8
RECONCILE_MIN_INTERVAL_S = 30.0
# What one periodic run of execution/reconcile.py reads: positions, open orders, orders looked up by client
# order index (when some are unresolved), trades since the watermark.
RECONCILE_READS = ("account", "accountActiveOrders", "accountOrders", "trades")
EXPOSURE_CHECK_SHARE = 1 / 12
EXPOSURE_CHECK_MIN_INTERVAL_S = 10.0
EXPOSURE_CHECK_READS = ("account",)  # A's watchdog reads B's position (the cross-check of B's published one)
# A's look at its resting order by client order index while its account stream brings no news (maker.py): a
# fill in a silence must be hedged within seconds, so this check takes the largest share, a third (with the
# two above, a little over half of the budget; the rest is for sendTx and the lookups after a send). It runs
# only while an order rests and the stream is down or quiet: on the venue, a quiet market's account stream
# says nothing between pings, so in practice it runs for most of the time an order rests.
RESTING_CHECK_SHARE = 1 / 3
RESTING_CHECK_MIN_INTERVAL_S = 1.0
RESTING_CHECK_READS = ("accountOrders",)  # a found fill adds one trades read (execution/reconcile.py)
# A's re-pricing of its resting order (`maker_reprice`): one ModifyOrder (one sendTx) per attempt, an attempt
# given up at departure included (the token is spent before the price is read). A trending book could have A
# modify as soon as each modify shows, ~1 a second or more: on Standard the whole budget, so the cancel of a
# partly filled order (B waits for it when A's price is the touch) would queue behind it. Held to a quarter
# of the budget (Standard: one every 4 s, 8 s on a shared budget; premium: 0.06 s, 0.12 s shared).
MODIFY_SHARE = 1 / 4
MODIFY_SENDS = ("sendTx",)


def cross_check_interval_s(tier: str, reads: tuple[str, ...], share: float, floor_s: float,
                           shared: bool = False) -> float:
    """Seconds between runs of a check making `reads`, so that it uses at most `share` of the budget."""
    throttle = RequestThrottle(tier)
    cost = sum(throttle.weight(endpoint) for endpoint in reads)
    allowed_per_minute = budget_per_minute(tier) * share / (2 if shared else 1)
    return max(floor_s, 60.0 * cost / allowed_per_minute)


def reconcile_interval_s(tier: str, shared: bool = False) -> float:
    """Default period of the reconciliation (standard 32 s, 64 s on a shared budget; premium 30 s)."""
    return cross_check_interval_s(tier, RECONCILE_READS, RECONCILE_SHARE, RECONCILE_MIN_INTERVAL_S, shared)


def exposure_check_interval_s(tier: str, shared: bool = False) -> float:
    """Default period of the watchdog's read (standard 12 s, 24 s on a shared budget; premium 10 s)."""
    return cross_check_interval_s(tier, EXPOSURE_CHECK_READS, EXPOSURE_CHECK_SHARE,
                                  EXPOSURE_CHECK_MIN_INTERVAL_S, shared)


def resting_check_interval_s(tier: str, shared: bool = False) -> float:
    """Default pace of A's REST look at its resting order while its stream brings no news (standard 3 s,
    6 s on a shared budget; premium 2.25 s, 4.5 s shared)."""
    return cross_check_interval_s(tier, RESTING_CHECK_READS, RESTING_CHECK_SHARE,
                                  RESTING_CHECK_MIN_INTERVAL_S, shared)


def modify_interval_s(tier: str, shared: bool = False) -> float:
    """Least seconds between two of A's modify attempts: its share of the tier's budget (`MODIFY_SHARE`),
    and at least one maker speed bump (the modify before it has had its bump)."""
    return cross_check_interval_s(tier, MODIFY_SENDS, MODIFY_SHARE, maker_speed_bump_ms(tier) / 1000, shared)


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [base, min(cap, base * 2^attempt)]."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt)))
    return (rng or random).uniform(base_s, max(base_s, ceiling))

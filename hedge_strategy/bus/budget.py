"""`SharedBudget`: one rate-limit budget for A and B, kept in Redis (`exchange.shared_budget: true`).

On the venue, two sub-accounts of one L1 address may share one rate limit (Standard: 60 requests a rolling
minute, sendTx included; documented, not verified from captured traffic): with a budget per process, A and B
together could then spend twice what the venue allows. This
budget is the same token bucket as the throttle's own (`exchange/throttle.py`: capacity C and refill r with
C + 60 r = the per-minute budget), kept in one Redis hash per pair and budget name,
`hedge:{pair}:budget:{name}` (fields `tokens`, `stamp`), changed only by one Lua script: takes are atomic.

A take is a reservation: the script always subtracts the amount and answers how long the caller must wait
before its request goes out (the tokens may go below zero: a debt the refill pays back). One round trip per
request, and first come first served across both processes, as the local bucket's lock is within one. Time is
Redis's own (`TIME`), one clock for both processes wherever they run; tests pass theirs.

Trading never stalls on Redis: every call is bounded by `timeout_s`. When Redis cannot answer, the budget
falls back to the `fallback` it was given (`shared_budget` gives a local bucket at HALF the tier's rate, so
A and B falling back together still stay within the venue's limit), logs that once, and tries Redis again
after `retry_after_s`; one line says when the shared budget is back. The switch itself is not exact: the
fallback bucket starts full while the shared one may have been spent, so the minute of a switch may see up to
half a burst more than the budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus.client import BusKeys
from hedge_strategy.bus.connect import RedisConnection, open_redis
from hedge_strategy.exchange.throttle import RateBudget, bucket_shape, local_bucket

if TYPE_CHECKING:
    from hedge_strategy.config import Config, RedisConfig

REDIS_TIMEOUT_S = 0.25  # a local Redis answers in well under a millisecond; past this the fallback is cheaper
RETRY_AFTER_S = 5.0  # while falling back, how often Redis is tried again
BUDGET_TTL_MS = 600_000  # an idle budget's key expires (a full bucket is what a missing key means)

# KEYS[1] the budget hash. ARGV: capacity, refill per second, amount, now in seconds ("" = Redis's TIME),
# key TTL in ms. Returns the seconds to wait before the request may go out, as a string ("0": at once).
# Numbers are kept as strings with 6 decimals: Lua's own tostring keeps only 14 significant digits.
_RESERVE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens, stamp = capacity, now
end
if now > stamp then
  tokens = math.min(capacity, tokens + (now - stamp) * rate)
  stamp = now
end
tokens = tokens - amount
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'stamp', string.format('%.6f', stamp))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if tokens >= 0 then
  return '0'
end
return string.format('%.6f', -tokens / rate)
"""


class SharedBudget:
    """A `RateBudget` (see `exchange/throttle.py`) shared through Redis. See the module docstring."""

    def __init__(self, redis: aioredis.Redis, key: str, capacity: float, refill_per_s: float, *,
                 fallback: RateBudget, fallback_label: str, clock: Callable[[], float] | None = None,
                 timeout_s: float = REDIS_TIMEOUT_S, retry_after_s: float = RETRY_AFTER_S,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("budget capacity and refill rate must be positive")
        self.redis = redis
        self.key = key
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.fallback = fallback
        self._fallback_label = fallback_label
        self._clock = clock  # None: Redis's TIME
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._monotonic = monotonic
        self._sleep = sleep  # tests pass one that moves their clock
        self._script = redis.register_script(_RESERVE)
        self._falling_back_since: float | None = None  # monotonic time of the last failed Redis call
        self._connection: RedisConnection | None = None  # set when the budget opened its own client
        self.fallback_takes = 0  # takes served by the fallback (for tests and status)

    @classmethod
    def open(cls, settings: RedisConfig, pair: str, name: str, capacity: float, refill_per_s: float, *,
             fallback: RateBudget, fallback_label: str) -> SharedBudget:
        """Budget `name` of `pair` on a client of its own for the configured Redis (directly or through
        Sentinel, as the bus), with waits of `REDIS_TIMEOUT_S` and no retry: the fallback is the retry.
        `aclose()` closes it."""
        connection = open_redis(settings, socket_timeout_s=REDIS_TIMEOUT_S, connect_timeout_s=REDIS_TIMEOUT_S,
                                retries=0)
        budget = cls(connection.client, BusKeys(pair).budget(name), capacity, refill_per_s, fallback=fallback,
                     fallback_label=fallback_label)
        budget._connection = connection
        return budget

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()

    @property
    def falling_back(self) -> bool:
        return self._falling_back_since is not None

    async def reserve(self, amount: float) -> float:
        """Take `amount` from the shared bucket now; returns the seconds until the request may go out.

        Raises `RedisError` (or `TimeoutError`) when Redis does not answer within the timeout.
        """
        if amount > self.capacity:
            raise ValueError(f"request of {amount} tokens exceeds the budget's capacity {self.capacity}")
        now = "" if self._clock is None else f"{self._clock():.6f}"
        async with asyncio.timeout(self._timeout_s):
            wait = await self._script(keys=[self.key], args=[self.capacity, self.refill_per_s, amount, now,
                                                               BUDGET_TTL_MS])
        return float(wait)

    async def take(self, amount: float) -> float:
        """Wait until `amount` may go out (shared with the other process) and take it; the seconds waited."""
        if self._falling_back_since is not None and \
                self._monotonic() - self._falling_back_since < self._retry_after_s:
            return await self._take_fallback(amount)
        try:
            wait = await self.reserve(amount)
        except (RedisError, OSError, TimeoutError) as exc:
            if self._falling_back_since is None:
                logger.warning("shared rate budget {}: Redis does not answer ({}); using {} until it does",
                               self.key, type(exc).__name__, self._fallback_label)
            self._falling_back_since = self._monotonic()
            return await self._take_fallback(amount)
        if self._falling_back_since is not None:
            self._falling_back_since = None
            logger.info("shared rate budget {}: Redis answers again; back to the shared budget", self.key)
        if wait > 0:
            await self._sleep(wait)  # the reservation is ours: waiting is all that is left
        return wait

    async def _take_fallback(self, amount: float) -> float:
        self.fallback_takes += 1
        return await self.fallback.take(amount)


def shared_budget(config: Config) -> SharedBudget | None:
    """With `exchange.shared_budget`, the one REST budget of A and B (the tier's whole budget, as on the
    venue); when Redis does not answer, each process falls back to half of it on its own. Else None."""
    ex = config.exchange
    if not ex.shared_budget:
        return None
    capacity, refill_per_s = bucket_shape(ex.tier)
    return SharedBudget.open(config.redis, config.pair, "rest", capacity, refill_per_s,
                             fallback=local_bucket(ex.tier, share=0.5),
                             fallback_label=f"a local budget at half the {ex.tier} rate")

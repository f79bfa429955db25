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

B's hedges go first (`exchange.hedge_reserve`): the budget keeps its last `reserve` tokens (that many
transactions' weight) for takes that `may_use_reserve` (B's sendTx: its IOCs). Any other take (A's reads and
maker orders, B's reads) goes out only while the bucket stays at or above the reserve after it, and is not
reserved ahead: it waits, unrecorded, until the refill allows it and asks again. Otherwise its reservation
would be a debt in front of B's next IOC, which then queued behind A's requests (0.4 to 0.9 s, issue 10).
A take that may use the reserve is a reservation as above (first come first served among them).

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
from hedge_strategy.exchange.throttle import RateBudget, RequestThrottle, bucket_shape, local_bucket

if TYPE_CHECKING:
    from hedge_strategy.config import Config, RedisConfig

REDIS_TIMEOUT_S = 0.25  # a local Redis answers in well under a millisecond; past this the fallback is cheaper
RETRY_AFTER_S = 5.0  # while falling back, how often Redis is tried again
BUDGET_TTL_MS = 600_000  # an idle budget's key expires (a full bucket is what a missing key means)

# KEYS[1] the budget hash. ARGV: capacity, refill per second, amount, now in seconds ("" = Redis's TIME),
# key TTL in ms, floor (0: a reservation, taken now, the wait paying any debt; above 0: taken only when the
# bucket stays at or above the floor after it, else nothing is taken). Returns the seconds to wait as a
# string: "0" taken, go at once; for a reservation, taken, go after the wait; above the floor, NOT taken, ask
# again after the wait. Numbers are kept as strings with 6 decimals: Lua's tostring keeps only 14 digits.
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
local floor = tonumber(ARGV[6])
if floor > 0 and tokens - amount < floor then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'stamp', string.format('%.6f', stamp))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return string.format('%.6f', math.max((amount + floor - tokens) / rate, 0.000001))
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
                 fallback: RateBudget, fallback_label: str, reserve: float = 0.0,
                 clock: Callable[[], float] | None = None,
                 timeout_s: float = REDIS_TIMEOUT_S, retry_after_s: float = RETRY_AFTER_S,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("budget capacity and refill rate must be positive")
        if not 0 <= reserve < capacity:
            raise ValueError(f"budget reserve {reserve} must be at least 0 and below the capacity {capacity}")
        self.redis = redis
        self.reserve_tokens = reserve  # left for takes that may use the reserve (B's hedges)
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
             fallback: RateBudget, fallback_label: str, reserve: float = 0.0) -> SharedBudget:
        """Budget `name` of `pair` on a client of its own for the configured Redis (directly or through
        Sentinel, as the bus), with waits of `REDIS_TIMEOUT_S` and no retry: the fallback is the retry.
        `aclose()` closes it."""
        connection = open_redis(settings, socket_timeout_s=REDIS_TIMEOUT_S, connect_timeout_s=REDIS_TIMEOUT_S,
                                retries=0)
        budget = cls(connection.client, BusKeys(pair).budget(name), capacity, refill_per_s, fallback=fallback,
                     fallback_label=fallback_label, reserve=reserve)
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
        return await self._call(amount, floor=0.0)

    async def take_above_reserve(self, amount: float) -> float:
        """Take `amount` now if the bucket keeps its reserve after it and return 0; else take nothing and
        return the seconds until it may (then ask again). Raises as `reserve`."""
        return await self._call(amount, floor=self.reserve_tokens)

    async def _call(self, amount: float, floor: float) -> float:
        if amount + floor > self.capacity:
            raise ValueError(f"request of {amount} tokens above a reserve of {floor} exceeds the budget's "
                             f"capacity {self.capacity}")
        now = "" if self._clock is None else f"{self._clock():.6f}"
        async with asyncio.timeout(self._timeout_s):
            wait = await self._script(keys=[self.key], args=[self.capacity, self.refill_per_s, amount, now,
                                                               BUDGET_TTL_MS, floor])
        return float(wait)

    async def take(self, amount: float, may_use_reserve: bool = False) -> float:
        """Wait until `amount` may go out (shared with the other process) and take it; the seconds waited.
        Only a take that `may_use_reserve` can reach the last `reserve_tokens` (see the module docstring)."""
        if self._falling_back_since is not None and \
                self._monotonic() - self._falling_back_since < self._retry_after_s:
            return await self._take_fallback(amount)
        try:
            if self.reserve_tokens > 0 and not may_use_reserve:
                return await self._take_above_reserve(amount)
            wait = await self.reserve(amount)
        except (RedisError, OSError, TimeoutError) as exc:
            if self._falling_back_since is None:
                logger.warning("shared rate budget {}: Redis does not answer ({}); using {} until it does",
                               self.key, type(exc).__name__, self._fallback_label)
            self._falling_back_since = self._monotonic()
            return await self._take_fallback(amount)
        self._shared_again()
        if wait > 0:
            await self._sleep(wait)  # the reservation is ours: waiting is all that is left
        return wait

    async def _take_above_reserve(self, amount: float) -> float:
        """Ask until the bucket allows `amount` above the reserve; Redis errors go up to `take`."""
        waited = 0.0
        while (wait := await self.take_above_reserve(amount)) > 0:
            self._shared_again()
            await self._sleep(wait)  # nothing is reserved: the refill may let it through, or B's IOC first
            waited += wait
        self._shared_again()
        return waited

    def _shared_again(self) -> None:
        if self._falling_back_since is not None:
            self._falling_back_since = None
            logger.info("shared rate budget {}: Redis answers again; back to the shared budget", self.key)

    async def _take_fallback(self, amount: float) -> float:  # the local bucket keeps no reserve
        self.fallback_takes += 1
        return await self.fallback.take(amount)


def shared_budget(config: Config) -> SharedBudget | None:
    """With `exchange.shared_budget`, the one REST budget of A and B (the tier's whole budget, as on the
    venue), its last `exchange.hedge_reserve` transactions' weight kept for B's hedges; when Redis does not
    answer, each process falls back to half of it on its own (no reserve there). Else None."""
    ex = config.exchange
    if not ex.shared_budget:
        return None
    capacity, refill_per_s = bucket_shape(ex.tier)
    reserve = ex.hedge_reserve * RequestThrottle(ex.tier).weight("sendTx")
    return SharedBudget.open(config.redis, config.pair, "rest", capacity, refill_per_s,
                             fallback=local_bucket(ex.tier, share=0.5),
                             fallback_label=f"a local budget at half the {ex.tier} rate", reserve=reserve)

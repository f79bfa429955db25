"""The rate budget A and B may share through Redis (`bus/budget.py`), on a real redis-server.

Time is a `FakeClock` given to the budget (its Lua script then uses it instead of Redis's TIME), and the
budget's wait is recorded instead of slept: a request leaves at the time it asked plus the wait it was given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from hedge_strategy.bus import SharedBudget, shared_budget
from hedge_strategy.config import Config, config_from_mapping
from hedge_strategy.exchange import LighterAccount
from hedge_strategy.exchange.throttle import RateBudget, TokenBucket, bucket_shape, local_bucket
from tests.fixtures.common import FakeClock
from tests.fixtures.procs import free_port
from tests.fixtures.redis import start_redis_server, stop_redis_server

KEY = "hedge:demo:budget:rest"
STANDARD_PER_MINUTE = 60
SECRET = "00" * 40  # never used: the accounts are not started, only their throttles are


def account(index: int, budget: RateBudget | None, tx_may_use_reserve: bool = False) -> LighterAccount:
    return LighterAccount(url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/stream", account_index=index,
                          api_key_index=3, api_secret=SECRET, tier="standard", budget=budget,
                          tx_may_use_reserve=tx_may_use_reserve)


async def no_sleep(_seconds: float) -> None:
    """The budget's wait, not slept: the caller adds it to the clock's reading itself."""


def shared(redis: aioredis.Redis, clock: FakeClock, reserve: float = 0.0, passing: bool = False
           ) -> SharedBudget:
    """The standard budget on `clock`; `passing`: its waits move the clock (else they are only returned)."""
    capacity, refill_per_s = bucket_shape("standard")

    async def wait_passes(seconds: float) -> None:
        clock.now += seconds

    return SharedBudget(redis, KEY, capacity, refill_per_s, fallback=local_bucket("standard", 0.5, clock),
                        fallback_label="half", clock=clock, sleep=wait_passes if passing else no_sleep,
                        reserve=reserve)


async def greedy_pair(acquire: dict[str, Callable[[], Awaitable[float]]], clock: FakeClock,
                      seconds: float) -> dict[str, list[float]]:
    """Each account asks again as soon as its previous request left (one in flight each, as a sequential
    loop does), every 50 ms of the fake clock; returns when each request left, by account."""
    left: dict[str, list[float]] = {name: [] for name in acquire}
    free_at = dict.fromkeys(acquire, clock.now)
    end = clock.now + seconds
    while clock.now < end:
        for name, take in acquire.items():
            if free_at[name] <= clock.now:
                asked = clock.now
                free_at[name] = asked + await take()
                left[name].append(free_at[name])
        clock.now += 0.05
    return left


def busiest_minute(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered[i:] if t - start < 60) for i, start in enumerate(ordered))


async def test_a_and_b_on_one_shared_budget_never_exceed_it(redis_client: aioredis.Redis) -> None:
    clock = FakeClock(1000.0)
    a, b = account(101, shared(redis_client, clock)), account(102, shared(redis_client, clock))
    left = await greedy_pair({"A": lambda: a.throttle.acquire("sendTx"),
                              "B": lambda: b.throttle.acquire("accountActiveOrders")}, clock, 180)

    everything = left["A"] + left["B"]
    assert busiest_minute(everything) <= STANDARD_PER_MINUTE
    # The budget is spent, not starved: a burst of 10 then 50 a minute, shared about evenly.
    assert len(everything) >= 10 + 50 * 2
    assert abs(len(left["A"]) - len(left["B"])) <= 2


def test_a_and_b_on_budgets_of_their_own_exceed_the_venue_limit() -> None:
    # What the shared budget is for: two sub-accounts of one L1 address may share the venue's limit.
    clock = FakeClock(1000.0)
    buckets = [local_bucket("standard", clock=clock), local_bucket("standard", clock=clock)]
    a, b = account(101, buckets[0]), account(102, buckets[1])
    assert (a.throttle.budget, b.throttle.budget) == (buckets[0], buckets[1])
    left: list[list[float]] = [[], []]
    end = clock.now + 120
    while clock.now < end:
        for bucket, times in zip(buckets, left, strict=True):
            if bucket.try_take(1) == 0:
                times.append(clock.now)
        clock.now += 0.05
    assert busiest_minute(left[0]) <= STANDARD_PER_MINUTE
    assert busiest_minute(left[0] + left[1]) > STANDARD_PER_MINUTE


async def test_a_reservation_waits_for_the_refill(redis_client: aioredis.Redis) -> None:
    clock = FakeClock(1000.0)
    budget = shared(redis_client, clock)
    assert [await budget.reserve(1) for _ in range(10)] == [0.0] * 10  # the burst: a sixth of the minute
    refill_s = 1 / budget.refill_per_s  # 1.2 s a request
    assert await budget.reserve(1) == pytest.approx(refill_s)
    assert await budget.reserve(1) == pytest.approx(2 * refill_s)  # queued behind the one before
    clock.now += 10 * refill_s
    assert await budget.reserve(1) == 0.0
    with pytest.raises(ValueError):
        await budget.reserve(budget.capacity + 1)


async def test_the_reserve_is_left_to_takes_that_may_use_it(redis_client: aioredis.Redis) -> None:
    clock = FakeClock(1000.0)
    budget = shared(redis_client, clock, reserve=2)
    refill_s = 1 / budget.refill_per_s
    assert [await budget.take_above_reserve(1) for _ in range(8)] == [0.0] * 8  # the burst of 10, less 2
    # The 9th would take the reserve: nothing is taken, it is told when the refill allows it.
    assert await budget.take_above_reserve(1) == pytest.approx(refill_s)
    assert float(await redis_client.hget(KEY, "tokens")) == pytest.approx(2)
    assert [await budget.reserve(1) for _ in range(2)] == [0.0, 0.0]  # B's hedges: at once
    assert await budget.reserve(1) == pytest.approx(refill_s)  # beyond the reserve: a reservation
    # Behind B's debt the others wait for the debt and the reserve to refill.
    assert await budget.take_above_reserve(1) == pytest.approx(4 * refill_s)
    with pytest.raises(ValueError):
        await budget.take_above_reserve(budget.capacity - 1)  # it could never stay above the reserve


async def test_b_hedge_goes_at_once_after_a_spent_the_shared_budget(redis_client: aioredis.Redis) -> None:
    # Issue 10: B's IOC queued 0.4-0.9 s behind A's requests. With the reserve, A's reads (and B's) leave the
    # last tokens to B's transactions; without it, B's transaction waits behind what A took.
    for reserve, b_waits in ((2.0, False), (0.0, True)):
        await redis_client.delete(KEY)
        clock = FakeClock(1000.0)
        budget = shared(redis_client, clock, reserve=reserve, passing=True)
        a = account(101, budget)
        b = account(102, budget, tx_may_use_reserve=True)
        for _ in range(12):  # A reads as fast as the budget lets it: beyond the burst it waits
            await a.throttle.acquire("account")
            await a.throttle.acquire("sendTx")  # A's maker orders never take the reserve either
        started = clock.now
        assert (await b.throttle.acquire("sendTx") > 0) is b_waits
        if not b_waits:
            assert clock.now == started
            assert await b.throttle.acquire("accountActiveOrders") > 0  # B's reads leave it too


def config_with(redis_url: str, shared_budget: bool = True) -> Config:
    return config_from_mapping({
        "pair": "demo", "secrets_file": "var/secrets.json",
        "accounts": {"a": {"account_index": 101, "api_key_index": 3},
                     "b": {"account_index": 102, "api_key_index": 3}},
        "exchange": {"url": "http://127.0.0.1:1", "ws_url": "ws://127.0.0.1:1/stream", "tier": "standard",
                     "shared_budget": shared_budget},
        "redis": {"url": redis_url},
        "strategy": {"market": "BTC", "quantity": "0.0002"},
    })


async def test_redis_down_falls_back_to_half_the_rate_logged_once(log_lines: list[str]) -> None:
    budget = shared_budget(config_with(f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    assert budget is not None
    try:
        fallback = budget.fallback
        assert isinstance(fallback, TokenBucket)
        assert fallback.capacity + 60 * fallback.refill_per_s == pytest.approx(STANDARD_PER_MINUTE / 2)
        a = account(101, budget)
        for _ in range(5):  # half of the standard burst of 10 goes out at once, the rest must wait
            assert await a.throttle.acquire("sendTx") == 0
        assert budget.falling_back and budget.fallback_takes == 5
        assert fallback.try_take(1) > 0
    finally:
        await budget.aclose()
    said = [line for line in log_lines if "shared rate budget" in line]
    assert len(said) == 1, said
    assert said[0].startswith("WARNING") and "half the standard rate" in said[0]


async def test_back_to_the_shared_budget_when_redis_answers_again(log_lines: list[str]) -> None:
    port = free_port()
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=1,
                                     socket_connect_timeout=1)
    clock, monotonic = FakeClock(1000.0), FakeClock(0.0)
    capacity, refill_per_s = bucket_shape("standard")
    budget = SharedBudget(client, KEY, capacity, refill_per_s, fallback=local_bucket("standard", 0.5, clock),
                          fallback_label="half", clock=clock, sleep=no_sleep, monotonic=monotonic,
                          retry_after_s=5)
    server = None
    try:
        assert await budget.take(1) == 0 and budget.falling_back
        server = start_redis_server(port)
        monotonic.now += 1
        await budget.take(1)  # within the retry period: still the fallback, Redis not asked
        assert budget.fallback_takes == 2 and await client.exists(KEY) == 0
        monotonic.now += 5
        assert await budget.take(1) == 0
        assert not budget.falling_back and budget.fallback_takes == 2
        assert float(await client.hget(KEY, "tokens")) == pytest.approx(capacity - 1)
    finally:
        await client.aclose()
        if server is not None:
            stop_redis_server(server)
    said = [line.split(" ", 1)[0] for line in log_lines if "shared rate budget" in line]
    assert said == ["WARNING", "INFO"]


async def test_the_reserve_comes_from_the_config(redis_server: str) -> None:
    budget = shared_budget(config_with(redis_server))
    assert budget is not None
    try:
        assert budget.reserve_tokens == 2  # exchange.hedge_reserve: 2 transactions of weight 1 on standard
    finally:
        await budget.aclose()


def test_without_the_setting_each_account_keeps_its_own_budget() -> None:
    assert shared_budget(config_with("redis://127.0.0.1:1/0", shared_budget=False)) is None
    assert isinstance(account(101, None).throttle.budget, TokenBucket)

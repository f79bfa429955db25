"""Unit tests: client-side token bucket and backoff."""

import asyncio
import random

import pytest

from hedge_strategy.exchange.throttle import (
    RECONCILE_READS,
    RequestThrottle,
    TokenBucket,
    backoff_delay,
    budget_per_minute,
    exposure_check_interval_s,
    local_bucket,
    reconcile_interval_s,
    resting_check_interval_s,
)
from tests.fixtures.common import FakeClock


def test_bucket_allows_a_burst_then_refuses() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(capacity=10, refill_per_s=1, clock=clock)
    for _ in range(10):
        assert bucket.try_take(1) == 0
    assert bucket.try_take(1) == pytest.approx(1.0)
    clock.now = 0.5
    assert bucket.try_take(1) == pytest.approx(0.5)
    clock.now = 1.0
    assert bucket.try_take(1) == 0


def test_bucket_never_exceeds_capacity_after_idle() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(capacity=5, refill_per_s=2, clock=clock)
    clock.now = 1000
    assert bucket.available == 5


def test_bucket_rejects_requests_larger_than_capacity() -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity=5, refill_per_s=1).try_take(6)


def test_standard_tier_stays_under_sixty_per_rolling_minute() -> None:
    clock = FakeClock(0.0)
    throttle = RequestThrottle("standard", clock=clock)
    bucket = throttle.budget
    assert isinstance(bucket, TokenBucket)  # the account's own, when no shared budget is given
    granted: list[float] = []
    # Greedy client: asks every 10 ms for 3 minutes.
    while clock.now < 180:
        if bucket.try_take(throttle.weight("sendTx")) == 0:
            granted.append(clock.now)
        clock.now += 0.01
    for i, start in enumerate(granted):
        in_window = sum(1 for t in granted[i:] if t - start < 60)
        assert in_window <= 60


def test_premium_weights() -> None:
    throttle = RequestThrottle("premium")
    assert throttle.weight("sendTx") == 6
    assert throttle.weight("trades") == 600
    assert throttle.weight("accountActiveOrders") == 300
    assert RequestThrottle("standard").weight("trades") == 1
    with pytest.raises(ValueError):
        RequestThrottle("gold")


async def test_take_waits_for_tokens() -> None:
    bucket = TokenBucket(capacity=1, refill_per_s=50)
    assert await bucket.take(1) == 0
    waited = await asyncio.wait_for(bucket.take(1), timeout=2)
    assert 0 < waited <= 0.1


def test_backoff_full_jitter_bounds() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        delay = backoff_delay(attempt, 0.25, 30, rng)
        assert 0.25 <= delay <= min(30, 0.25 * 2**attempt)
    assert max(backoff_delay(20, 0.25, 30, rng) for _ in range(200)) > 15


def test_half_a_budget_is_half_of_each_rolling_minute() -> None:
    whole, half = local_bucket("standard"), local_bucket("standard", share=0.5)
    assert whole.capacity + 60 * whole.refill_per_s == pytest.approx(60)
    assert half.capacity + 60 * half.refill_per_s == pytest.approx(30)
    premium = local_bucket("premium", share=0.5)
    assert premium.capacity + 60 * premium.refill_per_s == pytest.approx(12_000)


def test_cross_checks_take_their_pace_from_the_tier_budget() -> None:
    # Premium keeps the intervals shipped before the tiers were measured; a Standard account spends at most an
    # eighth of its 60 requests on reconciliation (4 reads a run) and a twelfth on the watchdog's read of B.
    assert reconcile_interval_s("premium") == 30
    assert exposure_check_interval_s("premium") == 10
    assert reconcile_interval_s("standard") == pytest.approx(32)
    assert exposure_check_interval_s("standard") == pytest.approx(12)
    # One budget for A and B: each account's checks get half as much of it.
    assert reconcile_interval_s("standard", shared=True) == pytest.approx(64)
    assert exposure_check_interval_s("standard", shared=True) == pytest.approx(24)


def test_the_resting_order_check_takes_a_third_of_the_budget() -> None:
    # A's look at its resting order by client order index (premium weight 300) while its stream is silent.
    assert resting_check_interval_s("premium") == pytest.approx(2.25)
    assert resting_check_interval_s("standard") == pytest.approx(3)
    assert resting_check_interval_s("standard", shared=True) == pytest.approx(6)
    for tier in ("standard", "premium"):  # with the other cross-checks, a little over half of the budget
        used = sum(cost / interval for cost, interval in (
            (RequestThrottle(tier).weight("accountOrders"), resting_check_interval_s(tier)),
            (sum(RequestThrottle(tier).weight(e) for e in RECONCILE_READS), reconcile_interval_s(tier)),
            (RequestThrottle(tier).weight("account"), exposure_check_interval_s(tier))))
        assert used * 60 <= 0.55 * budget_per_minute(tier)

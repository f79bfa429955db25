"""The WebSocket message budget, on a fake clock: the rolling minute, the priority floors, the 30009 pause."""

from __future__ import annotations

import bisect

import pytest

from hedge_strategy.exchange.ws_budget import (
    FLOORS,
    MESSAGES_PER_MINUTE,
    RATE_LIMITED_PAUSE_S,
    VENUE_MESSAGES_PER_MINUTE,
    MessageBudget,
    Priority,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def most_in_a_minute(times: list[float]) -> int:
    return max(bisect.bisect_right(times, t + 60.0 - 1e-9) - i for i, t in enumerate(times))


def test_two_processes_stay_under_the_venue_limit() -> None:
    assert 2 * MESSAGES_PER_MINUTE < VENUE_MESSAGES_PER_MINUTE


@pytest.mark.parametrize("priority", list(Priority))
def test_no_rolling_minute_exceeds_the_budget(priority: Priority) -> None:
    clock = Clock()
    budget = MessageBudget(clock=clock)
    sent: list[float] = []
    while clock.now < 1000.0 + 300:  # five minutes of a client sending whenever it is allowed
        if budget.try_take(priority) == 0:
            sent.append(clock.now)
        clock.now += 0.05
    assert most_in_a_minute(sent) <= budget.per_minute
    assert budget.sent == len(sent) > 4 * (budget.per_minute - 20)  # and it is not starved either


def test_each_priority_leaves_the_reserves_of_the_more_urgent_ones() -> None:
    clock = Clock()
    budget = MessageBudget(per_minute=80, burst=20, clock=clock)
    taken = {p: 0 for p in Priority}
    for priority in sorted(Priority, reverse=True):  # the least urgent drain first
        while budget.try_take(priority) == 0:
            taken[priority] += 1
    assert taken[Priority.BOOK] == 20 - FLOORS[Priority.BOOK]
    assert taken[Priority.BOOK_KEEPALIVE] == FLOORS[Priority.BOOK] - FLOORS[Priority.BOOK_KEEPALIVE]
    assert taken[Priority.ACCOUNT] == FLOORS[Priority.BOOK_KEEPALIVE] - FLOORS[Priority.ACCOUNT]
    assert taken[Priority.KEEPALIVE] == FLOORS[Priority.ACCOUNT]
    wait = budget.try_take(Priority.BOOK, 2)
    assert wait == pytest.approx((FLOORS[Priority.BOOK] + 2) / budget_refill(budget))
    clock.now += wait
    assert budget.try_take(Priority.BOOK, 2) == 0  # a resync (unsubscribe + subscribe) goes out as a pair


def budget_refill(budget: MessageBudget) -> float:
    return (budget.per_minute - 20) / 60


def test_rate_limited_pauses_all_but_keepalives() -> None:
    clock = Clock()
    budget = MessageBudget(clock=clock)
    assert budget.rate_limited() == RATE_LIMITED_PAUSE_S
    assert budget.try_take(Priority.ACCOUNT) == pytest.approx(RATE_LIMITED_PAUSE_S)
    assert budget.try_take(Priority.KEEPALIVE) > 0  # the bucket was emptied too
    clock.now += 1.0
    assert budget.try_take(Priority.KEEPALIVE) == 0  # a pong goes out as soon as one token is back
    assert budget.try_take(Priority.BOOK_KEEPALIVE) > 0  # the book connection waits above its floor
    clock.now += RATE_LIMITED_PAUSE_S
    assert budget.try_take(Priority.ACCOUNT) == 0
    assert budget.rate_limited_count == 1


def test_a_budget_too_small_for_its_reserves_is_refused() -> None:
    with pytest.raises(ValueError):
        MessageBudget(per_minute=30, burst=8)


def test_most_allowed_is_the_burst_plus_the_refill_over_its_own_clock() -> None:
    clock = Clock()
    budget = MessageBudget(per_minute=80, burst=20, clock=clock)
    assert budget.most_allowed() == 20
    clock.now += 30.0  # the bucket is full: the half minute refills nothing beyond the burst it holds
    while budget.try_take(Priority.KEEPALIVE) == 0:
        pass
    assert budget.sent == 20 and budget.most_allowed() == pytest.approx(20 + 30.0 * 60 / 60)
    for _ in range(60):  # a client taking whenever it may, for a minute
        clock.now += 1.0
        while budget.try_take(Priority.KEEPALIVE) == 0:
            pass
    assert budget.sent <= budget.most_allowed() == pytest.approx(20 + 90.0)
    assert budget.sent == 20 + 60  # the minute's refill, all of it taken

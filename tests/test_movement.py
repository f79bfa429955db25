"""The market's move over one taker speed bump (`exchange/movement.py`): scripted mids on a scripted clock."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from hedge_strategy import chase
from hedge_strategy.exchange.movement import (
    ARRIVAL_MARGIN_MS,
    MidMovement,
    clear_of_touch,
    maker_speed_bump_ms,
    taker_speed_bump_ms,
)

TICK = D("0.1")


def feed(movement: MidMovement, *points: tuple[float, str]) -> None:
    """(ms, mid) points; each mid is given as a one-tick-wide book around it."""
    for at_ms, mid in points:
        movement.update(at_ms, D(mid) - TICK / 2, D(mid) + TICK / 2)


def test_the_bump_is_the_tiers_taker_speed_bump() -> None:
    assert taker_speed_bump_ms("premium") == 200
    assert taker_speed_bump_ms("standard") == 300
    with pytest.raises(KeyError):
        taker_speed_bump_ms("vip")


def test_each_change_is_compared_with_the_mid_that_stood_one_bump_before() -> None:
    movement = MidMovement(TICK, horizon_ms=200)
    feed(movement, (0, "100.0"))
    assert movement.move_ticks(0.95, 0) is None  # nothing stood 200 ms before
    feed(movement, (100, "100.5"))  # only 100 ms after the first: no sample yet
    assert len(movement) == 0
    feed(movement, (250, "101.0"))  # at 50 ms the mid was 100.0: 10 ticks
    feed(movement, (320, "100.2"))  # at 120 ms it was 100.5: 3 ticks
    feed(movement, (900, "100.2"))  # at 700 ms it was 100.2 (the last change before): still
    assert len(movement) == 3
    assert movement.move_ticks(1.0, 900) == 10
    assert movement.move_ticks(0.5, 900) == 3
    assert movement.move_ticks(0.2, 900) == 0


def test_a_move_between_ticks_counts_as_the_next_whole_tick() -> None:
    movement = MidMovement(TICK, horizon_ms=200)
    movement.update(0, D("100.0"), D("100.1"))  # mid 100.05
    movement.update(300, D("100.1"), D("100.3"))  # mid 100.2: 1.5 ticks -> 2
    assert movement.move_ticks(1.0, 300) == 2


def test_the_share_picks_the_nearest_rank() -> None:
    movement = MidMovement(TICK, horizon_ms=200)
    mid = D("100.0")
    feed(movement, (0, str(mid)))
    # twenty changes 1 s apart, each moving k ticks from the one before: samples 1..20
    for k in range(1, 21):
        mid += k * TICK
        feed(movement, (k * 1000, str(mid)))
    assert movement.move_ticks(0.95, 20_000) == 19
    assert movement.move_ticks(1.0, 20_000) == 20
    assert movement.move_ticks(0.5, 20_000) == 10
    with pytest.raises(ValueError):
        movement.move_ticks(0.0, 20_000)


def test_samples_older_than_the_window_are_forgotten() -> None:
    movement = MidMovement(TICK, horizon_ms=200, window_ms=60_000)
    feed(movement, (0, "100.0"), (1_000, "105.0"))  # a 50-tick jump at 1 s
    feed(movement, (30_000, "105.1"))  # a 1-tick move at 30 s
    assert movement.move_ticks(1.0, 30_000) == 50
    assert movement.move_ticks(1.0, 60_999) == 50  # the jump is a minute old at 61 s
    assert movement.move_ticks(1.0, 61_001) == 1
    assert movement.move_ticks(1.0, 90_001) is None  # a still market: no sample left


def test_a_one_sided_book_gives_no_mid() -> None:
    movement = MidMovement(TICK, horizon_ms=200)
    movement.update(0, None, D("100"))
    movement.update(500, D("99"), None)
    assert movement.move_ticks(1.0, 500) is None


def test_memory_is_bounded_and_the_oldest_samples_go_first() -> None:
    movement = MidMovement(TICK, horizon_ms=200, max_samples=10)
    feed(movement, (0, "100.0"), (1_000, "110.0"))  # one 100-tick sample first
    for k in range(2, 12):  # then ten still samples
        feed(movement, (k * 1_000, "110.0"))
    assert len(movement) == 10
    assert movement.move_ticks(1.0, 12_000) == 0  # the 100-tick sample was the one dropped


def test_many_changes_within_one_bump_keep_the_reference() -> None:
    movement = MidMovement(TICK, horizon_ms=200)
    feed(movement, (0, "100.0"))
    for k in range(1, 200):  # a change every ms, drifting one tick each
        feed(movement, (k, str(D("100.0") + k * TICK)))
    # at 199 ms nothing stood 200 ms before but the first mid, at 0 ms... and not yet 200 ms old
    assert len(movement) == 0
    feed(movement, (400, "100.0"))  # at 200 ms the mid was the one set at 199 ms: 199 ticks away
    assert movement.move_ticks(1.0, 400) == 199


def test_the_first_ioc_room_covers_all_but_the_rarest_moves_of_the_minute() -> None:
    """The share B prices attempt 1 with: of moves of 1..100 ticks (and as many standstills), its room covers
    all but the largest (95 % of hedges filled by the first IOC needs margin over the estimate's error)."""
    movement = MidMovement(TICK, horizon_ms=1)
    mid = D("100.0")
    for i in range(1, 101):
        feed(movement, (10 * i, str(mid)))
        mid += i * TICK if i % 2 else -i * TICK  # moved i ticks since the change 10 ms before
        feed(movement, (10 * i + 5, str(mid)))
    assert movement.move_ticks(chase.MOVE_SHARE, 1_010) >= 99


def test_the_window_of_a_bump_and_the_iocs_way_there_sees_a_step_the_bump_alone_misses() -> None:
    bump = taker_speed_bump_ms("premium")
    alone, with_margin = MidMovement(TICK, bump), MidMovement(TICK, bump + ARRIVAL_MARGIN_MS)
    points = ((0, "100.0"), (100, "100.0"), (120, "101.0"), (330, "101.0"))  # 10 ticks up, 210 ms earlier
    feed(alone, *points)
    feed(with_margin, *points)
    assert alone.move_ticks(1.0, 330) == 0
    assert with_margin.move_ticks(1.0, 330) == 10


def test_a_post_only_price_is_kept_clear_of_the_opposite_touch_by_the_maker_bumps_move() -> None:
    bid, ask = D("99.9"), D("100.0")  # a one-tick spread: a bid at the touch crosses if the ask falls a tick
    assert clear_of_touch(bid, ask, True, 2, TICK) == ask - 3 * TICK  # falls 2 ticks: still a tick short
    assert clear_of_touch(ask, bid, False, 2, TICK) == bid + 3 * TICK
    deep = D("99.0")  # already further back than the move can reach: left where it is
    assert clear_of_touch(deep, ask, True, 2, TICK) == deep
    assert clear_of_touch(bid, ask, True, None, TICK) == bid  # no estimate (a still market): at the touch
    assert clear_of_touch(bid, None, True, 2, TICK) == bid  # no opposite side to cross
    assert maker_speed_bump_ms("standard") == 200 and maker_speed_bump_ms("premium") == 0

"""B's IOC price chase and hedge decisions (pure functions)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from hedge_strategy import chase
from hedge_strategy.bus import HedgeRequest
from hedge_strategy.bus.client import Delivery
from hedge_strategy.exchange import EndReason, Side
from hedge_strategy.hedger import hedge_coid, net_requests

TICK = D("0.1")


def test_first_attempt_is_at_the_touch_then_widens_a_step_per_attempt() -> None:
    first = D("95000.0")  # 50 bp = 475.0 over 4 widenings: a step of 118.7 (whole ticks, rounded down)
    assert chase.chase_step(first, D(50), TICK, 5) == D("118.7")
    assert chase.attempt_price(Side.BUY, first, 1, first, D(50), TICK, 5) == D("95000.0")
    assert chase.attempt_price(Side.BUY, D("95001.0"), 3, first, D(50), TICK, 5) == D("95238.4")
    assert chase.attempt_price(Side.SELL, first, 1, first, D(50), TICK, 5) == D("95000.0")
    assert chase.attempt_price(Side.SELL, D("94999.0"), 4, first, D(50), TICK, 5) == D("94642.9")
    # the last attempt ends at the cap, less what rounding the step down to whole ticks left (4 x 0.05)
    assert chase.attempt_price(Side.BUY, first, 5, first, D(50), TICK, 5) == D("95474.8")


def test_the_step_is_at_least_one_tick() -> None:
    first = D("95000.0")  # 0.01 bp over 4 widenings is below a tick
    assert chase.chase_step(first, D("0.01"), TICK, 5) == TICK
    assert chase.chase_step(first, D(50), TICK, 1) == TICK
    assert chase.attempt_price(Side.BUY, D("95001.0"), 3, first, D("0.01"), TICK, 5) == D("95000.0")


def test_the_chase_never_goes_beyond_the_slippage_cap_from_the_first_touch() -> None:
    first = D("95000.0")  # 1 bp = 9.5: the cap is 95009.5 for a buy, 94990.5 for a sell
    assert chase.slippage_limit(Side.BUY, first, D(1), TICK) == D("95009.5")
    assert chase.slippage_limit(Side.SELL, first, D(1), TICK) == D("94990.5")
    assert chase.attempt_price(Side.BUY, D("95020.0"), 2, first, D(1), TICK, 5) == D("95009.5")
    assert chase.attempt_price(Side.SELL, D("94980.0"), 5, first, D(1), TICK, 5) == D("94990.5")
    # a cap off the tick grid is rounded inward, never past the limit
    assert chase.slippage_limit(Side.BUY, D("95000.3"), D("0.33"), TICK) == D("95003.4")
    assert chase.slippage_limit(Side.SELL, D("95000.3"), D("0.33"), TICK) == D("94997.2")
    with pytest.raises(ValueError):
        chase.attempt_price(Side.BUY, first, 0, first, D(1), TICK, 5)


def test_the_first_attempt_takes_the_recent_move_as_room_then_widens_from_there() -> None:
    first = D("95000.0")  # 50 bp = 475.0; 40 ticks of room leave 471.0 over 4 widenings: 117.7 each
    room = chase.first_attempt_room(first, 40, D(50), TICK)
    assert room == 40
    assert chase.chase_step(first, D(50), TICK, 5, room) == D("117.7")
    assert chase.attempt_price(Side.BUY, first, 1, first, D(50), TICK, 5, room) == D("95004.0")
    assert chase.attempt_price(Side.SELL, first, 1, first, D(50), TICK, 5, room) == D("94996.0")
    # attempt 3 re-reads the touch: touch + room + 2 steps
    assert chase.attempt_price(Side.BUY, D("95001.0"), 3, first, D(50), TICK, 5, room) == D("95240.4")
    assert chase.attempt_price(Side.SELL, D("94999.0"), 3, first, D(50), TICK, 5, room) == D("94759.6")
    # the last attempt still ends at the cap, less the rounding of the step (4 x 0.05)
    assert chase.attempt_price(Side.BUY, first, 5, first, D(50), TICK, 5, room) == D("95474.8")


def test_no_estimate_or_a_still_market_means_no_room() -> None:
    first = D("95000.0")
    assert chase.first_attempt_room(first, None, D(50), TICK) == 0
    assert chase.first_attempt_room(first, 0, D(50), TICK) == 0
    assert chase.attempt_price(Side.BUY, first, 1, first, D(50), TICK, 5,
                               chase.first_attempt_room(first, None, D(50), TICK)) == first


def test_the_room_never_takes_more_than_half_the_slippage_budget() -> None:
    first = D("95000.0")  # 1 bp = 9.5 = 95 ticks: at most 47 ticks of room
    assert chase.first_attempt_room(first, 500, D(1), TICK) == 47
    assert chase.attempt_price(Side.BUY, first, 1, first, D(1), TICK, 5, 47) == D("95004.7")
    assert chase.attempt_price(Side.SELL, first, 1, first, D(1), TICK, 5, 47) == D("94995.3")
    # the later attempts keep the cap from the first touch, whatever the room
    assert chase.attempt_price(Side.BUY, D("95008.0"), 2, first, D(1), TICK, 5, 47) == D("95009.5")
    assert chase.attempt_price(Side.SELL, D("94992.0"), 2, first, D(1), TICK, 5, 47) == D("94990.5")


def test_a_resumed_chase_counts_its_cap_from_a_touch_no_better_than_the_real_one() -> None:
    first = D("95000.0")
    for moved in (0, 40, 500):  # whatever room attempt 1 had
        for side in (Side.BUY, Side.SELL):
            room = chase.first_attempt_room(first, moved, D(50), TICK)
            first_limit = chase.attempt_price(side, first, 1, first, D(50), TICK, 5, room)
            anchor = chase.resumed_first_touch(side, first_limit, D(50), TICK)
            cap = chase.slippage_limit(side, anchor, D(50), TICK)
            real_cap = chase.slippage_limit(side, first, D(50), TICK)
            if side is Side.BUY:
                assert anchor <= first and first_limit < cap <= real_cap
            else:
                assert anchor >= first and real_cap <= cap < first_limit


def test_touch_is_the_ask_for_a_buy_and_the_bid_for_a_sell() -> None:
    assert chase.touch_price(Side.BUY, D("1"), D("2")) == D("2")
    assert chase.touch_price(Side.SELL, D("1"), D("2")) == D("1")
    assert chase.touch_price(Side.SELL, None, D("2")) is None


def test_only_an_end_another_attempt_would_repeat_stops_the_chase() -> None:
    assert chase.end_repeats(EndReason.MARGIN)
    for reason in (EndReason.CANCELED_BY_US, EndReason.TOO_MUCH_SLIPPAGE, EndReason.NOT_ENOUGH_LIQUIDITY,
                   EndReason.OTHER, None):
        assert not chase.end_repeats(reason)


def test_reduce_only_only_when_the_hedge_shrinks_the_position_without_flipping_it() -> None:
    assert chase.is_reduce_only(Side.BUY, D("-0.0004"), D("0.0002"))
    assert chase.is_reduce_only(Side.BUY, D("-0.0002"), D("0.0002"))
    assert not chase.is_reduce_only(Side.BUY, D("-0.0002"), D("0.0004"))  # would flip
    assert not chase.is_reduce_only(Side.BUY, D("0"), D("0.0002"))
    assert chase.is_reduce_only(Side.SELL, D("0.0002"), D("0.0002"))
    assert not chase.is_reduce_only(Side.SELL, D("-0.0002"), D("0.0002"))


def test_average_price_is_size_weighted() -> None:
    assert chase.average_price([(D("0.0002"), D("100")), (D("0.0006"), D("200"))]) == D("175")
    assert chase.average_price([]) is None


def request(coid: int, trade: int, a_side: str, market_id: int = 1) -> HedgeRequest:
    return HedgeRequest.for_fills(pair="p", market="BTC", market_id=market_id, a_fill_side=a_side,
                                  size=D("0.0002"), a_client_order_index=coid, trade_ids=[trade],
                                  a_fill_price=D("95000"), fill_ts_ms=1)


def test_requests_waiting_together_net_by_market_and_side_each_id_once() -> None:
    r1, r2, r3 = request(11, 1, "buy"), request(11, 2, "buy"), request(12, 3, "sell")
    r4 = request(13, 4, "buy", market_id=0)
    deliveries = [Delivery(f"{i}-0", r, False) for i, r in enumerate([r1, r2, r1, r3, r4])]
    groups = net_requests(deliveries)
    assert [[r.request_id for r in reqs] for reqs, _ in groups] == [
        [r1.request_id, r2.request_id], [r3.request_id], [r4.request_id]]
    assert [len(ds) for _, ds in groups] == [3, 1, 1]  # the duplicate delivery is acknowledged with its group


def test_hedge_client_order_indexes_are_deterministic_per_request_and_attempt() -> None:
    assert hedge_coid("11-1", 1) == hedge_coid("11-1", 1)
    assert hedge_coid("11-1", 1) != hedge_coid("11-1", 2) != hedge_coid("11-2", 1)
    assert str(hedge_coid("11-1", 1)).startswith("22")  # role B, purpose hedge

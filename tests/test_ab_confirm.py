"""A's judgement when B does not answer: the exchange decides after the confirmation timeout (carry on when
the hedge is there, pause when it is not), `on_imbalance: pause`, and no order while B's heartbeat is absent.

B's part is played by hand here (its heartbeat kept by the test, its hedge sent through the real adapter on
B's account), so that what A sees on the exchange and what it hears on the bus can differ.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory

CONFIRM_S = 3


async def test_hedge_on_the_exchange_but_no_outcome_a_carries_on(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S)
    async with ab.b_heartbeat_without_b(), ab.account_by_hand("b") as b_account:
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
        await ab.take_by_hand(b_account, "sell", "0.0002")  # B's hedge, whose outcome never reaches A

        (unconfirmed,) = await ab.events.wait("a", "hedge_unconfirmed")
        assert unconfirmed.request_ids == published.request_ids
        assert unconfirmed.waited_s is not None and unconfirmed.waited_s >= CONFIRM_S
        assert (unconfirmed.a_position, unconfirmed.b_position) == (Decimal("0.0002"), Decimal("-0.0002"))
        await ab.events.wait("a", "order_placed", side="sell")  # trades on: closes its long
    assert await ab.bus.get_pause() is None
    assert not ab.events.matching("a", "pause_set")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # only the hand-made hedge


async def test_no_hedge_within_the_timeout_pauses_a_naming_a_and_b(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S)
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
        (request_id,) = published.request_ids

        (paused,) = await ab.events.wait("a", "pause_set")
        assert paused.reason is not None
        assert paused.reason.startswith("hedge not confirmed after ")  # then the seconds A waited
        assert f" s for {request_id} and A 0.0002" in paused.reason and paused.reason.endswith(" is not flat")
        pause = await ab.bus.get_pause()
        assert pause is not None and pause.by == "A" and pause.reason == paused.reason
        assert "A 0.0002" in pause.reason and "+ B 0 =" in pause.reason
        await ab.events.wait("a", "paused", by="A")  # the next cycle honours it
    assert await ab.open_orders(A_ACCOUNT) == []
    assert len(await ab.create_orders(A_ACCOUNT)) == 1


async def test_on_imbalance_pause_pauses_with_the_reason_and_places_nothing(ab_factory: ABFactory) -> None:
    ab = await ab_factory(on_imbalance="pause")
    async with ab.account_by_hand("b") as b_account:  # B's account traded by someone else
        await ab.take_by_hand(b_account, "sell", "0.0002")
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        (paused,) = await ab.events.wait("a", "pause_set")
        pause = await ab.bus.get_pause()
        assert pause is not None and pause.reason == paused.reason
        assert pause.reason.startswith("not flat: A 0 + B -0.0002") and " on BTC" in pause.reason
        await ab.events.wait("a", "paused", by="A")
    assert await ab.create_orders(A_ACCOUNT) == []  # not one order while not flat
    assert await ab.bus.pending_count() == 0  # and no residual request: the config says pause


async def test_b_heartbeat_absent_a_places_nothing_and_says_so_once(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_a()
    await ab.events.wait("a", "heartbeat_absent", peer="b")
    with pytest.raises(TimeoutError):  # A looks again every 0.5 s: no second event for the same absence
        await ab.events.wait("a", "heartbeat_absent", count=2, timeout_s=2.0)
    assert await ab.create_orders(A_ACCOUNT) == []

    async with ab.b_heartbeat_without_b():
        await ab.events.wait("a", "heartbeat_back", peer="b")
        await ab.events.wait("a", "order_placed", side="buy")
    assert len(ab.events.matching("a", "heartbeat_absent")) == 1

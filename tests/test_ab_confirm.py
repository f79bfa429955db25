"""A's judgement when B does not answer: the exchange decides after the confirmation timeout (carry on when
the hedge is there; when it is not, the request is withdrawn, never waited for again, and the residual is
hedged or the pause says what to do), `on_imbalance: pause`, and no order while B's heartbeat is absent.

B's part is played by hand here (its heartbeat kept by the test, its hedge sent through the real adapter on
B's account), so that what A sees on the exchange and what it hears on the bus can differ.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, ABFactory

CONFIRM_S = 3
FEED_AFTER_S = 1  # below half of CONFIRM_S (config rule); Redis answers here, so the feed hedges nothing


async def test_hedge_on_the_exchange_but_no_outcome_a_carries_on(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S, hedge_from_trade_feed_after_s=FEED_AFTER_S)
    async with ab.b_heartbeat_without_b(), ab.account_by_hand("b") as b_account:
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
        await ab.take_by_hand(b_account, "sell", "0.0002")  # B's hedge, whose outcome never reaches A

        (unconfirmed,) = await ab.events.wait("a", "hedge_unconfirmed")
        assert unconfirmed.request_ids == published.request_ids
        # Judged because no outcome came (the wait's timeout itself is tested on a fake clock in test_bus.py).
        assert unconfirmed.waited_s is not None and not ab.events.matching("a", "hedge_outcome_received")
        assert (unconfirmed.a_position, unconfirmed.b_position) == (Decimal("0.0002"), Decimal("-0.0002"))
        await ab.events.wait("a", "order_placed", side="sell")  # trades on: closes its long
    assert await ab.bus.get_pause() is None
    assert not ab.events.matching("a", "pause_set")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # only the hand-made hedge


async def fill_with_b_gone(ab: AB) -> str:
    """A fills while B's heartbeat is kept by the test, which then ends it: B is gone when the confirmation
    timeout comes. Returns the fill's request id."""
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
    (request_id,) = published.request_ids
    return request_id


async def test_unconfirmed_hedge_is_withdrawn_and_the_pause_says_what_to_do(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S, hedge_from_trade_feed_after_s=FEED_AFTER_S,
                          on_imbalance="pause")
    request_id = await fill_with_b_gone(ab)

    (withdrawn,) = await ab.events.wait("a", "hedge_withdrawn", request_ids=(request_id,))
    assert withdrawn.reason == "pause" and withdrawn.waited_s is not None
    assert not ab.events.matching("a", "hedge_outcome_received")  # judged because no outcome came
    assert (withdrawn.a_position, withdrawn.b_position) == (Decimal("0.0002"), Decimal(0))
    (paused,) = await ab.events.wait("a", "pause_set")
    assert paused.reason is not None and paused.reason.endswith(
        f"on BTC is not flat; {request_id} withdrawn (B will not hedge it) (on_imbalance: pause)")
    # The operator reads what to do: the size and side to trade by hand.
    await ab.logs.wait(r"^A PAUSED: .*Operator: make A \+ B flat by hand \(B to sell 0\.0002\d* BTC, or A's "
                       r"position closed\)")
    stored = await ab.bus.get_outcome(request_id)  # answered in B's place: never hedged by a B
    assert stored is not None and not stored.filled and (stored.reason or "").startswith("withdrawn by A")

    await ab.start_b()  # a B started now finds the request answered: it never hedges it
    await ab.events.wait("b", "request_already_answered", request_ids=(request_id,), state="failed")
    await ab.bus.clear_pause()  # what `hedgectl resume` does
    await ab.events.wait("a", "resumed")
    (again,) = await ab.events.wait("a", "pause_set", where=lambda e: e.reason != paused.reason)
    assert (again.reason or "").startswith("not flat: A 0.0002")  # as configured; the request is not waited
    assert len(ab.events.matching("a", "hedge_withdrawn")) == 1  # for again
    assert await ab.create_orders(B_ACCOUNT) == []
    assert len(await ab.create_orders(A_ACCOUNT)) == 1


async def test_unconfirmed_hedge_is_withdrawn_and_the_residual_hedged_when_b_is_back(
    ab_factory: ABFactory,
) -> None:
    # on_imbalance: hedge
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S, hedge_from_trade_feed_after_s=FEED_AFTER_S)
    request_id = await fill_with_b_gone(ab)

    (withdrawn,) = await ab.events.wait("a", "hedge_withdrawn", request_ids=(request_id,))
    assert withdrawn.reason == "residual"
    await ab.start_b()
    await ab.events.wait("b", "request_already_answered", request_ids=(request_id,), state="failed")
    (residual,) = await ab.events.wait("a", "hedge_request_published", reason="residual")
    assert (residual.side, residual.size) == ("sell", Decimal("0.0002"))
    assert (residual.a_position, residual.b_position) == (Decimal("0.0002"), Decimal(0))
    await ab.events.wait("a", "hedge_outcome_received", request_ids=residual.request_ids, state="filled")
    await ab.events.wait("a", "order_placed", side="sell")  # flat again: A closes its long
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # the fill hedged once, as the residual
    assert not ab.events.matching("a", "pause_set")


async def test_b_that_beats_but_never_answers_pauses_a_naming_a_and_b(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S, hedge_from_trade_feed_after_s=FEED_AFTER_S)
    async with ab.b_heartbeat_without_b():  # a B that beats but neither hedges nor honours a hold
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
        (request_id,) = published.request_ids

        (paused,) = await ab.events.wait("a", "pause_set")
        assert paused.reason is not None
        assert paused.reason.startswith("hedge not confirmed after ")  # then the seconds A waited
        assert f" s for {request_id} and A 0.0002" in paused.reason
        assert paused.reason.endswith(f"is not flat; B is still not yet held after {CONFIRM_S} s")
        pause = await ab.bus.get_pause()
        assert pause is not None and pause.by == "A" and pause.reason == paused.reason
        await ab.events.wait("a", "paused", by="A")  # the next cycle honours it
        assert await ab.bus.hedger_hold() is None  # A's hold, which B never honoured, is lifted
    assert not ab.events.matching("a", "hedge_withdrawn")  # B might still hedge it: not withdrawn
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

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


async def test_hedge_on_the_exchange_but_no_outcome_a_carries_on(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S)
    async with ab.b_heartbeat_without_b(), ab.account_by_hand("b") as b_account:
        await ab.start_a()
        await ab.logs.wait(r"^A placed post-only buy")
        await ab.fill_a("sell")
        await ab.logs.wait(r"^A fill .*hedge request \S+ published")
        await ab.take_by_hand(b_account, "sell", "0.0002")  # B's hedge, whose outcome never reaches A

        await ab.logs.wait(rf"^A: hedge not confirmed after {CONFIRM_S} s for .* but A \+ B is flat "
                           r"\(A 0\.0002\d*, B -0\.0002\d*\): carrying on")
        await ab.logs.wait(r"^A placed post-only sell")  # trades on: closes its long
    assert await ab.bus.get_pause() is None
    assert not ab.logs.matching(r"^A PAUSED")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # only the hand-made hedge


async def fill_with_b_gone(ab: AB) -> str:
    """A fills while B's heartbeat is kept by the test, which then ends it: B is gone when the confirmation
    timeout comes. Returns the fill's request id."""
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        await ab.logs.wait(r"^A placed post-only buy")
        await ab.fill_a("sell")
        (request_line,) = await ab.logs.wait(r"^A fill .*hedge request \S+ published")
    return request_line.split("hedge request ")[1].split()[0]


async def test_unconfirmed_hedge_is_withdrawn_and_the_pause_says_what_to_do(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S, on_imbalance="pause")
    request_id = await fill_with_b_gone(ab)

    await ab.logs.wait(rf"^A PAUSED: hedge not confirmed after {CONFIRM_S} s for {request_id} and "
                       r"A 0\.0002\d* \+ B 0 = 0\.0002\d* on BTC is not flat; "
                       rf"{request_id} withdrawn \(B will not hedge it\) \(on_imbalance: pause\)\. "
                       r"No new orders\. Operator: make A \+ B flat by hand \(B to sell 0\.0002\d* BTC")
    pause = await ab.bus.get_pause()
    assert pause is not None and pause.by == "A" and f"{request_id} withdrawn" in pause.reason
    withdrawn = await ab.bus.get_outcome(request_id)
    assert withdrawn is not None and not withdrawn.filled
    assert (withdrawn.reason or "").startswith("withdrawn by A")

    await ab.start_b()  # a B started now finds the request answered: it never hedges it
    await ab.logs.wait(rf"^B: request {request_id} already answered \(failed\)")
    await ab.bus.clear_pause()  # what `hedgectl resume` does
    await ab.logs.wait(r"^A resumed")
    await ab.logs.wait(r"^A PAUSED: not flat: A 0\.0002\d* \+ B 0 = 0\.0002\d* on BTC")  # as configured
    assert len(ab.logs.matching(r"^A PAUSED: hedge not confirmed")) == 1  # never waited for again
    assert await ab.create_orders(B_ACCOUNT) == []
    assert len(await ab.create_orders(A_ACCOUNT)) == 1


async def test_unconfirmed_hedge_is_withdrawn_and_the_residual_hedged_when_b_is_back(
    ab_factory: ABFactory,
) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S)  # on_imbalance: hedge
    request_id = await fill_with_b_gone(ab)

    await ab.logs.wait(rf"^A: hedge not confirmed after {CONFIRM_S} s for {request_id} and "
                       r"A 0\.0002\d* \+ B 0 = 0\.0002\d* on BTC is not flat; "
                       rf"{request_id} withdrawn \(B will not hedge it\): the next cycle hedges the residual")
    await ab.start_b()
    await ab.logs.wait(rf"^B: request {request_id} already answered \(failed\)")
    await ab.logs.wait(r"^A: B hedged \S+-residual: sell 0\.0002")
    await ab.logs.wait(r"^A placed post-only sell")  # flat again: A closes its long
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # the fill hedged once, as the residual
    assert await ab.bus.get_pause() is None


async def test_b_that_beats_but_never_answers_pauses_a_naming_a_and_b(ab_factory: ABFactory) -> None:
    ab = await ab_factory(hedge_confirm_timeout_s=CONFIRM_S)
    async with ab.b_heartbeat_without_b():  # a B that beats but neither hedges nor honours a hold
        await ab.start_a()
        await ab.logs.wait(r"^A placed post-only buy")
        await ab.fill_a("sell")
        (request_line,) = await ab.logs.wait(r"^A fill .*hedge request \S+ published")
        request_id = request_line.split("hedge request ")[1].split()[0]

        await ab.logs.wait(rf"^A PAUSED: hedge not confirmed after {CONFIRM_S} s for {request_id} and "
                           r"A 0\.0002\d* \+ B 0 = 0\.0002\d* is not flat; B is still not yet held after "
                           rf"{CONFIRM_S} s")
        pause = await ab.bus.get_pause()
        assert pause is not None and pause.by == "A"
        assert "A 0.0002" in pause.reason and "+ B 0 =" in pause.reason
        await ab.logs.wait(r"^A paused since")  # the next cycle honours it
        assert await ab.bus.hedger_hold() is None  # A's hold, which B never honoured, is lifted
    assert await ab.open_orders(A_ACCOUNT) == []
    assert len(await ab.create_orders(A_ACCOUNT)) == 1


async def test_on_imbalance_pause_pauses_with_the_reason_and_places_nothing(ab_factory: ABFactory) -> None:
    ab = await ab_factory(on_imbalance="pause")
    async with ab.account_by_hand("b") as b_account:  # B's account traded by someone else
        await ab.take_by_hand(b_account, "sell", "0.0002")
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        await ab.logs.wait(r"^A PAUSED: not flat: A 0 \+ B -0\.0002\d* = -0\.0002\d* on BTC")
        pause = await ab.bus.get_pause()
        assert pause is not None and "not flat" in pause.reason and "B -0.0002" in pause.reason
        await ab.logs.wait(r"^A paused since")
    assert await ab.create_orders(A_ACCOUNT) == []  # not one order while not flat
    assert await ab.bus.pending_count() == 0  # and no residual request: the config says pause


async def test_b_heartbeat_absent_a_places_nothing_and_says_so_once(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_a()
    await ab.logs.wait(r"^A: B's heartbeat is absent: no new orders")
    with pytest.raises(TimeoutError):  # A looks again every 0.5 s: no second line for the same absence
        await ab.logs.wait(r"^A: B's heartbeat is absent", count=2, timeout_s=2.0)
    assert await ab.create_orders(A_ACCOUNT) == []

    async with ab.b_heartbeat_without_b():
        await ab.logs.wait(r"^A: B's heartbeat is back")
        await ab.logs.wait(r"^A placed post-only buy")
    assert len(ab.logs.matching(r"^A: B's heartbeat is absent")) == 1

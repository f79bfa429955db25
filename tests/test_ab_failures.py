"""What goes wrong: B's orders refused (A pauses with the reason, resume continues), a malformed message."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest, now_ms
from hedge_strategy.exchange import Purpose, Role, make_coid
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, BTC, LADDER_SIZE, ABFactory


async def test_refused_hedge_pauses_a_with_the_reason_and_resume_continues(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.sim.faults(reject_next_sendtx=1, code=21130, message="not enough margin",
                        account_index=B_ACCOUNT)
    await ab.fill_a("sell")

    (failed,) = await ab.events.wait("a", "hedge_outcome_received", state="failed")
    assert failed.reason is not None and "21130" in failed.reason
    (paused,) = await ab.events.wait("a", "pause_set")
    assert paused.reason is not None and paused.reason.startswith("B hedge failed")
    assert "21130" in paused.reason
    pause = await ab.bus.get_pause()
    assert pause is not None and pause.by == "A" and pause.reason == paused.reason
    await ab.events.wait("a", "paused", by="A")  # the next cycle honours it: nothing placed
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == 0
    assert await ab.open_orders(A_ACCOUNT) == []
    assert len(await ab.create_orders(A_ACCOUNT)) == 1

    await ab.bus.clear_pause()  # what `hedgectl resume` does
    await ab.events.wait("a", "resumed")
    (residual,) = await ab.events.wait("a", "hedge_request_published", reason="residual")
    assert (residual.a_position, residual.b_position) == (Decimal("0.0002"), Decimal(0))
    assert (residual.side, residual.size) == ("sell", Decimal("0.0002"))
    await ab.events.wait("a", "hedge_outcome_received", state="filled", request_ids=residual.request_ids)
    await ab.events.wait("a", "order_placed", side="sell")  # trading continues: A closes its long
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")


async def test_malformed_bus_message_goes_to_dead_letters_and_b_keeps_hedging(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.bus.redis.xadd(ab.bus.keys.requests, {"data": '{"v": 1, "type": "hedge_request", "size": "x"}'})
    coid = make_coid(Role.A, Purpose.REBALANCE, 1)
    request = HedgeRequest.for_residual(pair=ab.config.pair, market="BTC", market_id=BTC, side="sell",
                                        size=Decimal("0.0002"), a_client_order_index=coid,
                                        seen_ts_ms=now_ms())
    await ab.bus.publish_request(request)
    outcomes = await ab.bus.wait_outcomes([request.request_id], timeout_s=15)
    # B reads the stream in order: the malformed entry before it was moved aside before this was hedged.
    letters = await ab.bus.dead_letters()
    assert len(letters) == 1 and "missing field" in letters[0].reason
    assert outcomes[request.request_id].filled
    assert outcomes[request.request_id].filled_size == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert await ab.bus.pending_count() == 0


async def test_a_hedge_failing_while_the_order_rests_cancels_it_at_once_then_a_pauses(
        ab_factory: ABFactory) -> None:
    ab = await ab_factory(quantity="0.0004")
    await ab.start_b(retry_times=1)  # B gives up after one attempt
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0004"))
    # A cancels a partly filled order's remainder at once (no wash trades); the sequencer refuses it here, so
    # it rests on at the touch until A cancels again (RECANCEL_AFTER_S later; a refusal at sendTx would be
    # re-sent at once). B's hedge cannot sell there without trading with A: its one attempt is not sent, it
    # fails.
    await ab.sim.faults(sequencer_reject_next={"count": 1, "account_index": A_ACCOUNT})
    await ab.fill_a("sell", a_part="0.0002")
    await ab.events.wait("a", "cancel_sent", coid=placed.coid, where=lambda e: "partly" in (e.reason or ""))

    (failed,) = await ab.events.wait("a", "hedge_outcome_received", state="failed")
    (cancel,) = await ab.events.wait("a", "cancel_sent", coid=placed.coid,
                                     where=lambda e: "failed: A pauses" in (e.reason or ""))
    assert cancel.reason == f"B's hedge of {failed.request_ids[0]} failed: A pauses"
    assert cancel.state == "accepted"
    await ab.events.wait("a", "order_ended", coid=placed.coid, state="canceled")
    (paused,) = await ab.events.wait("a", "pause_set")
    assert paused.reason is not None
    assert paused.reason.startswith(f"B hedge failed for {failed.request_ids[0]}")
    # Cancelled when B's outcome came, before A recorded it and paused.
    assert ab.events.index(cancel) < ab.events.index(failed) < ab.events.index(paused)

    # The simulator's records: the order is gone with half of it filled, and it fills no further.
    assert await ab.open_orders(A_ACCOUNT) == []
    taken = await ab.sim.trade(BTC, "sell", str(LADDER_SIZE + Decimal("0.0004")), price=str(placed.price))
    assert all(A_ACCOUNT not in (t["bid_account_id"], t["ask_account_id"]) for t in taken), taken
    ours = [t for t in await ab.trades() if A_ACCOUNT in (t["bid_account_id"], t["ask_account_id"])]
    assert [Decimal(t["size"]) for t in ours] == [Decimal("0.0002")]
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    await ab.events.wait("a", "paused", by="A")  # and A places nothing new
    assert len(await ab.create_orders(A_ACCOUNT)) == 1
    pause = await ab.bus.get_pause()
    assert pause is not None and pause.by == "A" and pause.reason == paused.reason

"""What goes wrong: B's orders refused (A pauses with the reason, resume continues), a malformed message."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest, now_ms
from hedge_strategy.exchange import Purpose, Role, make_coid
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, BTC, ABFactory


async def test_refused_hedge_pauses_a_with_the_reason_and_resume_continues(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy")
    await ab.sim.faults(reject_next_sendtx=1, code=21130, message="not enough margin",
                        account_index=B_ACCOUNT)
    await ab.fill_a("sell")

    await ab.logs.wait(r"^A PAUSED: B hedge failed .*21130")
    pause = await ab.bus.get_pause()
    assert pause is not None and pause.by == "A" and "21130" in pause.reason
    await ab.logs.wait(r"^A paused since")  # the next cycle honours it: nothing placed
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == 0
    assert await ab.open_orders(A_ACCOUNT) == []
    assert len(await ab.create_orders(A_ACCOUNT)) == 1

    await ab.bus.clear_pause()  # what `hedgectl resume` does
    await ab.logs.wait(r"^A resumed")
    await ab.logs.wait(r"^A: A 0\.0002\d* \+ B 0 = .*residual hedge request")
    await ab.logs.wait(r"^A: B hedged .*-residual")
    await ab.logs.wait(r"^A placed post-only sell")  # trading continues: A closes its long
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")


async def test_malformed_bus_message_goes_to_dead_letters_and_b_keeps_hedging(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.logs.wait(r"^B ready")
    await ab.bus.redis.xadd(ab.bus.keys.requests, {"data": '{"v": 1, "type": "hedge_request", "size": "x"}'})
    await ab.logs.wait(r"malformed request entry")
    letters = await ab.bus.dead_letters()
    assert len(letters) == 1 and "missing field" in letters[0].reason

    coid = make_coid(Role.A, Purpose.REBALANCE, 1)
    request = HedgeRequest.for_residual(pair=ab.config.pair, market="BTC", market_id=BTC, side="sell",
                                        size=Decimal("0.0002"), a_client_order_index=coid,
                                        seen_ts_ms=now_ms())
    await ab.bus.publish_request(request)
    outcomes = await ab.bus.wait_outcomes([request.request_id], timeout_s=15)
    assert outcomes[request.request_id].filled
    assert outcomes[request.request_id].filled_size == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert await ab.bus.pending_count() == 0

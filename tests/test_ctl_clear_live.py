"""`hedgectl clear` with A and B running (issue 5): B is held while clear closes, every hedge request still
waiting is superseded (answered failed, acknowledged), and nothing reopens after clear releases B.

Real Redis, the simulator and the real SDK; A and B run in-process (the same code as main_A.py/main_B.py),
clear runs as the real `hedgectl` process.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hedge_strategy.bus import FAILED, HedgeRequest, now_ms
from hedge_strategy.ops.clear_hedger import SUPERSEDED_REASON
from hedge_strategy.ops.status_pair import count_undelivered
from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, BTC, ABFactory
from tests.test_ctl_status_kit import run_hedgectl

WAIT_S = 20.0


async def test_clear_with_a_and_b_running_holds_b_and_nothing_reopens(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    await ab.events.wait("a", "order_placed", side="sell")  # A's next order rests
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.open_orders(A_ACCOUNT)) == 1

    run = await run_hedgectl("clear", "--json", "--retry-wait", "0.2", "--idle-timeout", "10", "--config",
                             str(ab.config_path))
    assert run.code == 0, run.err
    report = run.json()
    assert report["success"] is True and report["totalPositions"] == 2
    assert report["bIdle"].startswith("held and idle"), report["bIdle"]
    assert report["supersededRequests"] == 0
    for account in (A_ACCOUNT, B_ACCOUNT):
        assert await ab.position(account) == 0
        assert await ab.open_orders(account) == []
    # B said it was held (once), then released; A stays paused for the operator.
    (held,) = await ab.events.wait("b", "held", by="ctl")
    assert held.reason == "close-all in progress (hedgectl clear)"
    await ab.events.wait("b", "released", by="ctl")
    assert len(ab.events.matching("b", "held")) == 1
    assert await ab.bus.hedger_hold() is None
    pause = await ab.bus.get_pause()
    assert pause is not None and "hedgectl clear" in pause.reason

    b_orders = len(await ab.create_orders(B_ACCOUNT))
    assert b_orders == 2  # B's hedge and clear's close IOC
    # The market trades on; nothing of ours rests, so nothing fills and B has nothing to hedge.
    trades = await ab.sim.trade(BTC, "sell", "0.005")
    assert trades and all({t["bid_account_id"], t["ask_account_id"]}.isdisjoint({A_ACCOUNT, B_ACCOUNT})
                          for t in trades)
    await _next_b_heartbeat(ab)  # B went round its loop since the trade
    assert await ab.position(B_ACCOUNT) == 0 and await ab.position(A_ACCOUNT) == 0
    assert len(await ab.create_orders(B_ACCOUNT)) == b_orders  # no hedge (nor any order) of B since clear
    assert await ab.bus.pending_count() == 0 and await count_undelivered(ab.bus) == 0


async def test_waiting_requests_are_superseded_and_a_later_b_hedges_none(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    b = await ab.start_b()
    await ab.events.wait("b", "ready")
    # The test holds B, as clear would, then two requests wait: one a B that died read and never answered,
    # one nobody read.
    await ab.bus.hold_hedger("test hold", by="test")
    await ab.events.wait("b", "held", by="test", reason="test hold")
    read_by_dead_b, unread = _request(ab, 1), _request(ab, 2)
    await ab.bus.publish_request(read_by_dead_b)
    (delivery,) = await ab.bus.read_requests("b-dead", block_ms=None)
    assert delivery.request.request_id == read_by_dead_b.request_id
    await ab.bus.publish_request(unread)
    ids = [read_by_dead_b.request_id, unread.request_id]

    run = await run_hedgectl("clear", "--json", "--retry-wait", "0", "--idle-timeout", "10", "--config",
                             str(ab.config_path))
    assert run.code == 0, run.err
    report = run.json()
    assert report["supersededRequests"] == 2 and report["bIdle"].startswith("held and idle")
    outcomes = await ab.bus.get_outcomes(ids)
    assert set(outcomes) == set(ids)
    for outcome in outcomes.values():
        assert outcome.status == FAILED and outcome.reason == SUPERSEDED_REASON
        assert outcome.filled_size == 0 and outcome.attempts == 0
    assert await ab.bus.pending_count() == 0 and await count_undelivered(ab.bus) == 0
    await ab.events.wait("b", "released", by="ctl")
    assert await ab.bus.hedger_hold() is None

    # A B started afterwards finds nothing to hedge.
    assert await b.stop() == 0
    await ab.start_b()
    await ab.events.wait("b", "ready", count=2)
    await _next_b_heartbeat(ab)
    assert await ab.create_orders(B_ACCOUNT) == []
    assert await ab.position(B_ACCOUNT) == 0
    for kind in ("hedge_attempt", "hedge_done", "left_overs_claimed"):
        assert not ab.events.matching("b", kind), kind
    assert {o.reason for o in (await ab.bus.get_outcomes(ids)).values()} == {SUPERSEDED_REASON}


def _request(ab: AB, trade_id: int) -> HedgeRequest:
    return HedgeRequest.for_fills(
        pair=ab.config.pair, market="BTC", market_id=BTC, a_fill_side="buy", size=Decimal("0.0002"),
        a_client_order_index=11000000000900 + trade_id, trade_ids=[trade_id], a_fill_price=Decimal("95000.1"),
        fill_ts_ms=now_ms())


async def _next_b_heartbeat(ab: AB) -> None:
    """Wait (bounded) for a heartbeat B wrote after now: it went once more round its loop."""
    since = now_ms()
    async with asyncio.timeout(WAIT_S):
        while True:
            beat = await ab.bus.heartbeat("b")
            if beat is not None and beat["ts_ms"] > since and not beat["busy"]:
                return
            # B writes its heartbeat every ttl/3 and announces none: re-read at that cadence.
            await asyncio.sleep(0.1)

"""B's own guards: an alert when A's heartbeat goes, a request that raises answered as failed (not retried
forever), and a start-up reconciliation that must complete before anything trades."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hedge_strategy.bus import FAILED, HedgeRequest, now_ms
from hedge_strategy.exchange import Purpose, Role, make_coid
from hedge_strategy.hedger import Hedger
from hedge_strategy.observe import WEBHOOK_ENV
from hedge_strategy.runtime import open_runtime
from tests.fixtures.ab import B_ACCOUNT, BTC, ABFactory
from tests.fixtures.webhook import Receiver

ACTIVE_ORDERS_PATH = "/api/v1/accountActiveOrders"  # read by the reconciler's orders step only


@pytest.fixture
def webhook(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The local alert receiver; the environment's webhook would override the config's."""
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    return receiver


def residual(pair: str, sequence: int, size: str) -> HedgeRequest:
    coid = make_coid(Role.A, Purpose.REBALANCE, sequence)
    return HedgeRequest.for_residual(pair=pair, market="BTC", market_id=BTC, side="sell", size=Decimal(size),
                                     a_client_order_index=coid, seen_ts_ms=now_ms())


async def test_b_alerts_once_per_absence_of_a_heartbeat(ab_factory: ABFactory, webhook: Receiver) -> None:
    ab = await ab_factory()
    ab.alerts_to(webhook.url("/alerts"))  # no deduplication: each notify would be a POST
    async with ab.heartbeat_without("a"):
        b = await ab.start_b()
        await ab.events.wait("b", "ready")
    # The fake beat has stopped: the key lives out its TTL, as when A dies.
    lost = (await webhook.next()).body
    assert (lost["kind"], lost["role"], lost["severity"]) == ("heartbeat_lost", "b", "critical")
    assert "A's heartbeat is absent" in lost["message"]
    await ab.events.wait("b", "heartbeat_absent", peer="a")
    with pytest.raises(TimeoutError):  # B reads it every 0.5 s: still absent, but no second alert
        await webhook.next(timeout_s=2.0)

    async with ab.heartbeat_without("a"):
        await ab.events.wait("b", "heartbeat_back", peer="a")
    again = (await webhook.next()).body  # a new absence: a new alert
    assert (again["kind"], again["role"]) == ("heartbeat_lost", "b")
    assert await b.stop() == 0
    assert len(ab.events.matching("b", "heartbeat_absent", peer="a")) == 2
    assert webhook.drain() == []


async def test_a_clean_stop_of_a_raises_no_alert_in_b(ab_factory: ABFactory, webhook: Receiver) -> None:
    """An operator stopping A (SIGTERM: its heartbeat is ended on purpose) is not a lost heartbeat."""
    ab = await ab_factory()
    ab.alerts_to(webhook.url("/alerts"))
    b = await ab.start_b()
    a = await ab.start_a()
    await ab.events.wait("b", "heartbeat_seen", peer="a")  # B knew A was there before it went away
    assert await a.stop() == 0
    await ab.events.wait("b", "heartbeat_ended", peer="a")
    assert await b.stop() == 0
    assert [r.body for r in webhook.drain() if r.body["kind"] == "heartbeat_lost"] == []


async def test_a_request_that_raises_is_answered_failed_and_acknowledged(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    rt = await open_runtime(ab.config, "b", ab.events)  # B's runtime and hedger, driven one batch at a time
    try:
        hedger = Hedger(rt)
        await rt.bus.ensure_group()
        poisoned, fine = residual(ab.config.pair, 1, "0.0002"), residual(ab.config.pair, 2, "0.0002")
        await ab.bus.publish_request(poisoned)
        deliveries = await rt.bus.read_requests(hedger.consumer, count=10, block_ms=1000)
        assert [d.request.request_id for d in deliveries] == [poisoned.request_id]
        # A size no lot rounding can hold (decimal.InvalidOperation while B prepares the hedge). The wire
        # format bounds sizes today; the guard is for whatever still makes B's preparation raise.
        object.__setattr__(deliveries[0].request, "size", Decimal("1e30"))
        await hedger.handle(deliveries)  # answered, not raised (which would leave it pending forever)

        outcome = (await ab.bus.get_outcomes([poisoned.request_id]))[poisoned.request_id]
        assert outcome.status == FAILED and outcome.filled_size == 0
        assert outcome.reason is not None and "could not be prepared" in outcome.reason
        assert "InvalidOperation" in outcome.reason
        (done,) = ab.events.matching("b", "hedge_done", request_ids=(poisoned.request_id,))
        assert done.state == FAILED and done.reason == outcome.reason and done.attempt == 0
        assert await ab.bus.pending_count() == 0  # acknowledged: never claimed and retried
        assert await ab.create_orders(B_ACCOUNT) == []

        await ab.bus.publish_request(fine)  # the next request is hedged as usual
        await hedger.handle(await rt.bus.read_requests(hedger.consumer, count=10, block_ms=1000))
        assert (await ab.bus.get_outcomes([fine.request_id]))[fine.request_id].filled
        assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    finally:
        await rt.close()


async def test_a_size_no_order_can_carry_fails_at_once(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.events.wait("b", "ready")
    huge = residual(ab.config.pair, 1, "999999999999")  # valid on the wire; the signer refuses > 2^48-1 lots
    await ab.bus.publish_request(huge)
    outcome = (await ab.bus.wait_outcomes([huge.request_id], timeout_s=15))[huge.request_id]
    assert outcome.status == FAILED and outcome.attempts == 0  # not five refused attempts
    assert outcome.reason is not None and "above the largest an order can carry" in outcome.reason
    assert await ab.create_orders(B_ACCOUNT) == []
    assert await ab.bus.pending_count() == 0


async def test_b_trades_only_after_a_complete_start_up_reconciliation(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.sim.faults(http_error_next=2, status=500, paths=[ACTIVE_ORDERS_PATH])
    waiting = residual(ab.config.pair, 1, "0.0002")
    await ab.bus.publish_request(waiting)  # there before B: hedged only once reconciliation completed
    b = await ab.start_b()
    failed = await ab.events.wait("b", "reconcile_incomplete", count=2)
    assert [e.attempt for e in failed] == [1, 2]
    assert all(e.reason is not None and e.reason.startswith("orders") for e in failed)
    (done,) = await ab.events.wait("b", "reconciled")
    assert done.attempt == 3
    outcome = (await ab.bus.wait_outcomes([waiting.request_id], timeout_s=15))[waiting.request_id]
    assert outcome.filled

    completed_at = ab.events.index(done)
    after = ab.events.matching("b", "ready") + ab.events.matching("b", "hedge_attempt")
    assert len(after) >= 2 and all(ab.events.index(e) > completed_at for e in after)
    assert await b.stop() == 0


async def test_b_stopped_while_start_up_reconciliation_fails_exits_0(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.sim.faults(http_error_next=1000, status=500, paths=[ACTIVE_ORDERS_PATH])
    b = await ab.start_b()
    await ab.events.wait("b", "reconcile_incomplete", attempt=2)
    assert await ab.bus.heartbeat("b") is None  # nothing trades, and A sees no hedger
    assert await asyncio.wait_for(b.stop(), 10) == 0
    assert ab.events.matching("b", "stopping", reason="start-up reconciliation incomplete")
    assert ab.events.matching("b", "stopped", reason="before it was ready")
    assert not ab.events.matching("b", "ready") and not ab.events.matching("b", "reconciled")

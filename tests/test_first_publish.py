"""The fast path of an ordinary hedge request (`bus.first_publish`): what A marks, what B trusts, and that B
falls back to its Redis reads for everything else. Fake executor, fakeredis for B, the session's Redis for A
(`fixtures/fake_orders.py`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

import pytest

from hedge_strategy.bus import FILLED, Bus, BusMessageError, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.bus.client import DATA_FIELD
from hedge_strategy.bus.first_publish import EntryIds, window_s
from hedge_strategy.bus.messages import RestingSnapshot
from hedge_strategy.bus.resting import RestingOrder, publish_resting
from hedge_strategy.exchange import Side
from hedge_strategy.execution import Intent, OrderKind, OrderSpec
from hedge_strategy.hedger import Hedger, hedge_coid
from hedge_strategy.outstanding import OutstandingRequests
from tests.fixtures.fake_orders import BTC, UnitFactory, UnitKit, fill_resting
from tests.test_hedger_unit import SIZE, a_bought
from tests.test_maker_unit import WAIT_S, maker_fill

NONE_RESTING = RestingSnapshot()


def marked(request: HedgeRequest, resting: RestingSnapshot | None = NONE_RESTING,
           age_ms: int = 0) -> HedgeRequest:
    """`request` as A's outbox publishes it the first time (published `age_ms` ago)."""
    return replace(request, first_publish=True, a_resting=resting, publish_ts_ms=now_ms() - age_ms)


def spy_outcome_checks(bus: Bus) -> list[list[str]]:
    """Every stored-outcome check B makes, by the request ids it asks about."""
    asked: list[list[str]] = []
    real = bus.get_outcomes

    async def get_outcomes(request_ids: Iterable[str]) -> dict[str, HedgeOutcome]:
        ids = list(request_ids)
        if ids:
            asked.append(ids)
        return await real(ids)

    bus.get_outcomes = get_outcomes  # type: ignore[method-assign]
    return asked


async def b_handles(kit: UnitKit, hedger: Hedger, *requests: HedgeRequest) -> None:
    await kit.bus.ensure_group()
    for request in requests:
        await kit.peer.publish_request(request)
    await hedger.handle(await kit.bus.read_requests(hedger.consumer, count=10, block_ms=None))


def answered(kit: UnitKit, request: HedgeRequest) -> HedgeOutcome:
    return HedgeOutcome(
        pair=kit.config.pair, request_ids=(request.request_id,), status=FILLED, market="BTC", side="sell",
        requested_size=SIZE, filled_size=SIZE, avg_price=Decimal("94999"), attempts=1, reason=None,
        hedge_client_order_indexes=(hedge_coid(request.request_id, 1),), received_ts_ms=now_ms(),
        sent_ts_ms=now_ms(), filled_ts_ms=now_ms(), latency_ms=1.0)


# ------------------------------------------------------------------ B


async def test_a_marked_fresh_request_skips_both_redis_reads(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    kit.orders.account.move_ticks = 30
    kit.orders.ioc_fills = [SIZE]
    touch = kit.orders.account.bids[0]
    # The key names a bid of A's that would bound B's sell; A's request says none rested when it published.
    await publish_resting(kit.peer, RestingOrder(1, "buy", touch - 10 * BTC.tick, 2 * SIZE))
    asked = spy_outcome_checks(kit.bus)
    request = a_bought(kit, 101)
    await b_handles(kit, kit.hedger(), marked(request))

    assert asked == []
    assert kit.orders.sent[0].price == touch - 30 * BTC.tick  # the request's snapshot, not the key
    (outcome,) = (await kit.peer.get_outcomes([request.request_id])).values()
    assert outcome.status == FILLED and await kit.bus.pending_count() == 0


async def test_a_carried_order_bounds_the_first_attempt_as_the_key_would(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    kit.orders.account.move_ticks = 30
    kit.orders.ioc_fills = [SIZE]
    request = a_bought(kit, 102)
    touch = kit.orders.account.bids[0]
    # A's bid of two lots filled one (this request): its remainder may rest, even with the key gone.
    partly = RestingSnapshot(client_order_index=request.a_client_order_index, side="buy",
                             price=touch - 10 * BTC.tick, size=2 * SIZE)
    await b_handles(kit, kit.hedger(), marked(request, partly))
    assert kit.orders.sent[0].price == touch - 9 * BTC.tick


@pytest.mark.parametrize("why", ["unmarked", "old", "claimed", "journaled", "answered here"])
async def test_anything_but_a_marked_fresh_unknown_request_checks_its_stored_outcome(
        unit_factory: UnitFactory, why: str) -> None:
    kit = await unit_factory("b")
    hedger = kit.hedger()
    request = a_bought(kit, 103)
    await kit.peer.publish_outcome(answered(kit, request))  # answered already (by B, or withdrawn by A)
    publish = marked(request)
    if why == "unmarked":
        publish = request
    elif why == "old":  # older than the window: A may have given it up
        publish = marked(request, age_ms=int(window_s(60) * 1000) + 5000)
    elif why == "journaled":
        kit.orders.ioc_fills = [SIZE]
        coid = hedge_coid(request.request_id, 1)
        await kit.orders.submit(OrderSpec(coid, Intent.HEDGE, BTC, Side.SELL, SIZE, Decimal("94999.0"),
                                          OrderKind.IOC, request_id=request.request_id, attempt=1))
        await kit.orders.finish(coid, 1)
        kit.orders.sent.clear()
    elif why == "answered here":
        hedger._remember_answered([request.request_id])
    asked = spy_outcome_checks(kit.bus)
    await kit.bus.ensure_group()
    await kit.peer.publish_request(publish)
    if why == "claimed":  # a previous B read it and died: claimed from its pending list at start-up
        assert await kit.bus.read_requests("b-gone", count=10, block_ms=None)
        deliveries = await kit.bus.claim_stale(hedger.consumer, min_idle_ms=0)
    else:
        deliveries = await kit.bus.read_requests(hedger.consumer, count=10, block_ms=None)
    await hedger.handle(deliveries)

    assert asked == [[request.request_id]]
    assert kit.orders.sent == []  # only acknowledged
    assert await kit.bus.pending_count() == 0


async def test_netted_requests_carrying_different_orders_read_the_key(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    kit.orders.account.move_ticks = 30
    kit.orders.ioc_fills = [2 * SIZE]
    touch = kit.orders.account.bids[0]
    first, second = a_bought(kit, 104), a_bought(kit, 105)
    key = RestingOrder(7, "buy", touch - 20 * BTC.tick, 4 * SIZE)
    await publish_resting(kit.peer, key)
    one = RestingSnapshot(client_order_index=8, side="buy", price=touch - 10 * BTC.tick, size=4 * SIZE)
    other = replace(one, client_order_index=9)
    await b_handles(kit, kit.hedger(), marked(first, one), marked(second, other))
    assert kit.orders.sent[0].price == touch - 19 * BTC.tick  # the key's order, read from Redis


async def test_a_malformed_fast_path_field_is_ignored_and_the_request_checked(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    kit.orders.ioc_fills = [SIZE]
    request = a_bought(kit, 106)
    body = json.loads(marked(request).to_json())
    body["first_publish"] = "yes"
    body["a_resting"] = {"price": "-1"}
    await kit.bus.ensure_group()
    await kit.peer.redis.xadd(kit.peer.keys.requests, {DATA_FIELD: json.dumps(body)})
    asked = spy_outcome_checks(kit.bus)
    (delivery,) = await kit.bus.read_requests("b-1", count=10, block_ms=None)
    assert (delivery.request.first_publish, delivery.request.a_resting) == (False, None)
    assert delivery.request == replace(request, publish_ts_ms=body["publish_ts_ms"])
    assert await kit.bus.dead_letters() == []  # the hedge of a real fill is not dead-lettered for a hint

    await kit.hedger().handle([delivery])
    assert asked == [[request.request_id]]
    assert len(kit.orders.sent) == 1


def test_a_malformed_hint_is_logged_and_read_as_absent(log_lines: list[str]) -> None:
    request = a_bought_plain(107)
    raw = marked(request).to_json().replace('"first_publish":true', '"first_publish":1')
    # Both hints go: a snapshot is only trusted with the mark.
    assert HedgeRequest.from_json(raw) == replace(request, publish_ts_ms=json.loads(raw)["publish_ts_ms"])
    (line,) = [line for line in log_lines if "fast-path field(s) ignored" in line]
    assert line.startswith("WARNING") and "first_publish must be true or false, got 1" in line


def test_a_request_malformed_elsewhere_is_still_refused() -> None:
    raw = marked(a_bought_plain(108)).to_json().replace('"size":"0.0002"', '"size":"-1"')
    with pytest.raises(BusMessageError, match="size must be"):
        HedgeRequest.from_json(raw)


def a_bought_plain(trade_id: int) -> HedgeRequest:
    return HedgeRequest.for_fills(pair="p", market="BTC", market_id=BTC.market_id, a_fill_side="buy",
                                  size=SIZE, a_client_order_index=5, trade_ids=[trade_id],
                                  a_fill_price=Decimal("95000"), fill_ts_ms=now_ms())


# ------------------------------------------------------------------ the bus


@pytest.mark.parametrize("role", ["a", "b"])  # the session's redis-server, then fakeredis
async def test_a_retried_marked_append_is_refused_and_the_request_appended_unmarked(
        unit_factory: UnitFactory, role: str) -> None:
    kit = await unit_factory(role)
    request = marked(a_bought(kit, 111))
    same = EntryIds()
    kit.peer._entry_ids = same
    fixed = same.next()
    same.next = lambda: fixed  # type: ignore[method-assign]  # the client's retry sends the same append
    await kit.bus.ensure_group()
    first = await kit.peer.publish_request(request)
    again = await kit.peer.publish_request(request)
    assert first == fixed and again != fixed
    one, two = await kit.bus.read_requests("b-1", count=10, block_ms=None)
    assert (one.request.first_publish, two.request.first_publish) == (True, False)
    assert two.request.a_resting is None


def test_entry_ids_increase_within_one_millisecond() -> None:
    ids = EntryIds()
    made = [ids.next() for _ in range(50)]
    parsed = [tuple(int(p) for p in i.split("-")) for i in made]
    assert parsed == sorted(set(parsed))


# ------------------------------------------------------------------ A


async def test_a_marks_only_the_first_publish_of_a_fill_of_its_own_order(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a", quantity="0.0004")
    await kit.peer.beat("b", 60, {"pid": 0})
    kit.orders.hold_waits = True
    maker = kit.maker()
    maker.hedges.outbox.start()
    cycle = asyncio.create_task(maker.cycle())
    (placed,) = await kit.events.wait("a", "order_placed", timeout_s=WAIT_S)
    order = fill_resting(kit.orders, placed.coid, SIZE)
    await maker.on_fill(maker_fill(701, coid=placed.coid), order)  # its own order: marked
    await maker.on_fill(maker_fill(702), None)  # an order this process did not place: not marked
    await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S, count=2)

    await kit.peer.ensure_group()
    own, other = (d.request for d in await kit.peer.read_requests("test", count=10, block_ms=None))
    assert own.first_publish and not other.first_publish and other.a_resting is None
    assert own.a_resting == RestingSnapshot(client_order_index=placed.coid, side="buy", price=placed.price,
                                            size=2 * SIZE)
    assert not maker.outstanding[own.request_id].first_publish  # the journal keeps it unmarked
    for request in (own, other):
        await kit.peer.publish_outcome(replace(answered(kit, request), side=request.side))
    await asyncio.wait_for(cycle, WAIT_S)


async def test_only_the_first_attempt_within_the_window_is_marked(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")
    outstanding = OutstandingRequests(kit.orders.journal)
    own, late, reloaded = a_bought(kit, 121), a_bought(kit, 122), a_bought(kit, 123)
    outstanding.remember(own, first=True)
    assert outstanding.take_first(own.request_id, 1.0)
    assert not outstanding.take_first(own.request_id, 1.0)  # a second attempt: unmarked
    outstanding.remember(own, first=True)  # the same fill recorded again: never marked twice
    assert not outstanding.take_first(own.request_id, 1.0)
    outstanding.remember(late, first=True)
    assert not outstanding.take_first(late.request_id, 0.0)  # the outbox came to it too late
    outstanding.remember(reloaded, first=True)
    outstanding.publish_again([reloaded.request_id], "Redis lost it")
    assert not outstanding.take_first(reloaded.request_id, 1.0)

    after_restart = OutstandingRequests(kit.orders.journal)
    assert set(after_restart.load()) == {own.request_id, late.request_id, reloaded.request_id}
    assert not any(after_restart.take_first(r, 1.0) for r in after_restart.ids)


def test_the_window_is_at_most_a_quarter_of_the_confirm_timeout() -> None:
    assert window_s(60) == 1.0 and window_s(2) == 0.5


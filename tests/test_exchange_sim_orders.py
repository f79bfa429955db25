"""Integration: the adapter against the simulator with the real lighter-sdk (orders, reads, send outcomes)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from hedge_strategy.exchange import (
    EndReason,
    Fill,
    LighterAccount,
    OrderUpdate,
    Purpose,
    Role,
    SendStatus,
    Side,
    StreamUp,
    VenueState,
    make_coid,
)
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import Opener, events_until, next_event, open_account

__all__ = ["open_account"]  # the fixture, imported for pytest

D = Decimal
SIZE = D("0.0002")


def coid(n: int, role: Role = Role.A, purpose: Purpose = Purpose.MAKER) -> int:
    return make_coid(role, purpose, n)


async def test_start_loads_metadata_nonce_and_stream(sim: SimProcess, open_account: Opener) -> None:
    account, events = await open_account(sim)
    btc = account.market("BTC")
    assert (btc.market_id, btc.size_decimals, btc.price_decimals) == (1, 5, 1)
    assert btc.min_base_amount == D("0.0002") and btc.min_quote_amount == D("10")
    assert account.market_by_id(0).symbol == "ETH"
    assert await next_event(events, StreamUp) == StreamUp(101, reconnect=False)
    assert account.seconds_since_heard() < 2.0


async def test_post_only_open_then_forced_trade_gives_fill(sim: SimProcess, open_account: Opener) -> None:
    account, events = await open_account(sim)
    btc = account.market("BTC")
    result = await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))
    assert result.status is SendStatus.ACCEPTED and result.code == 200 and result.tx_hash

    opened = await next_event(events, OrderUpdate, lambda u: u.client_order_index == coid(1))
    assert (opened.state, opened.side, opened.price, opened.remaining_size) == (
        VenueState.LIVE, Side.BUY, D("94000.0"), SIZE)

    trades = await sim.trade(market_id=1, side="sell", size="0.0002")
    seen = await events_until(events, lambda seen: any(isinstance(e, Fill) for e in seen) and any(
        isinstance(e, OrderUpdate) and e.state is VenueState.FILLED for e in seen))
    (fill,) = [e for e in seen if isinstance(e, Fill)]
    assert fill.trade_id == trades[0]["trade_id"]
    assert fill.client_order_index == coid(1) and fill.order_index == opened.order_index
    assert (fill.side, fill.size, fill.price, fill.is_maker) == (Side.BUY, SIZE, D("94000.0"), True)
    (filled,) = [e for e in seen if isinstance(e, OrderUpdate) and e.state is VenueState.FILLED]
    assert filled.filled_size == SIZE and filled.remaining_size == 0

    positions = await account.positions()
    assert positions[1].size == SIZE and positions[1].avg_entry_price == D("94000.0")
    assert 0 not in positions  # flat markets are omitted
    assert await account.positions_of(101) == positions
    assert await account.positions_of(102) == {}  # the other account: flat


async def test_ioc_market_and_reduce_only(sim: SimProcess, open_account: Opener) -> None:
    taker, events = await open_account(sim, 101)
    maker, _ = await open_account(sim, 102, books=())
    btc = taker.market("BTC")
    assert (await maker.place_post_only(btc, Side.SELL, D("0.0006"), D("95000.0"), coid(1, Role.B))).accepted

    ioc = await taker.place_ioc(btc, Side.BUY, SIZE, D("95000.0"), coid(10, purpose=Purpose.HEDGE))
    assert ioc.accepted
    fill = await next_event(events, Fill, lambda f: f.client_order_index == coid(10, purpose=Purpose.HEDGE))
    assert (fill.side, fill.is_maker, fill.price) == (Side.BUY, False, D("95000.0"))
    assert fill.fee > 0  # premium taker fee

    market = await taker.place_market(btc, Side.BUY, SIZE, D("95100.0"), coid(11, purpose=Purpose.HEDGE))
    assert market.accepted
    await next_event(events, Fill, lambda f: f.client_order_index == coid(11, purpose=Purpose.HEDGE))

    missed_coid = coid(12, purpose=Purpose.HEDGE)
    assert (await taker.place_ioc(btc, Side.BUY, SIZE, D("94000.0"), missed_coid)).accepted
    ended = await next_event(events, OrderUpdate, lambda u: u.client_order_index == missed_coid)
    assert ended.end_reason is EndReason.CANCELED_BY_US and ended.filled_size == 0

    # Long 0.0004: a reduce-only sell of more is cut to the position, and leaves us flat.
    assert (await maker.place_post_only(btc, Side.BUY, D("0.001"), D("94500.0"), coid(2, Role.B))).accepted
    closing = coid(13, purpose=Purpose.CLOSE)
    result = await taker.place_ioc(btc, Side.SELL, D("0.001"), D("94500.0"), closing, reduce_only=True)
    assert result.accepted
    close_fill = await next_event(events, Fill, lambda f: f.client_order_index == closing)
    assert close_fill.size == D("0.0004")
    assert await taker.positions() == {}

    flat_close = coid(14, purpose=Purpose.CLOSE)
    result = await taker.place_market(btc, Side.SELL, SIZE, D("90000.0"), flat_close, reduce_only=True)
    assert result.accepted
    refused = await next_event(events, OrderUpdate, lambda u: u.client_order_index == flat_close)
    assert (refused.state, refused.end_reason) == (VenueState.CANCELED, EndReason.REDUCE_ONLY)


async def test_cancel_by_client_index_and_cancel_all(sim: SimProcess, open_account: Opener) -> None:
    account, events = await open_account(sim)
    btc, eth = account.market("BTC"), account.market("ETH")
    for n, price in ((1, "93000.0"), (2, "93100.0")):
        assert (await account.place_post_only(btc, Side.BUY, SIZE, D(price), coid(n))).accepted
    assert (await account.place_post_only(eth, Side.SELL, D("0.0050"), D("3100.00"), coid(3))).accepted
    assert {o.client_order_index for o in await account.open_orders()} == {coid(1), coid(2), coid(3)}
    assert {o.client_order_index for o in await account.open_orders(eth)} == {coid(3)}

    assert (await account.cancel(btc, coid(1))).accepted
    canceled = await next_event(events, OrderUpdate, lambda u: u.client_order_index == coid(1)
                                and u.end_reason is EndReason.CANCELED_BY_US)
    assert canceled.remaining_size == SIZE or canceled.remaining_size == 0
    assert {o.client_order_index for o in await account.open_orders(btc)} == {coid(2)}

    missing = await account.cancel(btc, coid(99))
    assert missing.status is SendStatus.REJECTED and missing.code == 21123

    assert (await account.cancel_all()).accepted
    assert await account.open_orders() == []
    found = await account.orders_by_client_index([coid(1), coid(2), coid(3)])
    assert {c: u.end_reason for c, u in found.items()} == {
        c: EndReason.CANCELED_BY_US for c in (coid(1), coid(2), coid(3))}


async def test_orders_by_client_index_chunks_and_omits_unknown(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")
    placed = [coid(n) for n in range(1, 24)]  # more than one accountOrders call (20 per call)
    for n, c in enumerate(placed):
        assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0") + n, c)).accepted
    found = await account.orders_by_client_index([*placed, coid(500)])
    assert set(found) == set(placed)
    assert all(u.state is VenueState.LIVE and u.account_index == 101 for u in found.values())


async def test_trades_since(sim: SimProcess, open_account: Opener) -> None:
    account, events = await open_account(sim, books=())
    btc = account.market("BTC")
    since_ms = int(time.time() * 1000) - 1
    assert (await account.place_post_only(btc, Side.BUY, D("0.0004"), D("94000.0"), coid(1))).accepted
    await next_event(events, OrderUpdate, lambda u: u.state is VenueState.LIVE)
    first = await sim.trade(market_id=1, side="sell", size="0.0002")
    second = await sim.trade(market_id=1, side="sell", size="0.0002")
    fills = await account.trades_since(since_ms)
    assert [f.trade_id for f in fills] == [first[0]["trade_id"], second[0]["trade_id"]]
    assert all(f.client_order_index == coid(1) and f.side is Side.BUY for f in fills)
    assert await account.trades_since(since_ms, account.market("ETH")) == []
    assert await account.trades_since(int(time.time() * 1000) + 60_000) == []


async def test_top_of_book_and_live_book_price_stream_and_rest(sim: SimProcess, open_account: Opener) -> None:
    maker, _ = await open_account(sim, 102, books=())
    btc = maker.market("BTC")
    for n, price in enumerate(("94000.0", "94000.5", "93999.0")):
        assert (await maker.place_post_only(btc, Side.BUY, SIZE, D(price), coid(n + 1, Role.B))).accepted
    assert (await maker.place_post_only(btc, Side.SELL, SIZE, D("95000.0"), coid(9, Role.B))).accepted
    assert (await maker.place_post_only(btc, Side.SELL, SIZE, D("95000.0"), coid(10, Role.B))).accepted

    watcher, events = await open_account(sim, 101, books=("BTC",))
    await next_event(events, StreamUp)
    for reader in (watcher, maker):  # watcher reads its live book, maker (no book stream) falls back to REST
        top = await reader.top_of_book(btc)
        assert (top.best_bid, top.best_ask) == (D("94000.5"), D("95000.0"))
    assert watcher.live_book_price(btc, Side.BUY, 1) == D("94000.5")
    assert watcher.live_book_price(btc, Side.BUY, 3) == D("93999.0")
    assert watcher.live_book_price(btc, Side.SELL, 2) is None  # two orders, one level
    assert watcher.live_book_price(btc, Side.BUY, 4) is None
    assert maker.live_book_price(btc, Side.BUY, 1) is None  # no book stream: no price at once, no REST read


async def test_orders_inside_their_speed_bump_are_not_found_yet(sim_factory: Any,
                                                                open_account: Opener) -> None:
    # Why callers need a grace period before treating "not found" as "never placed".
    sim = await sim_factory({"speed_bumps": {"enabled": True, "premium": {"taker_ms": 300}}})
    maker, _ = await open_account(sim, 102, books=())
    taker, events = await open_account(sim, 101, books=())
    btc = taker.market("BTC")
    assert (await maker.place_post_only(btc, Side.SELL, SIZE, D("95000.0"), coid(1, Role.B))).accepted
    hedge = coid(1, purpose=Purpose.HEDGE)
    assert (await taker.place_ioc(btc, Side.BUY, SIZE, D("95000.0"), hedge)).accepted
    assert await taker.orders_by_client_index([hedge]) == {}
    await next_event(events, Fill, lambda f: f.client_order_index == hedge)
    assert (await taker.orders_by_client_index([hedge]))[hedge].state is VenueState.FILLED


async def test_a_resting_order_carries_its_own_expiry_within_the_venue_bounds(sim: SimProcess,
                                                                              open_account: Opener) -> None:
    # The dead-man's switch of a resting order: it expires by itself `resting_order_expiry_s` after it is
    # signed (a dead A's order does not rest for the SDK's 28 days). The wall clock is injected; the
    # simulator, like Lighter, refuses an expiry under 5 minutes ahead of its own clock.
    now_ms = [time.time_ns() // 1_000_000]
    account, _ = await open_account(sim, resting_order_expiry_s=360, wall_clock_ms=lambda: now_ms[0])
    btc = account.market("BTC")
    assert account.resting_expiry_ms() == now_ms[0] + 360_000
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    (order,) = (await sim.state())["accounts"]["101"]["open_orders"][str(btc.market_id)]
    assert (order["client_order_index"], order["order_expiry"]) == (coid(1), now_ms[0] + 360_000)

    now_ms[0] -= 120_000  # a local clock 2 minutes behind the venue's: 4 minutes ahead is refused
    refused = await account.place_post_only(btc, Side.BUY, SIZE, D("93900.0"), coid(2))
    assert refused.status is SendStatus.REJECTED and "order expiry must be 5 minutes" in refused.message
    still_open = (await sim.state())["accounts"]["101"]["open_orders"][str(btc.market_id)]
    assert [o["client_order_index"] for o in still_open] == [coid(1)]


def test_without_an_expiry_setting_a_resting_order_takes_the_sdk_default() -> None:
    account = LighterAccount(url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/stream", account_index=101,
                             api_key_index=3, api_secret="0" * 80)
    assert account.resting_expiry_ms() == -1  # the signer turns it into now + 28 days

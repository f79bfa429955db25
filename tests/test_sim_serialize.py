"""Simulator reads: lighter-sdk 1.1.8 parses them, exact decimals, history paging and filters.

The venue's own bodies leave out fields that lighter-sdk's models declare required (zero fees, empty
`message`, the trades' PnL fields...), so strict `model_validate` would refuse the venue itself; the SDK
parses with `from_dict` (model_construct). These tests parse the way the SDK does and check the values it
then sees; tests/test_sim_rest_contract.py compares the shapes with the captured corpus.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import lighter.models as sdk
import pytest

from lighter_sim.config import parse_sim_section
from lighter_sim.engine import SimError
from lighter_sim.events import BookChanged, OrderChanged, PositionChanged, TradeHappened, TxSettled
from lighter_sim.markets import MarketSpec, fmt_usdc
from lighter_sim.tx_history import enriched
from tests.test_sim_engine import BTC, ETH, START_MS, A, B, C, Harness


def _parsed(model: str, body: dict[str, Any]) -> Any:
    # Through JSON first, as the SDK would see it on the wire, then the SDK's own parse (from_dict).
    parsed = getattr(sdk, model).from_dict(json.loads(json.dumps(body)))
    assert parsed is not None
    return parsed


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def busy() -> Harness:
    """Open orders, partial and full fills, cancels, positions on both markets, a scheduled cancel-all."""
    h = Harness()
    h.order(B, 1, "0.0010", "95000", "sell")
    h.order(A, 2, "0.0004", "95000", "buy", tif="ioc")
    h.order(A, 3, "0.0002", "94000", "buy", tif="post")
    h.order(A, 4, "0.0002", "94000", "buy")
    h.cancel(A, 4)
    h.order(C, 5, "0.0500", "3000", "buy", market=ETH)
    h.order(A, 6, "0.0100", "2999", "sell", market=ETH, tif="ioc")
    h.order(A, 7, "0.0002", "99000", "buy", market_order=True)
    h.send(16, A, TimeInForce=1, Time=h.now + 10 * 60_000)  # a schedule is 5 min to 15 days ahead
    h.engine.set_mid(BTC, Decimal("95500"))
    return h


def test_account_and_keys_parse_as_the_sdk_does(busy: Harness) -> None:
    body = _parsed("DetailedAccounts", busy.engine.account_json("index", str(A)))
    account = body.accounts[0]
    assert account.index == A and account.cancel_all_time > 0 and account.total_order_count == 1
    assert [(p.market_id, p.sign) for p in account.positions] == [(ETH, -1), (BTC, 1)]
    keys = _parsed("AccountApiKeys", {"code": 200, "message": "", "api_keys": busy.engine.api_keys_json(A)})
    assert keys.api_keys[0].nonce == busy.engine.next_nonce(A, 3)
    for position in busy.engine.positions_json(A).values():
        _parsed("AccountPosition", position)


def test_order_reads_parse_as_the_sdk_does(busy: Harness) -> None:
    active = _parsed("Orders", busy.engine.active_orders_json(A, None))
    assert [o.client_order_index for o in active.orders] == [3]
    inactive = _parsed("Orders", busy.engine.inactive_orders_json(A, 100))
    assert {o.status for o in inactive.orders} == {"filled", "canceled"}
    _parsed("Orders", busy.engine.orders_by_client_index_json(A, [2, 3, 4, 6, 7]))
    for orders in busy.engine.open_orders_json(A).values():
        for order in orders:
            _parsed("Order", order)


def test_trade_reads_parse_as_the_sdk_does(busy: Harness) -> None:
    recent = _parsed("Trades", busy.engine.recent_trades_json(BTC, 100))
    assert recent.trades and all(t.market_id == BTC for t in recent.trades)
    _parsed(
        "Trades",
        busy.engine.trades_json(account_index=A, market_id=None, order_index=None, from_ms=None, limit=100),
    )
    for trades in busy.engine.account_trades_json(A).values():
        for trade in trades:
            _parsed("Trade", trade)


def test_market_reads_parse_as_the_sdk_does(busy: Harness) -> None:
    details = _parsed("OrderBookDetails", busy.engine.order_book_details_json(None))
    btc = next(d for d in details.order_book_details if d.market_id == BTC)
    assert (btc.size_decimals, btc.price_decimals, btc.min_base_amount, btc.symbol) == (
        5,
        1,
        "0.00020",
        "BTC",
    )
    assert btc.last_trade_price == 95000.0
    assert len(_parsed("OrderBookDetails", busy.engine.order_book_details_json(ETH)).order_book_details) == 1
    books = _parsed("OrderBooks", busy.engine.order_books_json(None))
    eth = next(b for b in books.order_books if b.market_id == ETH)
    assert (eth.supported_size_decimals, eth.supported_price_decimals, eth.min_base_amount) == (
        4,
        2,
        "0.0050",
    )
    orders = _parsed("OrderBookOrders", busy.engine.order_book_orders_json(BTC, 250))
    assert orders.asks[0].price == "95000.0" and orders.bids[0].price == "94000.0"
    assert orders.total_asks == 1 and orders.total_bids == 1
    _parsed("Status", busy.engine.status_json())
    with pytest.raises(SimError) as err:
        busy.engine.order_book_details_json(42)
    assert err.value.code == 21901  # invented: the venue's code for an unknown market is not captured


def test_event_payloads_parse_as_the_sdk_does(busy: Harness) -> None:
    kinds = set()
    for event in busy.events:
        kinds.add(type(event))
        if isinstance(event, OrderChanged):
            _parsed("Order", event.order)
        elif isinstance(event, TradeHappened):
            _parsed("Trade", event.trade)
        elif isinstance(event, PositionChanged):
            _parsed("AccountPosition", event.position)
        elif isinstance(event, TxSettled):  # as GET /api/v1/tx answers it, strictly
            sdk.EnrichedTx.model_validate(json.loads(json.dumps(enriched(event.tx))))
    assert kinds == {OrderChanged, TradeHappened, PositionChanged, BookChanged, TxSettled}


def _changes(h: Harness, coid: int) -> list[dict[str, Any]]:
    """The order updates of `coid` the engine published since the last call, oldest first."""
    events = h.take_events()
    return [e.order for e in events if isinstance(e, OrderChanged) and e.order["client_order_index"] == coid]


def _stamps(order: dict[str, Any]) -> tuple[int, int, int, int]:
    return order["created_at"], order["timestamp"], order["updated_at"], order["block_height"]


def test_an_orders_time_and_block_follow_its_latest_change(h: Harness) -> None:
    # ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl line 9: a cancel 128 s after the
    # creation moved `timestamp`, `updated_at` and `block_height` to its block; `created_at` stayed.
    # Fills and modifies move them the same way [inferred].
    created_s = START_MS // 1000
    h.order(A, 1, "0.0004", "94000", "buy")
    (placed,) = _changes(h, 1)
    created_block = placed["block_height"]
    assert _stamps(placed) == (created_s, created_s, created_s, created_block)
    for step, change in enumerate((
            lambda: h.send(17, A, MarketIndex=BTC, Index=1, BaseAmount=40, Price=939990, TriggerPrice=0),
            lambda: h.order(B, 2, "0.0002", "93999", "sell", tif="ioc"),  # a partial fill
            lambda: h.cancel(A, 1)), start=1):
        h.now += 128_000
        before = h.engine.active_orders_json(A, BTC)["orders"][0]["transaction_time"]
        change()
        latest = _changes(h, 1)[-1]
        assert _stamps(latest) == (created_s, created_s + 128 * step, created_s + 128 * step,
                                   h.engine.block_height)
        assert latest["block_height"] > created_block and latest["transaction_time"] > before


def test_orders_changed_by_one_transaction_carry_distinct_transaction_times(h: Harness) -> None:
    # Line 13 of the same capture: a cancel-all ended two orders, at ...663553 and ...663517 µs.
    h.order(A, 1, "0.0002", "94000", "buy")
    h.order(A, 2, "0.0002", "93000", "buy")
    h.take_events()
    h.send(16, A, TimeInForce=0, Time=0)  # cancel all, at once
    ended = [e.order for e in h.take_events() if isinstance(e, OrderChanged)]
    assert len(ended) == 2 and len({o["transaction_time"] for o in ended}) == 2
    assert {o["block_height"] for o in ended} == {h.engine.block_height}
    assert all(o["transaction_time"] >= START_MS * 1000 for o in ended)


def test_best_price_parses_like_the_sdk(busy: Harness) -> None:
    """The SDK's get_best_price does int(price.replace(".", "")): the digits must be exact."""
    orders = busy.engine.order_book_orders_json(BTC, 1)
    assert int(orders["asks"][0]["price"].replace(".", "")) == 950000
    assert int(orders["asks"][0]["remaining_base_amount"].replace(".", "")) == 40


def test_every_decimal_string_has_the_market_decimals(busy: Harness) -> None:
    for market, (size_dec, price_dec) in ((BTC, (5, 1)), (ETH, (4, 2))):
        snap = busy.engine.book_snapshot(market)
        for level in snap["asks"] + snap["bids"]:
            assert len(level["price"].split(".")[1]) == price_dec
            assert len(level["size"].split(".")[1]) == size_dec
        for trade in busy.engine.recent_trades_json(market, 100)["trades"]:
            assert len(trade["price"].split(".")[1]) == price_dec
            assert len(trade["size"].split(".")[1]) == size_dec
            assert len(trade["usd_amount"].split(".")[1]) == 6
    position = busy.engine.positions_json(A)[str(BTC)]
    assert position["avg_entry_price"] == "95000.0" and position["position"] == "0.00060"
    assert position["unrealized_pnl"] == "0.300000"  # (95500 - 95000) * 0.0006


def test_market_spec_helpers() -> None:
    spec = MarketSpec("BTC", 1, 5, 1, Decimal("0.00020"), Decimal("10"), Decimal("95000"))
    assert spec.fmt_size(20) == "0.00020" and spec.fmt_size(Decimal("1.5")) == "1.50000"
    assert spec.fmt_price(950001) == "95000.1" and spec.fmt_price(Decimal("0.1")) == "0.1"
    assert spec.size_from_int(20) == Decimal("0.00020") and spec.price_from_int(950001) == Decimal("95000.1")
    assert (spec.min_base_int, spec.initial_price_int) == (20, 950000)
    with pytest.raises(ValueError):
        spec.size_to_int(Decimal("0.000001"))
    assert fmt_usdc(Decimal("-0.0000001")) == "0.000000" and fmt_usdc(Decimal("1.5")) == "1.500000"
    eth = parse_sim_section({}).markets[0].spec()  # the configured market, as the engine gets it
    assert eth.min_base_int == 50 and eth.min_quote_amount == Decimal(10)


# -- history reads: paging and filters --------------------------------------------------------------


def test_inactive_orders_page_newest_first(h: Harness) -> None:
    for coid in range(1, 8):
        h.order(A, coid, "0.0002", "94000", "buy")
        h.cancel(A, coid)
    seen: list[int] = []
    cursor = None
    while True:
        page = h.engine.inactive_orders_json(A, 3, cursor=cursor)
        seen += [o["client_order_index"] for o in page["orders"]]
        cursor = page.get("next_cursor")  # left out on the last page, as the venue leaves out empty fields
        if not cursor:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert [
        o["client_order_index"] for o in h.engine.inactive_orders_json(A, 10, market_id=ETH)["orders"]
    ] == []


def test_orders_by_client_index_any_state(h: Harness) -> None:
    h.order(A, 1, "0.0002", "94000", "buy")
    h.order(A, 2, "0.0002", "94000", "buy")
    h.cancel(A, 2)
    body = h.engine.orders_by_client_index_json(A, [1, 2, 3])
    assert [(o["client_order_index"], o["status"]) for o in body["orders"]] == [(1, "open"), (2, "canceled")]


def test_trades_filters_and_cursor(h: Harness) -> None:
    maker = h.order(B, 1, "0.0010", "95000", "sell")
    for coid in range(2, 7):
        h.now += 1000
        h.order(A, coid, "0.0002", "95000", "buy", tif="ioc")
    by_order = h.engine.trades_json(
        account_index=None, market_id=BTC, order_index=maker.order_index, from_ms=None, limit=100
    )
    assert len(by_order["trades"]) == 5
    recent = h.engine.trades_json(
        account_index=A, market_id=None, order_index=None, from_ms=START_MS + 3000, limit=100, sort_dir="asc"
    )
    assert [t["timestamp"] for t in recent["trades"]] == [START_MS + 3000, START_MS + 4000, START_MS + 5000]
    page1 = h.engine.trades_json(account_index=A, market_id=None, order_index=None, from_ms=None, limit=2)
    page2 = h.engine.trades_json(
        account_index=A, market_id=None, order_index=None, from_ms=None, limit=2, cursor=page1["next_cursor"]
    )
    ids = [t["trade_id"] for t in page1["trades"] + page2["trades"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    assert [t["trade_id"] for t in h.engine.recent_trades_json(BTC, 2)["trades"]] == ids[:2]

"""Wire contract of the adapter: captured Lighter WebSocket payloads (tests/wire/ws/) through its parsing.

Each expected value below was read off the payload by eye, at the file and line named next to it; fees are
the payload's rate x 1e-6 x size x price, worked out by hand (tests/wire/README.md, fact 5), and order times
the payload's `transaction_time` µs / 1000, or without one its seconds x 1000 (fact 4). Nothing expected is
computed by the code under test.
Every record of the corpus goes through the adapter in `test_every_corpus_record_goes_through_the_adapter`;
REST bodies are in test_wire_contract_adapter_rest.py, order books in test_wire_contract_adapter_books.py.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.events import EndReason, Fill, OrderUpdate, PositionSnapshot, Side, VenueState
from hedge_strategy.exchange.sender import SendStatus, classify_answer
from tests.fixtures.wire import records
from tests.test_wire_contract_kit import frame, skips
from tests.test_wire_contract_routes import route

__all__ = ["skips"]  # the fixture, imported for pytest

BUY, SELL = Side.BUY, Side.SELL
LIVE, FILLED, CANCELED = VenueState.LIVE, VenueState.FILLED, VenueState.CANCELED
BY_US = EndReason.CANCELED_BY_US

OrderFacts = tuple[int, int, int, int, Side, VenueState, EndReason | None, D, D, D, D, int]
FillFacts = tuple[int, int, int, int, int | None, Side, D, D, bool, D, int]


def order_facts(u: OrderUpdate) -> OrderFacts:
    """(account, market, client order index, order index, side, state, end reason, price, size, filled,
    remaining, ms)"""
    return (u.account_index, u.market_id, u.client_order_index, u.order_index, u.side, u.state, u.end_reason,
            u.price, u.initial_size, u.filled_size, u.remaining_size, u.ts_ms)


def fill_facts(f: Fill) -> FillFacts:
    """(account, market, trade id, order index, client order index, side, size, price, maker, fee USDC, ms)"""
    return (f.account_index, f.market_id, f.trade_id, f.order_index, f.client_order_index, f.side, f.size,
            f.price, f.is_maker, f.fee, f.ts_ms)


def events(path: str, line: int, account: int) -> list[Any]:
    return list(parsing.account_events(frame(path, line), account))


@pytest.mark.parametrize("rec", records(), ids=lambda r: f"{r.file.relative_to(r.file.parents[2])}:{r.line}")
async def test_every_corpus_record_goes_through_the_adapter(rec: Any, skips: list[str]) -> None:
    """Each record takes the adapter's path for its channel or endpoint and yields what the payload holds;
    nothing is skipped as malformed (a payload the adapter cannot parse fails here)."""
    await route(rec)
    assert skips == []


# --- account_all_orders / account_orders: orders --------------------------------------------------------

HFT_ORDERS = "ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl"


@pytest.mark.parametrize(("line", "expected"), [
    (1, []), (2, []), (5, []), (10, []),  # snapshots of an account with no open order
    (3, [(516, 1, 424242424242, 844424914280484, BUY, LIVE, None,
          D("58300.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431671836)]),
    # the order's time is its transaction_time (µs, here in ms): updated_at is whole seconds of block time,
    # 4-8 s behind, and a cancel in the same block keeps it (line 4; README fact 4)
    (4, [(516, 1, 424242424242, 844424914280484, BUY, CANCELED, BY_US,
          D("58300.0"), D("0.00100"), D("0.00000"), D("0.00000"), 1785431673342)]),
    (6, [(516, 1, 424242424242, 844424914280027, BUY, LIVE, None,
          D("58300.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431774184)]),
    (7, [(516, 1, 424242424249, 844424914279993, BUY, LIVE, None,
          D("58100.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431779521)]),
    (8, [(516, 1, 424242424249, 844424914279993, BUY, LIVE, None,  # open orders replayed on resubscribe
          D("58100.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431779521),
         (516, 1, 424242424242, 844424914280027, BUY, LIVE, None,
          D("58300.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431774184)]),
    (9, [(516, 1, 424242424249, 844424914279993, BUY, CANCELED, BY_US,
          D("58100.0"), D("0.00100"), D("0.00000"), D("0.00000"), 1785431906364),
         (516, 1, 424242424242, 844424914280027, BUY, CANCELED, BY_US,
          D("58300.0"), D("0.00100"), D("0.00000"), D("0.00000"), 1785431906364)]),
    (11, [(516, 1, 900000000002, 844424914279171, BUY, LIVE, None,
           D("58200.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431964520)]),
    (12, [(516, 1, 900000000003, 844424914279138, BUY, LIVE, None,
           D("58100.0"), D("0.00100"), D("0.00000"), D("0.00100"), 1785431966692)]),
    (13, [(516, 1, 900000000002, 844424914279171, BUY, CANCELED, BY_US,
           D("58200.0"), D("0.00100"), D("0.00000"), D("0.00000"), 1785431970663),
          (516, 1, 900000000003, 844424914279138, BUY, CANCELED, BY_US,
           D("58100.0"), D("0.00100"), D("0.00000"), D("0.00000"), 1785431970663)]),
])
def test_testnet_orders_of_account_516(line: int, expected: list[OrderFacts], skips: list[str]) -> None:
    got = events(HFT_ORDERS, line, 516)
    assert all(isinstance(e, OrderUpdate) for e in got)
    assert [order_facts(e) for e in got] == expected
    assert all(e.venue_status in ("open", "canceled") for e in got)
    assert skips == []


QUBX_ORDERS = "ws/account_all_orders/qubx_mainnet-225671-2025-10-12.jsonl"


def test_mainnet_oct_2025_orders_have_second_timestamps_and_an_empty_side(skips: list[str]) -> None:
    assert events(QUBX_ORDERS, 1, 225671) == []
    # line 2: an IOC market sell (is_ask true, side ""), client order index 0 (placed without one)
    assert [order_facts(e) for e in events(QUBX_ORDERS, 2, 225671)] == [
        (225671, 24, 0, 7036874567915800, SELL, FILLED, None,
         D("40.0843"), D("1.00"), D("1.00"), D("0.00"), 1760287839000)]
    # line 3: the reduce-only buy back
    assert [order_facts(e) for e in events(QUBX_ORDERS, 3, 225671)] == [
        (225671, 24, 0, 7318349238191179, BUY, FILLED, None,
         D("40.1933"), D("1.00"), D("1.00"), D("0.00"), 1760287867000)]
    assert skips == []


def test_account_orders_docs_fixture_in_ms(skips: list[str]) -> None:
    # ws/account_orders/nautilus_update.jsonl:1 (docs-following; ms timestamps, side "sell"); the time is its
    # transaction_time (µs), though this fixture's updated_at is later: written by hand, not captured
    assert [order_facts(e) for e in events("ws/account_orders/nautilus_update.jsonl", 1, 1234)] == [
        (1234, 0, 42, 281476929510110, SELL, LIVE, None,
         D("2352.74"), D("0.0050"), D("0.0020"), D("0.0030"), 1777941383576)]
    assert skips == []


# --- account_all / account_all_trades: fills ------------------------------------------------------------

QUBX_ALL = "ws/account_all/qubx_mainnet-225671-2025-10-12.jsonl"


def test_oct_2025_account_fills_carry_no_client_index(skips: list[str]) -> None:
    # line 2: we (225671) sold as the taker; maker_fee 20 belongs to the maker, our taker fee is left out
    assert [fill_facts(e) for e in events(QUBX_ALL, 2, 225671)] == [
        (225671, 24, 225067334, 7036874567915800, None, SELL, D("1.00"), D("40.1342"), False, D(0),
         1760287839079)]
    # the maker of that trade (61127) paid 20 x 1e-6 x 1.00 x 40.1342 USDC
    assert [fill_facts(e) for e in events(QUBX_ALL, 2, 61127)] == [
        (61127, 24, 225067334, 7318349238192658, None, BUY, D("1.00"), D("40.1342"), True, D("0.000802684"),
         1760287839079)]
    # line 4: we bought back as the taker
    assert [fill_facts(e) for e in events(QUBX_ALL, 4, 225671)] == [
        (225671, 24, 225068811, 7318349238191179, None, BUY, D("1.00"), D("40.1397"), False, D(0),
         1760287867494)]
    assert [fill_facts(e) for e in events(QUBX_ALL, 4, 281474976710654)] == [
        (281474976710654, 24, 225068811, 7036874567914596, None, SELL, D("1.00"), D("40.1397"), True,
         D("0.000802794"), 1760287867494)]
    assert skips == []


def test_account_all_positions_and_flat_sign_1(skips: list[str]) -> None:
    # line 1 (snapshot): trades {} (no past fills), HYPE flat as sign 1 and "0.00"
    (flat,) = events(QUBX_ALL, 1, 225671)
    assert isinstance(flat, PositionSnapshot) and (flat.market_id, flat.size) == (24, 0)
    # line 3: sign -1, "1.00": short one HYPE
    (short,) = events(QUBX_ALL, 3, 225671)
    assert isinstance(short, PositionSnapshot)
    assert (short.account_index, short.market_id, short.size, short.avg_entry_price, short.unrealized_pnl,
            short.realized_pnl) == (225671, 24, D("-1.00"), D("40.1342"), D("0.003900"), D("0.000000"))
    # line 5: flat again
    (again,) = events(QUBX_ALL, 5, 225671)
    assert isinstance(again, PositionSnapshot) and again.size == 0
    assert skips == []


def test_account_all_trades(skips: list[str]) -> None:
    for line in (1, 2, 3, 4):  # testnet snapshots: "trades": {} although orders were placed (fact 7)
        assert events("ws/account_all_trades/hftbacktest_testnet-516-2026-07-30.jsonl", line, 516) == []
    # ws/account_all_trades/nautilus_update.jsonl:1 (docs-following): we (1234) bought as the taker
    # (is_maker_ask true), taker_fee 196: 196 x 1e-6 x 0.1336 x 2352.73 = 0.061607646688 USDC
    path = "ws/account_all_trades/nautilus_update.jsonl"
    assert [fill_facts(e) for e in events(path, 1, 1234)] == [
        (1234, 0, 19209006902, 562947905631053, 7001011966, BUY, D("0.1336"), D("2352.73"), False,
         D("0.061607646688"), 1777941384181)]
    # its maker (91249, ask_client_id 0: none) paid 28 x 1e-6 x 314.324728
    assert [fill_facts(e) for e in events(path, 1, 91249)] == [
        (91249, 0, 19209006902, 281476929510102, None, SELL, D("0.1336"), D("2352.73"), True,
         D("0.008801092384"), 1777941384181)]
    assert skips == []


def test_account_all_positions(skips: list[str]) -> None:
    hft = "ws/account_all_positions/hftbacktest_testnet-516-2026-07-30.jsonl"
    assert events(hft, 1, 516) == [] and events(hft, 2, 516) == []  # "positions": {}
    for line in (3, 4, 5, 6):  # BTC listed flat: sign 1, "0.00000"
        (flat,) = events(hft, line, 516)
        assert isinstance(flat, PositionSnapshot)
        assert (flat.account_index, flat.market_id, flat.size) == (516, 1, 0)
    (held,) = events("ws/account_all_positions/nautilus_update.jsonl", 1, 1234)
    assert isinstance(held, PositionSnapshot)
    assert (held.market_id, held.size, held.avg_entry_price, held.unrealized_pnl, held.realized_pnl) == (
        0, D("1.5000"), D("2350.10"), D("3.45"), D("0.00"))
    assert skips == []


# --- jsonapi/sendtx answers over the WebSocket ----------------------------------------------------------

def test_ws_sendtx_answers(skips: list[str]) -> None:
    ack = classify_answer(frame("ws/sendtx/ccxt_ack-2026-08.jsonl", 1), None)
    assert (ack.status, ack.code, ack.tx_hash) == (
        SendStatus.ACCEPTED, 200,
        "9959d3feb30d0a89fcfd4532f071ac99a98ee1202aa2a7f2c1299932b1e540b6ecdabd2b92616a14")
    for line, code in ((1, 21149), (2, 21727)):  # no venue meaning known: retried, never final by guess
        refused = classify_answer(frame("ws/sendtx/nautilus_test-frames.jsonl", line), None)
        assert (refused.status, refused.code) == (SendStatus.REJECTED, code)
        assert refused.refusal is not None and refused.refusal.kind == "unknown" and refused.worth_retrying
    assert skips == []

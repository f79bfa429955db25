"""Wire contract of the adapter: control and error frames, public trades, channels the bot does not read, and
the Oct 2025 account session replayed through the tracker. Values read off tests/wire/ws/ at the lines named;
fees worked out by hand as rate x 1e-6 x size x price (tests/wire/README.md, fact 5)."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

import pytest

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.events import Event, Fill, Side
from hedge_strategy.execution.journal import Journal
from hedge_strategy.execution.tracker import OrderTracker
from tests.fixtures.execution import Announcements
from tests.test_tracker_order_index import journaled
from tests.test_wire_contract_adapter import fill_facts
from tests.test_wire_contract_kit import frame, skips

__all__ = ["skips"]  # the fixture, imported for pytest


@pytest.mark.parametrize(("path", "line", "code", "message", "channel"), [
    ("ws/control/ccxt_code-comments.jsonl", 4, 30005, "Invalid Channel:  (marketId)", None),
    ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl", 3, 30005, "Invalid Channel:  (marketId)", None),
    ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl", 4, 30005, "Invalid Channel", None),
    ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl", 5, 30003, "Already Subscribed to : order_book:0",
     "order_book:0"),
    ("ws/control/hftbacktest_mainnet-2026-08-rate-limit.jsonl", 1, 30009, "Too Many Websocket Messages!",
     None),
    ("ws/control/hftbacktest_testnet-auth-required.jsonl", 1, 20001,
     "invalid param : auth field is required: account_all_orders:1", "account_all_orders:1"),
    ("ws/control/qubx_error-expired-token.jsonl", 1, 20013,
     "invalid auth: expired token: account_all_orders:225671", "account_all_orders:225671"),
    ("ws/control/nautilus_test-frames.jsonl", 1, 30003, "Already Subscribed to : ticker:3", "ticker:3"),
    ("ws/control/nautilus_test-frames.jsonl", 2, 21727, "invalid client order index", None),
])
def test_error_frames_in_both_forms(
        path: str, line: int, code: int, message: str, channel: str | None) -> None:
    assert parsing.ws_error(frame(path, line)) == parsing.WsError(code, message, channel)


@pytest.mark.parametrize(("path", "line", "kind"), [
    ("ws/control/ccxt_code-comments.jsonl", 1, "connected"),
    ("ws/control/ccxt_code-comments.jsonl", 2, "ping"),
    ("ws/control/ccxt_code-comments.jsonl", 3, "unsubscribed"),
    ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl", 1, "connected"),
    ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl", 2, "pong"),
    ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl", 6, "unsubscribed"),
    *[("ws/control/hftbacktest_testnet-516-2026-07-30.jsonl", line, "connected") for line in range(1, 6)],
])
def test_control_frames_are_no_errors(path: str, line: int, kind: str) -> None:
    decoded = frame(path, line)
    assert decoded["type"] == kind and parsing.ws_error(decoded) is None


def test_shutdown_announces_its_close() -> None:
    # ws/control/constructed_shutdown.jsonl:1 (constructed: the SDK's shape, close_in_ms 1000)
    assert parsing.shutdown_delay_s(frame("ws/control/constructed_shutdown.jsonl", 1)) == 1.0


def trade_fills(path: str, line: int, account: int) -> list[Fill]:
    payload = frame(path, line)
    return [f for trade in [*(payload.get("trades") or []), *(payload.get("liquidation_trades") or [])]
            for f in parsing.fills_for_account(trade, account)]


def test_public_trades_fees_as_rates_and_times_in_ms(skips: list[str]) -> None:
    # ws/trade/hftbacktest_mainnet-eth-2026-07-28.jsonl:1: 1.53 USD notional, maker (the ask) rate 28
    eth = "ws/trade/hftbacktest_mainnet-eth-2026-07-28.jsonl"
    assert [fill_facts(f) for f in trade_fills(eth, 1, 708516)] == [
        (708516, 0, 26280867773, 281477536273316, 2145634480, Side.SELL, D("0.0008"), D("1913.99"), True,
         D("0.000042873376"), 1785252546746)]
    assert [fill_facts(f) for f in trade_fills(eth, 1, 326677)] == [  # bid_client_id 0: none
        (326677, 0, 26280867773, 562947300641615, None, Side.BUY, D("0.0008"), D("1913.99"), False, D(0),
         1785252546746)]
    # ws/trade/hftbacktest_mainnet-crv-2026-07-29.jsonl:1: a liquidation, taker_fee 10000 (1 %) on the ask
    # taker: 10000 x 1e-6 x 8215.3 x 0.20039 = 16.46263967; its maker (the bid) 28: 0.046095391076
    crv = "ws/trade/hftbacktest_mainnet-crv-2026-07-29.jsonl"
    liquidated = [f for f in trade_fills(crv, 1, 722982) if f.trade_id == 26218621834]
    assert [fill_facts(f) for f in liquidated] == [
        (722982, 36, 26218621834, 10414574258696109, None, Side.SELL, D("8215.3"), D("0.20039"), False,
         D("16.46263967"), 1785193205747)]
    by_trade = {f.trade_id: f for f in trade_fills(crv, 1, 314233)}
    assert fill_facts(by_trade[26218621834]) == (
        314233, 36, 26218621834, 10696048997897706, 55006172834, Side.BUY, D("8215.3"), D("0.20039"), True,
        D("0.046095391076"), 1785193205747)
    # ... and a 0.14 USD trade of the same maker at the same rate 28 (line 1, first of "trades")
    assert fill_facts(by_trade[26412385647]) == (
        314233, 36, 26412385647, 10414574259102759, 69016212847, Side.SELL, D("0.7"), D("0.20382"), True,
        D("0.000003994872"), 1785358805929)
    # ws/trade/ccxt_mainnet-2025-11-20.jsonl:1: maker_fee 20 on the bid maker, 104.79821 USD
    assert [fill_facts(f) for f in trade_fills("ws/trade/ccxt_mainnet-2025-11-20.jsonl", 1, 243008)] == [
        (243008, 0, 526801155, 562949291740362, 27601, Side.BUY, D("0.0346"), D("3028.85"), True,
         D("0.0020959642"), 1763623734215)]
    # ws/trade/nautilus_subscribed-and-update.jsonl:1 (docs): 291.49 USD, maker 28 and taker 196
    docs = "ws/trade/nautilus_subscribed-and-update.jsonl"
    assert [f.fee for f in trade_fills(docs, 1, 317068)] == [D("0.008161789664")]
    assert [f.fee for f in trade_fills(docs, 1, 57890)] == [D("0.057132527648")]
    # ws/trade/docs_update.jsonl:1 (old docs example): a trade timestamp in seconds, no fees
    assert [fill_facts(f) for f in trade_fills("ws/trade/docs_update.jsonl", 1, 21504)] == [
        (21504, 0, 14035051, 41720037, None, Side.BUY, D("0.1187"), D("3335.65"), True, D(0), 1722339648000)]
    # ws/trade/qubx_mainnet-eth-btc-2025-10-09.jsonl:1: Oct 2025, no client ids; liquidation 212690112
    qubx = [f for f in trade_fills("ws/trade/qubx_mainnet-eth-btc-2025-10-09.jsonl", 1, 35538)
            if f.trade_id == 212690112]
    assert [fill_facts(f) for f in qubx] == [
        (35538, 0, 212690112, 562949723828832, None, Side.BUY, D("1.3792"), D("4335.02"), True,
         D("0.11957719168"), 1760040869198)]
    assert skips == []


@pytest.mark.parametrize(("path", "line", "kind", "channel"), [
    ("ws/account_all_assets/docs_update.jsonl", 1, "update/account_all_assets", "account_all_assets:1234"),
    ("ws/account_all_assets/nautilus_mainnet-2026-06.jsonl", 1, "subscribed/account_all_assets",
     "account_all_assets:1234"),
    ("ws/height/hftbacktest_mainnet-2026-07-28.jsonl", 1, "update/height", "height"),
    ("ws/market_stats/hftbacktest_mainnet-2026-07-28.jsonl", 2, "update/market_stats", "market_stats:all"),
    ("ws/ticker/hftbacktest_mainnet-2026-07-28.jsonl", 1, "update/ticker", "ticker:1"),
    ("ws/user_stats/qubx_mainnet-225671-2025-10-12.jsonl", 2, "update/user_stats", "user_stats:225671"),
])
def test_channels_the_bot_does_not_read_pass_the_decoder(
        path: str, line: int, kind: str, channel: str) -> None:
    decoded = frame(path, line)
    assert (decoded["type"], decoded["channel"], parsing.ws_error(decoded)) == (kind, channel, None)
    assert list(parsing.account_events(decoded, 225671)) == []  # nothing an account channel would carry


async def test_oct_2025_session_never_gives_a_fill_to_client_index_0(
    tmp_path: Path, told: Announcements, skips: list[str]
) -> None:
    """Qubx' account session of 2025-10-12 in its arrival order (README "Session order"): orders placed with
    client order index 0, trades without client ids. Their fills are held, never attributed to index 0."""
    orders = "ws/account_all_orders/qubx_mainnet-225671-2025-10-12.jsonl"
    account_all = "ws/account_all/qubx_mainnet-225671-2025-10-12.jsonl"
    session = [(orders, 1), (account_all, 1), (orders, 2), (account_all, 2), (account_all, 3),
               (orders, 3), (account_all, 4), (account_all, 5)]
    journal = await Journal.open(tmp_path / "journal_225671.sqlite", 225671)
    try:
        tracker = OrderTracker(journal, asyncio.Queue[Event](), on_fill=told)
        for path, line in session:
            for event in parsing.account_events(frame(path, line), 225671):
                await tracker.handle(event)
        held = [h.fill for h in tracker.held_fills]
        assert [(f.trade_id, f.order_index) for f in held] == [
            (225067334, 7036874567915800), (225068811, 7318349238191179)]
        assert told.seen == [] and journal.fills_for(0) == []
        assert not any(journaled(journal, f) for f in held)
        assert tracker.positions == {}  # flat at the end (line 5: sign 1, "0.00")
        assert [f.trade_id for f in tracker.give_up_held(older_than_s=0)] == [225067334, 225068811]
    finally:
        await journal.close()
    assert skips == []

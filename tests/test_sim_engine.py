"""Simulator engine: tx intake (validation, nonces), cancels, cancel-all, modify, positions, fees, reset.

Also home of `Harness`, the virtual-clock driver the other sim engine test modules import.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from lighter_sim.book import Order
from lighter_sim.engine import AcceptedTx, Engine, SimError
from lighter_sim.events import OrderChanged, PositionChanged, SimEvent, TxSettled
from lighter_sim.markets import MarketSpec

START_MS = 1_700_000_000_000
ETH, BTC = 0, 1
A, B, C = 101, 102, 103
KEY = 3
SIG = base64.b64encode(bytes(range(80))).decode()  # the shape of a signature (not verifiable offline)
SPECS = [
    MarketSpec("ETH", ETH, 4, 2, Decimal("0.0050"), Decimal("10"), Decimal("3000.00")),
    MarketSpec("BTC", BTC, 5, 1, Decimal("0.00020"), Decimal("10"), Decimal("95000.0")),
]
FEES = {
    "standard": (Decimal("0"), Decimal("0")),
    "premium": (Decimal("0.000004"), Decimal("0.000028")),
}
_TIF = {"ioc": 0, "gtt": 1, "post": 2}


class Harness:
    """An engine on a virtual clock with accounts 101-103 (premium, 100k USDC) and helpers to send txs."""

    def __init__(self, tiers: dict[int, str] | None = None, collateral: dict[int, str] | None = None) -> None:
        self.now = START_MS
        self.engine = Engine(SPECS, FEES, clock_ms=lambda: self.now)
        self.events: list[SimEvent] = []
        self.engine.add_listener(self.events.append)
        for account in (A, B, C):
            tier = (tiers or {}).get(account, "premium")
            money = Decimal((collateral or {}).get(account, "100000"))
            self.engine.upsert_account(account, tier, money, {KEY: f"{account:02x}" * 40})
        self._arrival = 0

    def spec(self, market: int) -> MarketSpec:
        return self.engine.specs[market]

    def tx_info(self, account: int, nonce: int | None = None, **fields: Any) -> str:
        body = {
            "AccountIndex": account,
            "ApiKeyIndex": KEY,
            "ExpiredAt": self.now + 599_000,
            "Nonce": self.engine.next_nonce(account, KEY) if nonce is None else nonce,
        }
        body.update(fields)
        body.update({"Sig": SIG, "L2TxAttributes": fields.get("L2TxAttributes")})
        return json.dumps(body)

    def accept(self, tx_type: int, account: int = A, nonce: int | None = None, **fields: Any) -> AcceptedTx:
        self._arrival += 1
        return self.engine.accept_tx(tx_type, self.tx_info(account, nonce, **fields), self._arrival)

    def send(self, tx_type: int, account: int = A, **fields: Any) -> AcceptedTx:
        accepted = self.accept(tx_type, account, **fields)
        self.engine.execute(accepted)
        return accepted

    def create_fields(
        self,
        coid: int,
        size: str,
        price: str,
        side: str,
        *,
        tif: str = "gtt",
        market_order: bool = False,
        reduce_only: bool = False,
        market: int = BTC,
        expiry_ms: int | None = None,
    ) -> dict[str, Any]:
        spec = self.spec(market)
        return {
            "MarketIndex": market,
            "ClientOrderIndex": coid,
            "BaseAmount": spec.size_to_int(Decimal(size)),
            "Price": spec.price_to_int(Decimal(price)),
            "IsAsk": int(side == "sell"),
            "Type": int(market_order),
            "TimeInForce": 0 if market_order else _TIF[tif],
            "ReduceOnly": int(reduce_only),
            "TriggerPrice": 0,
            "OrderExpiry": 0 if tif == "ioc" or market_order else (expiry_ms or self.now + 28 * 86_400_000),
        }

    def order(self, account: int, coid: int, size: str, price: str, side: str, **kw: Any) -> Order:
        """Sends a create order (accept + execute) and returns the engine's order object."""
        self.send(14, account, **self.create_fields(coid, size, price, side, **kw))
        return self.engine.accounts[account].all_orders_by_client[coid]

    def cancel(self, account: int, index: int, market: int = BTC) -> None:
        self.send(15, account, MarketIndex=market, Index=index)

    def position(self, account: int, market: int = BTC) -> dict[str, Any]:
        return self.engine.positions_json(account)[str(market)]

    def collateral(self, account: int) -> Decimal:
        return Decimal(self.engine.account_json("index", str(account))["accounts"][0]["collateral"])

    def take_events(self) -> list[SimEvent]:
        events = list(self.events)
        self.events.clear()  # in place: the engine's listener appends to this very list
        return events


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- validation ----------------------------------------------------------------------------------------------


def _snapshot(h: Harness) -> str:
    return json.dumps([h.engine.state_json(), h.engine.next_nonce(A, KEY)], sort_keys=True, default=str)


@pytest.mark.parametrize("sig", [None, "", "c2ln", "not base64!", 5])
def test_a_tx_without_a_signature_is_refused(sig: Any) -> None:
    h = Harness()
    body = json.loads(h.tx_info(A, MarketIndex=1, ClientOrderIndex=1, BaseAmount=20, Price=950000, IsAsk=0,
                                Type=0, TimeInForce=2, ReduceOnly=0, TriggerPrice=0, OrderExpiry=0))
    body["Sig"] = sig
    nonce = h.engine.next_nonce(A, KEY)
    with pytest.raises(SimError) as refused:
        h.engine.accept_tx(14, json.dumps(body), 1)
    # The venue's 21120 "invalid signature" (verified); the sim checks only a signature's shape.
    assert refused.value.code == 21120 and "Sig" in refused.value.message
    assert h.engine.next_nonce(A, KEY) == nonce  # nothing consumed


@pytest.mark.parametrize(
    ("tx_type", "overrides", "code"),
    [
        (13, {}, 21511),  # a tx type the sim does not simulate: the venue's "invalid tx type"
        (14, {"BaseAmount": "12"}, 21106),  # not an integer
        (14, {"Type": 2}, 21106),  # stop-loss orders are not simulated
        (14, {"AccountIndex": 999}, 21100),
        (14, {"AccountIndex": 1}, 21100),  # the simulator's own liquidity account is not a user account
        (14, {"ApiKeyIndex": 4}, 21108),  # the venue's "invalid PublicKey": key not registered
        (14, {"ExpiredAt": START_MS - 1}, 21902),
        (14, {"Nonce": 5}, 21104),
        (14, {"MarketIndex": 7}, 21901),
        (14, {"ClientOrderIndex": 1 << 48}, 21727),
        (14, {"BaseAmount": 19}, 21121),  # below 0.00020 BTC
        (14, {"Price": 0}, 21122),
        (14, {"BaseAmount": 20, "Price": 10}, 21124),  # 0.0002 * 1.0 USDC < 10 USDC
        (15, {"MarketIndex": BTC, "Index": 424242}, 21123),
        (15, {"MarketIndex": BTC, "Index": (1 << 48) + 77}, 21123),
        (
            17,
            {"MarketIndex": BTC, "Index": 424242, "BaseAmount": 20, "Price": 950000, "TriggerPrice": 0},
            21123,
        ),
    ],
)
def test_refused_tx_has_its_code_and_changes_nothing(
    h: Harness, tx_type: int, overrides: dict[str, Any], code: int
) -> None:
    before = _snapshot(h)
    fields = h.create_fields(1, "0.0002", "95000", "buy") if tx_type in (13, 14) else {}
    fields.update(overrides)
    body = json.loads(h.tx_info(A, **fields))
    body.update(
        {k: v for k, v in overrides.items() if k in ("AccountIndex", "ApiKeyIndex", "ExpiredAt", "Nonce")}
    )
    with pytest.raises(SimError) as err:
        h.engine.accept_tx(tx_type, json.dumps(body), 1)
    assert err.value.code == code
    assert err.value.http_status == 400
    if code == 21104:
        assert err.value.message == "invalid nonce"  # the SDK resyncs its nonce on exactly this text
    after = json.loads(_snapshot(h))
    expected = json.loads(before)
    # Only the per-account tx log may grow: a refused tx of a known account is logged with its code.
    log = after[0]["accounts"][str(A)].pop("tx_log")
    expected[0]["accounts"][str(A)].pop("tx_log")
    assert after == expected
    if code not in (21106, 21100, 21511, 21727):  # refused before the account is known
        assert log[-1]["result"] == code
    assert h.events == []


def test_malformed_json_is_21106(h: Harness) -> None:
    for bad in ("not json", "[1, 2]", ""):
        with pytest.raises(SimError) as err:
            h.engine.accept_tx(14, bad, 1)
        assert err.value.code == 21106


def test_too_many_open_orders_is_21125(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lighter_sim.engine.MAX_OPEN_PER_MARKET", 3)
    for coid in (1, 2):
        h.order(A, coid, "0.0002", "90000", "buy")
    h.accept(14, A, **h.create_fields(3, "0.0002", "90000", "buy"))  # accepted, not yet executed: counts too
    with pytest.raises(SimError) as err:
        h.accept(14, A, **h.create_fields(4, "0.0002", "90000", "buy"))
    assert err.value.code == 21125
    h.order(A, 5, "0.0050", "3000", "buy", market=ETH)  # the cap is per market


def test_nonce_is_per_key_consumed_on_accept_and_visible_in_api_keys(h: Harness) -> None:
    h.engine.upsert_account(A, "premium", Decimal("100000"), {KEY: "aa" * 40, 4: "bb" * 40})
    assert h.engine.next_nonce(A, KEY) == 0
    h.accept(14, A, **h.create_fields(1, "0.0002", "90000", "buy"))
    assert h.engine.next_nonce(A, KEY) == 1
    assert h.engine.next_nonce(A, 4) == 0
    with pytest.raises(SimError) as err:
        h.accept(14, A, nonce=0, **h.create_fields(2, "0.0002", "90000", "buy"))
    assert err.value.code == 21104
    keys = {k["api_key_index"]: k for k in h.engine.api_keys_json(A)}
    assert keys[KEY]["nonce"] == 1 and keys[4]["nonce"] == 0
    assert keys[4]["public_key"] == "bb" * 40
    assert h.engine.api_keys_json(A, 4) == [keys[4]]
    assert h.engine.api_keys_json(A, 9) == []
    with pytest.raises(SimError) as e1:
        h.engine.next_nonce(A, 9)
    with pytest.raises(SimError) as e2:
        h.engine.next_nonce(999, KEY)
    assert (e1.value.code, e2.value.code) == (21101, 21100)


def test_upsert_keeps_orders_positions_and_nonces(h: Harness) -> None:
    h.order(A, 1, "0.0002", "95000", "buy")
    h.order(B, 2, "0.0002", "95000", "sell", tif="ioc")
    h.engine.upsert_account(A, "standard", Decimal("5000"), {KEY: "ff" * 40})
    assert h.engine.tier_of(A) == "standard"
    assert h.engine.next_nonce(A, KEY) == 1
    assert h.position(A)["sign"] == 1
    assert h.engine.api_keys_json(A)[0]["public_key"] == "ff" * 40
    with pytest.raises(ValueError):
        h.engine.upsert_account(2, "premium", Decimal(1), {})


def test_accepted_order_is_invisible_until_executed(h: Harness) -> None:
    accepted = h.accept(14, A, **h.create_fields(1, "0.0002", "95000", "buy"))
    assert accepted.kind == "maker" and accepted.tx_type == 14 and accepted.account_index == A
    assert h.engine.active_orders_json(A, None)["orders"] == []
    assert h.engine.book_snapshot(BTC)["bids"] == []
    assert h.engine.orders_by_client_index_json(A, [1])["orders"] == []
    h.engine.execute(accepted)
    assert [o["client_order_index"] for o in h.engine.active_orders_json(A, None)["orders"]] == [1]
    h.engine.execute(accepted)  # a second execute of the same tx is ignored
    assert len(h.engine.active_orders_json(A, None)["orders"]) == 1


def test_tx_kinds(h: Harness) -> None:
    assert h.accept(14, A, **h.create_fields(1, "0.0002", "95000", "buy", tif="post")).kind == "maker"
    assert h.accept(14, A, **h.create_fields(2, "0.0002", "95000", "buy", tif="ioc")).kind == "taker"
    assert h.accept(14, A, **h.create_fields(3, "0.0002", "95000", "buy", market_order=True)).kind == "taker"
    assert h.accept(16, A, TimeInForce=0, Time=0).kind == "cancel"
    assert h.accept(15, A, MarketIndex=BTC, Index=1).kind == "cancel"  # pending create 1 counts as known


def test_tx_log_records_accepted_and_refused(h: Harness) -> None:
    accepted = h.accept(14, A, **h.create_fields(7, "0.0002", "95000", "buy"))
    with pytest.raises(SimError):
        h.accept(15, A, MarketIndex=BTC, Index=12345)
    log = h.engine.state_json()["accounts"][str(A)]["tx_log"]
    assert log[0] == {
        "arrival_us": 1,
        "tx_type": 14,
        "api_key_index": KEY,
        "nonce": 0,
        "result": "accepted",
        "client_order_index": 7,
        "tx_hash": accepted.tx_hash,
    }
    assert log[1]["result"] == 21123 and log[1]["index"] == 12345 and log[1]["nonce"] == 1


# -- cancels, cancel-all, modify, expiry --------------------------------------------------------------------


def test_cancel_by_client_index_and_by_order_index(h: Harness) -> None:
    first = h.order(A, 1, "0.0002", "94000", "buy")
    second = h.order(A, 2, "0.0002", "94000", "buy")
    h.cancel(A, 1)
    h.cancel(A, second.order_index)
    assert (first.status, second.status) == ("canceled", "canceled")
    assert h.engine.book_snapshot(BTC)["bids"] == []
    assert h.engine.active_orders_json(A, BTC)["orders"] == []


def test_cancel_of_an_order_filled_meanwhile_is_a_noop(h: Harness) -> None:
    maker = h.order(A, 1, "0.0002", "95000", "buy")
    cancel = h.accept(15, A, MarketIndex=BTC, Index=1)  # accepted while the order is open
    h.order(B, 2, "0.0002", "95000", "sell", tif="ioc")
    h.take_events()
    h.engine.execute(cancel)
    assert maker.status == "filled"
    assert not any(isinstance(e, OrderChanged) for e in h.take_events())


def test_cancel_all_immediate_scheduled_and_abort(h: Harness) -> None:
    orders = [h.order(A, 1, "0.0002", "94000", "buy"), h.order(A, 2, "0.0100", "2900", "buy", market=ETH)]
    other = h.order(B, 3, "0.0002", "94000", "buy")
    h.send(16, A, TimeInForce=0, Time=0)
    assert [o.status for o in orders] == ["canceled", "canceled"]
    assert other.status == "open"

    # Scheduled (dead-man's switch): renewable, visible as cancel_all_time, fires on tick. Lighter takes a
    # schedule 5 minutes to 15 days ahead (lighter_sim/periods.py).
    minute = 60_000
    kept = h.order(A, 4, "0.0002", "94000", "buy")
    h.send(16, A, TimeInForce=1, Time=START_MS + 5 * minute)
    h.send(16, A, TimeInForce=1, Time=START_MS + 6 * minute)  # the renewal moves T
    assert h.engine.account_json("index", str(A))["accounts"][0]["cancel_all_time"] == START_MS + 6 * minute
    h.engine.tick(START_MS + 6 * minute - 1)
    assert kept.status == "open"
    h.engine.tick(START_MS + 6 * minute)
    assert kept.status == "canceled"
    assert h.engine.account_json("index", str(A))["accounts"][0]["cancel_all_time"] == 0

    # Abort disarms the switch.
    survivor = h.order(A, 5, "0.0002", "94000", "buy")
    h.send(16, A, TimeInForce=1, Time=START_MS + 10 * minute)
    h.send(16, A, TimeInForce=2, Time=0)
    h.engine.tick(START_MS + 20 * minute)
    assert survivor.status == "open"


def test_scheduled_cancel_all_and_order_expiry_outside_the_venue_bounds_are_refused(h: Harness) -> None:
    minute, day = 60_000, 86_400_000
    for time_ms in (START_MS + 10_000, START_MS + 5 * minute - 1, START_MS + 15 * day + 1):
        with pytest.raises(SimError) as refused:
            h.send(16, A, TimeInForce=1, Time=time_ms)
        assert "scheduled cancel-all time must be 5 minutes to 15 days ahead" in str(refused.value)
    assert h.engine.account_json("index", str(A))["accounts"][0]["cancel_all_time"] == 0
    for expiry_ms in (START_MS + 60_000, START_MS + 30 * day + 1):
        with pytest.raises(SimError, match="order expiry must be 5 minutes to 30 days ahead"):
            h.order(A, 6, "0.0002", "94000", "buy", expiry_ms=expiry_ms)
    assert h.order(A, 7, "0.0002", "94000", "buy", expiry_ms=START_MS + 5 * minute).status == "open"


def test_cancel_all_restricted_to_one_market(h: Harness) -> None:
    btc = h.order(A, 1, "0.0002", "94000", "buy")
    eth = h.order(A, 2, "0.0100", "2900", "buy", market=ETH)
    h.send(16, A, TimeInForce=0, Time=0, L2TxAttributes={"5": ETH})
    assert (btc.status, eth.status) == ("open", "canceled")


def test_gtt_order_expires_on_tick(h: Harness) -> None:
    order = h.order(A, 1, "0.0002", "94000", "buy", expiry_ms=START_MS + 360_000)
    h.engine.tick(START_MS + 359_999)
    assert order.status == "open"
    h.engine.tick(START_MS + 360_000)
    assert order.status == "canceled-expired"
    assert h.engine.book_snapshot(BTC)["bids"] == []


def test_modify_keeps_priority_when_only_shrinking(h: Harness) -> None:
    first = h.order(A, 1, "0.0004", "95000", "buy")
    h.order(C, 2, "0.0002", "95000", "buy")
    h.send(17, A, MarketIndex=BTC, Index=1, BaseAmount=20, Price=950000, TriggerPrice=0)
    assert first.remaining == 20
    h.order(B, 3, "0.0002", "95000", "sell", tif="ioc")
    assert first.status == "filled"  # still first in the queue


def test_modify_price_loses_priority_and_can_cross(h: Harness) -> None:
    first = h.order(A, 1, "0.0002", "95000", "buy")
    second = h.order(C, 2, "0.0002", "95000", "buy")
    h.send(17, A, MarketIndex=BTC, Index=first.order_index, BaseAmount=20, Price=950001, TriggerPrice=0)
    h.send(17, A, MarketIndex=BTC, Index=1, BaseAmount=20, Price=950000, TriggerPrice=0)
    h.order(B, 3, "0.0002", "95000", "sell", tif="ioc")
    assert (first.status, second.status) == ("open", "filled")  # A went to the back of the queue

    ask = h.order(B, 4, "0.0002", "95100", "sell")
    h.send(17, A, MarketIndex=BTC, Index=1, BaseAmount=20, Price=951000, TriggerPrice=0)
    assert first.status == "filled" and ask.status == "filled"  # the modify crossed and matched as a taker


def test_modify_of_post_only_that_would_cross_is_canceled(h: Harness) -> None:
    h.order(B, 1, "0.0002", "95100", "sell")
    bid = h.order(A, 2, "0.0002", "95000", "buy", tif="post")
    h.send(17, A, MarketIndex=BTC, Index=2, BaseAmount=20, Price=951000, TriggerPrice=0)
    assert bid.status == "canceled-post-only"


# -- positions, PnL, fees ----------------------------------------------------------------------------------


def test_position_long_add_reduce_flip_with_pnl_and_fees(h: Harness) -> None:
    spec = h.spec(BTC)
    h.order(B, 1, "0.0004", "95000", "sell")
    h.order(A, 2, "0.0004", "95000", "buy", tif="ioc")  # long 0.0004 @ 95000
    pos = h.position(A)
    assert (pos["sign"], pos["position"], pos["avg_entry_price"]) == (1, "0.00040", "95000.0")

    h.order(B, 3, "0.0002", "96500", "sell")
    h.order(A, 4, "0.0002", "96500", "buy", tif="ioc")  # add 0.0002 @ 96500: avg 95500
    assert h.position(A)["avg_entry_price"] == "95500.0"

    h.order(B, 5, "0.0003", "97000", "buy")
    h.order(A, 6, "0.0003", "97000", "sell", tif="ioc")  # reduce 0.0003 @ 97000: +0.45 realized
    pos = h.position(A)
    assert (pos["position"], pos["avg_entry_price"], pos["realized_pnl"]) == (
        "0.00030",
        "95500.0",
        "0.450000",
    )

    h.order(B, 7, "0.0005", "94000", "buy")
    h.order(A, 8, "0.0005", "94000", "sell", tif="ioc")  # flip: close 0.0003 (-0.45), short 0.0002 @ 94000
    pos = h.position(A)
    assert (pos["sign"], pos["position"], pos["avg_entry_price"]) == (-1, "0.00020", "94000.0")
    assert pos["realized_pnl"] == "0.000000"

    # Collateral = start + realized - fees (A was taker each time: 0.000028 of notional).
    notionals = [Decimal("38"), Decimal("19.3"), Decimal("29.1"), Decimal("47")]
    fees = sum((n * Decimal("0.000028")).quantize(Decimal("0.000001")) for n in notionals)
    assert h.collateral(A) == Decimal("100000") - fees
    # Trades carry fee RATES in millionths (config 0.000028 -> 28), as the venue's do; the maker (B) paid
    # 4 millionths of each notional.
    trades = h.engine.trades_json(account_index=A, market_id=None, order_index=None, from_ms=None, limit=10)
    assert [(t["taker_fee"], t["maker_fee"]) for t in trades["trades"]] == [(28, 4)] * 4
    maker_fees = sum((n * Decimal("0.000004")).quantize(Decimal("0.000001")) for n in notionals)
    assert h.collateral(B) == Decimal("100000") - maker_fees + Decimal(h.position(B)["realized_pnl"])
    # Unrealized PnL follows the mid.
    h.engine.set_mid(BTC, Decimal("93000"))
    assert h.position(A)["unrealized_pnl"] == "0.200000"
    assert spec.fmt_price(h.engine.mids[BTC]) == "93000.0"


def test_standard_tier_pays_no_fees() -> None:
    h = Harness(tiers={A: "standard", B: "standard"})
    h.order(B, 1, "0.0010", "95000", "sell")
    h.order(A, 2, "0.0010", "95000", "buy", tif="ioc")
    trade = h.engine.recent_trades_json(BTC, 1)["trades"][0]
    assert "taker_fee" not in trade and "maker_fee" not in trade  # zero rates are left out, as on the venue
    assert h.collateral(A) == Decimal("100000")


def test_fee_rates_must_be_whole_millionths() -> None:
    with pytest.raises(ValueError, match=r"sim\.fees\.premium\.maker: 0\.0000035 is not a whole number"):
        Engine(SPECS, {"premium": (Decimal("0.0000035"), Decimal("0.000028"))})


def test_flat_position_stays_listed_with_sign_one(h: Harness) -> None:
    h.order(B, 1, "0.0002", "95000", "sell")
    h.order(A, 2, "0.0002", "95000", "buy", tif="ioc")
    h.order(B, 3, "0.0002", "95000", "buy")
    h.order(A, 4, "0.0002", "95000", "sell", tif="ioc")
    pos = h.position(A)
    assert (pos["sign"], pos["position"]) == (1, "0.00000")  # captured: flat is sign 1


def test_long_runs_keep_bounded_memory(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lighter_sim.core.EXPIRY_COMPACT_AT", 50)
    monkeypatch.setattr("lighter_sim.core.BY_CLIENT_LIMIT", 40)
    h.engine._expiry_compact_at = 50
    keeper = h.order(A, 1, "0.0002", "90000", "buy")  # stays open the whole time
    for coid in range(2, 300):
        h.order(A, coid, "0.0002", "94000", "buy")
        h.cancel(A, coid)
    assert len(h.engine._expiries) <= 100
    assert len(h.engine.accounts[A].all_orders_by_client) <= 41
    found = h.engine.orders_by_client_index_json(A, [1, 299, 2])["orders"]
    assert [o["client_order_index"] for o in found] == [1, 299]  # open and recent kept, old ended gone
    assert keeper.status == "open"
    h.engine.tick(keeper.order_expiry)
    assert keeper.status == "canceled-expired"  # compaction kept the open order's expiry


# -- account reads ---------------------------------------------------------------------------------------


def test_account_json_by_index_and_l1_address(h: Harness) -> None:
    body = h.engine.account_json("index", str(A))
    address = body["accounts"][0]["l1_address"]
    assert h.engine.account_json("l1_address", address)["accounts"][0]["index"] == A
    for by, value in (("index", "999"), ("index", "x"), ("l1_address", "0xdead"), ("index", "1")):
        with pytest.raises(SimError) as err:
            h.engine.account_json(by, value)
        assert err.value.code == 21100


# -- admin ------------------------------------------------------------------------------------------------


def test_force_trade_hits_resting_orders_up_to_price(h: Harness) -> None:
    near = h.order(A, 1, "0.0002", "95000", "buy")
    far = h.order(A, 2, "0.0002", "94000", "buy")
    trades = h.engine.force_trade(BTC, "sell", Decimal("0.0010"), Decimal("94500"))
    assert [t["price"] for t in trades] == ["95000.0"]
    assert trades[0]["ask_account_id"] == 2 and trades[0]["bid_account_id"] == A
    assert (near.status, far.status) == ("filled", "open")
    trades = h.engine.force_trade(BTC, "sell", Decimal("0.0010"), None)
    assert [t["size"] for t in trades] == ["0.00020"]
    assert h.position(A)["position"] == "0.00040"
    with pytest.raises(SimError):
        h.engine.force_trade(9, "buy", Decimal("1"), None)


def test_reset_restores_initial_state_with_growing_offsets(h: Harness) -> None:
    h.order(A, 1, "0.0002", "94000", "buy")
    h.order(B, 2, "0.0002", "95000", "sell")
    h.order(A, 3, "0.0002", "95000", "buy", tif="ioc")
    pending = h.accept(14, A, **h.create_fields(4, "0.0002", "94000", "buy"))
    h.engine.set_mid(BTC, Decimal("90000"))
    offset = h.engine.book_snapshot(BTC)["offset"]
    h.take_events()
    h.engine.reset()
    h.engine.execute(pending)  # accepted before the reset: dropped
    assert h.engine.book_snapshot(BTC) == {"asks": [], "bids": [], "offset": offset + 1}
    assert h.engine.next_nonce(A, KEY) == 0
    assert h.engine.positions_json(A) == {}
    assert h.engine.active_orders_json(A, None)["orders"] == []
    assert h.engine.recent_trades_json(BTC, 10)["trades"] == []
    assert h.engine.mid(BTC) == Decimal("95000.0")
    assert h.collateral(A) == Decimal("100000")
    assert not any(isinstance(e, PositionChanged) for e in h.take_events())
    # Ids keep growing after a reset, so nothing a client remembers gets reused.
    again = h.order(A, 1, "0.0002", "94000", "buy")
    assert again.order_index == ((BTC + 1) << 48) + START_MS * 100 + 3


def test_trade_ids_and_order_indexes_never_repeat_across_restarts() -> None:
    """A later run starts its counters above an earlier run's (start ms x 1000 / x 100); no state is kept."""
    first = Harness()
    for coid in range(1, 51):
        first.order(B, coid, "0.0002", "95000", "sell")
        first.order(A, 100 + coid, "0.0002", "95000", "buy", tif="ioc")
    trades = first.engine.recent_trades_json(BTC, 100)["trades"]
    assert len(trades) == 50
    second = Harness()
    second.now = first.now + 1  # the restart comes one millisecond later
    second.engine = Engine(SPECS, FEES, clock_ms=lambda: second.now)
    for account in (A, B):
        second.engine.upsert_account(account, "premium", Decimal("100000"), {KEY: f"{account:02x}" * 40})
    second.order(B, 1, "0.0002", "95000", "sell")
    second.order(A, 2, "0.0002", "95000", "buy", tif="ioc")
    (new,) = second.engine.recent_trades_json(BTC, 1)["trades"]
    assert new["trade_id"] > max(t["trade_id"] for t in trades)
    assert new["bid_id"] > max(t["bid_id"] for t in trades)
    assert new["trade_id_str"] == str(new["trade_id"])


def test_order_index_carries_the_market_above_bit_48(h: Harness) -> None:
    """Captured orders and trades all have `order_index >> 48 == market_index + 1` (inferred rule)."""
    btc = h.order(A, 1, "0.0002", "90000", "buy")
    eth = h.order(A, 2, "0.0050", "2900", "buy", market=ETH)
    assert (btc.order_index >> 48, eth.order_index >> 48) == (BTC + 1, ETH + 1)


def test_a_create_reusing_a_resting_client_index_is_dropped_by_the_sequencer(h: Harness) -> None:
    """Accepted (the nonce moves) but never executed: no second order, no order event; only the account's
    transactions tell, with `ae` code 21728 (captured on testnet: hftbacktest, tx_history.py)."""
    first = h.order(A, 7, "0.0002", "90000", "buy")
    h.take_events()
    nonce = h.engine.next_nonce(A, KEY)
    h.send(14, A, **h.create_fields(7, "0.0002", "91000", "buy"))
    assert h.engine.next_nonce(A, KEY) == nonce + 1
    assert [o["order_index"] for o in h.engine.active_orders_json(A, None)["orders"]] == [first.order_index]
    (settled,) = h.take_events()
    assert isinstance(settled, TxSettled) and settled.account_index == A
    assert json.loads(json.loads(settled.tx["event_info"])["ae"]) == {
        "code": 21728, "message": "client order index already exists"}
    assert settled.tx["status"] == 2  # the same status as an executed tx (captured)
    assert h.engine.accounts[A].tx_log[-1]["result"].startswith("sequencer-rejected 21728")
    assert h.engine.accounts[A].pending_creates == {}

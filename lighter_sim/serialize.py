"""JSON bodies shaped exactly like the lighter-sdk 1.1.8 models (strict `model_validate` must pass).

Everything is built from the engine's scaled integers so that every price/size string carries exactly the
market's decimals (the SDK strips "." to get integers back).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounts import Account, Position
from .book import TIF_GTT, TIF_IOC, TYPE_MARKET, Order
from .markets import MarketSpec, fmt_usdc

INITIAL_MARGIN_FRACTION = Decimal("0.05")  # 5 % initial margin (20x)
IMF_TICKS = 500  # the same fraction in Lighter's integer form (1e-4 units)
# The chain the simulator stands for: Lighter mainnet, 304 (lighter-sdk: mainnet 304, testnet 300; the
# troubleshooting page: "The chainId in CreateClient must be 304 for mainnet and 300 for testnet"). It is the
# default of `sim.chain_id`, the `network_id` of `GET /`. It is not in any tx_info: it enters only the signed
# message, so a transaction signed for another chain id fails signature verification and is refused 21120
# "invalid signature", as the venue refuses it (lighter-go issue #19, in the corpus); see signatures.py.
CHAIN_ID = 304
USDC_ASSET_ID = 3

# `account_type` of the account answer: 0 = standard is verified (NautilusTrader's LighterAccountTier docs and
# every captured standard account); 1 = premium is INFERRED (no premium account answer is captured).
ACCOUNT_TYPES = {"standard": 0, "premium": 1}

_TIF_NAMES = {TIF_IOC: "immediate-or-cancel", TIF_GTT: "good-till-time", 2: "post-only"}


def l1_address(account_index: int) -> str:
    return "0x" + f"{account_index:040x}"


def order_json(order: Order, spec: MarketSpec, *, snapshot: bool) -> dict[str, Any]:
    """One order, with exactly the fields the venue sends (captured Jul-Aug 2026, REST and WebSocket).

    Verified from captures (corpus rest/accountActiveOrders testnet 2026-08-01, ws/account_all_orders testnet
    2026-07-30, Qubx mainnet Oct 2025):
    - `timestamp`, `created_at`, `updated_at` are unix SECONDS, on REST and WebSocket alike; `created_at` is
      the creation block's, while `timestamp`, `updated_at` and `block_height` follow the block of the
      order's latest change (ws/account_all_orders testnet lines 9, 13: a cancel moved them, `created_at`
      stayed; line 4 kept them only because the cancel landed in the creation block). Inferred: a fill or a
      modify moves them too (`ExchangeCore._stamp`);
    - `transaction_time` is microseconds of the order's latest change, one per change (line 13: two orders
      canceled by one transaction differ). On the venue it runs 4-8 s after the block time (`updated_at`);
      the simulator has one clock, so it is the block time, made unique to the µs;
    - `side` is "" (the side is `is_ask`);
    - `base_size` is the REMAINING size in lots (0 once filled or canceled), `base_price` the price in ticks;
    - the integrator fields are strings: "" in snapshots (REST order lists, `subscribed/` frames) and "0" in
      `update/` frames of the same order;
    - `order_version`, `market_symbol`, `market_kind` (in lighter-sdk's model) are not sent.
    """
    integrator = "" if snapshot else "0"
    return {
        "order_index": order.order_index,
        "client_order_index": order.client_order_index,
        "order_id": str(order.order_index),
        "client_order_id": str(order.client_order_index),
        "market_index": order.market_id,
        "owner_account_index": order.account_index,
        "initial_base_amount": spec.fmt_size(order.initial_size),
        "price": spec.fmt_price(order.price),
        "nonce": order.nonce,
        "remaining_base_amount": spec.fmt_size(order.remaining),
        "is_ask": order.is_ask,
        "base_size": order.remaining,
        "base_price": order.price,
        "filled_base_amount": spec.fmt_size(order.filled),
        "filled_quote_amount": fmt_usdc(spec.quote_from_ints(1, order.filled_quote)),
        "side": "",
        "type": "market" if order.order_type == TYPE_MARKET else "limit",
        "time_in_force": _TIF_NAMES.get(order.time_in_force, "Unknown"),
        "reduce_only": order.reduce_only,
        "trigger_price": spec.fmt_price(order.trigger_price),
        "order_expiry": order.order_expiry,
        "status": order.status,
        "trigger_status": "na",
        "trigger_time": 0,
        "parent_order_index": 0,
        "parent_order_id": "0",
        "to_trigger_order_id_0": "0",
        "to_trigger_order_id_1": "0",
        "to_cancel_order_id_0": "0",
        "integrator_fee_collector_index": integrator,
        "integrator_taker_fee": integrator,
        "integrator_maker_fee": integrator,
        "order_flags": 0,
        "block_height": order.block_height,
        "timestamp": order.updated_ms // 1000,
        "created_at": order.created_ms // 1000,
        "updated_at": order.updated_ms // 1000,
        "transaction_time": order.transaction_us,
    }


def simple_order_json(order: Order, spec: MarketSpec) -> dict[str, Any]:
    return {
        "order_index": order.order_index,
        "order_id": str(order.order_index),
        "owner_account_index": order.account_index,
        "initial_base_amount": spec.fmt_size(order.initial_size),
        "remaining_base_amount": spec.fmt_size(order.remaining),
        "price": spec.fmt_price(order.price),
        "order_expiry": order.order_expiry,
        "transaction_time": 0,  # captured as 0 on every resting order (nautilus mainnet 2026-05-05)
    }


def trade_json(
    *,
    trade_id: int,
    tx_hash: str,
    spec: MarketSpec,
    maker: Order,
    taker: Order,
    qty: int,
    price: int,
    notional: Decimal,
    block_height: int,
    now_ms: int,
    maker_side: dict[str, Any],
    taker_side: dict[str, Any],
) -> dict[str, Any]:
    """One trade, with the fields and order of the newest captures (REST recentTrades mainnet 2026-05-05,
    WebSocket trade mainnet 2026-07-28; REST trades testnet 2025-12-22 for an account's own trades).

    Verified: `maker_fee` / `taker_fee` are integers LEFT OUT when zero, and so are
    `*_position_sign_changed` when false; `*_position_size_before` is signed (a short shows "-76.0264");
    `ask_client_id` / `bid_client_id` (with their `_str` twins) are present, 0 included; `timestamp` is ms and
    `transaction_time` µs; `tx_hash` is 80 hex digits. The fee fields behave as fee RATES in millionths
    (28 = 0.28 bps on trades of 1.18, 291 and 314 USD): inferred from captures, not documented.
    Not sent by the venue (though in lighter-sdk's model): the account PnLs, integrator fees, allocated
    margins, order versions, market symbol and kind.
    """
    ask, bid = (maker, taker) if maker.is_ask else (taker, maker)
    body: dict[str, Any] = {
        "trade_id": trade_id,
        "trade_id_str": str(trade_id),
        "tx_hash": tx_hash,
        "type": "trade",
        "market_id": spec.market_id,
        "size": spec.fmt_size(qty),
        "price": spec.fmt_price(price),
        "usd_amount": fmt_usdc(notional),
        "ask_id": ask.order_index,
        "ask_id_str": str(ask.order_index),
        "bid_id": bid.order_index,
        "bid_id_str": str(bid.order_index),
        "ask_client_id": ask.client_order_index,
        "ask_client_id_str": str(ask.client_order_index),
        "bid_client_id": bid.client_order_index,
        "bid_client_id_str": str(bid.client_order_index),
        "ask_account_id": ask.account_index,
        "bid_account_id": bid.account_index,
        "is_maker_ask": maker.is_ask,
        "block_height": block_height,
        "timestamp": now_ms,
    }
    for role, facts in (("taker", taker_side), ("maker", maker_side)):
        if facts["fee_rate"]:
            body[f"{role}_fee"] = facts["fee_rate"]
        body[f"{role}_position_size_before"] = spec.fmt_size(facts["size_before"])
        body[f"{role}_entry_quote_before"] = fmt_usdc(facts["entry_quote_before"])
        body[f"{role}_initial_margin_fraction_before"] = IMF_TICKS
        if facts["sign_changed"]:
            body[f"{role}_position_sign_changed"] = True
    body["transaction_time"] = now_ms * 1000
    return body


def unrealized_pnl(pos: Position, spec: MarketSpec, mid: int) -> Decimal:
    if pos.size == 0:
        return Decimal(0)
    return (spec.price_from_int(mid) - pos.avg_entry) * spec.size_from_int(pos.size)


def position_json(pos: Position, spec: MarketSpec, mid: int, open_orders: int) -> dict[str, Any]:
    size = abs(pos.size)
    return {  # the fields of the newest captured positions (WS account_all_positions, testnet 2026-07-30)
        "market_id": spec.market_id,
        "symbol": spec.symbol,
        "initial_margin_fraction": f"{INITIAL_MARGIN_FRACTION * 100:.2f}",
        "open_order_count": open_orders,
        "pending_order_count": 0,
        "position_tied_order_count": 0,
        "sign": -1 if pos.size < 0 else 1,  # captured: a flat position is sign 1 with size "0.00"
        "position": spec.fmt_size(size),
        "avg_entry_price": spec.fmt_price(_round_price(pos.avg_entry, spec)),
        "position_value": fmt_usdc(spec.quote_from_ints(mid, size)),
        "unrealized_pnl": fmt_usdc(unrealized_pnl(pos, spec, mid)),
        "realized_pnl": fmt_usdc(pos.realized),
        "liquidation_price": "0",
        "margin_mode": 0,
        "margin_set_flag": 1,  # as captured on testnet 2026-07-30 (absent in Oct 2025)
        "allocated_margin": "0.000000",
    }


def _round_price(price: Decimal, spec: MarketSpec) -> int:
    return int(price.scaleb(spec.price_decimals).to_integral_value())


def api_key_json(account: Account, api_key_index: int) -> dict[str, Any]:
    return {
        "account_index": account.index,
        "api_key_index": api_key_index,
        "nonce": account.nonces.get(api_key_index, 0),
        "public_key": account.api_keys[api_key_index],
        "transaction_time": account.key_tx_time.get(api_key_index, 0),
    }


def detailed_account_json(
    account: Account,
    positions: list[dict[str, Any]],
    unrealized: Decimal,
    initial_margin: Decimal,
    now_ms: int,
) -> dict[str, Any]:
    """One account of the `account` answer. The keys are those of the captured answer (ccxt, testnet 2025-11)
    plus those of NautilusTrader's account fixture (transaction_time, account_trading_mode, can_rfq,
    can_rfq_market_ids, created_at, metadata, the cross margin requirements, pending_unlocks,
    approved_integrators). The inner `code` is 0 in both. Nothing else: lighter-sdk's pool_info, agent_enabled
    and bo_positions are in neither."""
    equity = account.collateral + unrealized
    available = max(Decimal(0), equity - initial_margin)
    return {
        "code": 0,
        "account_type": ACCOUNT_TYPES[account.tier],
        "index": account.index,
        "l1_address": l1_address(account.index),
        "cancel_all_time": account.cancel_all_time,
        "total_order_count": len(account.open_orders),
        "total_isolated_order_count": 0,
        "pending_order_count": sum(account.pending_per_market.values()),
        "available_balance": fmt_usdc(available),
        "status": 1,
        "collateral": fmt_usdc(account.collateral),
        "transaction_time": now_ms * 1000,
        "account_trading_mode": 0,
        "account_index": account.index,
        "name": "",
        "description": "",
        "can_invite": False,
        "referral_points_percentage": "",
        "can_rfq": False,
        "can_rfq_market_ids": None,
        "created_at": account.created_ms,
        "metadata": {"color": ""},
        "positions": positions,
        "assets": [
            {
                "symbol": "USDC",
                "asset_id": USDC_ASSET_ID,
                "balance": fmt_usdc(account.collateral),
                "locked_balance": "0.000000",
                "margin_mode": "enabled",
                "margin_balance": fmt_usdc(equity),
            }
        ],
        "total_asset_value": fmt_usdc(equity),
        "cross_asset_value": fmt_usdc(equity),
        "cross_initial_margin_requirement": fmt_usdc(initial_margin),
        "cross_maintenance_margin_requirement": fmt_usdc(initial_margin * Decimal("0.6")),
        "shares": [],
        "pending_unlocks": [],
        "approved_integrators": [],
    }


def account_limits_json(tier: str, maker_rate: int, taker_rate: int) -> dict[str, Any]:
    """`GET /api/v1/accountLimits` (lighter-sdk 1.1.8 `AccountLimits`), keys as captured (hftbacktest, testnet
    2026-07-30, a standard account: user_tier "standard", both fee ticks 0, zeros present).

    `user_tier` is "standard" or "premium" (the premium word is inferred: only "standard" was captured).
    `current_maker_fee_tick` / `current_taker_fee_tick` are the account's trade fee rates in the trades' unit,
    millionths of notional (inferred: the captured standard account answered 0 and trades at 0).
    `bo_user_tier_name` / `bo_fee_rate`, required by the SDK model, were not in the capture and are not sent.
    """
    return {
        "max_llp_percentage": 100,
        "max_llp_amount": "0.000000",
        "user_tier": tier,
        "can_create_public_pool": False,
        "user_tier_name": tier,
        "current_maker_fee_tick": maker_rate,
        "current_taker_fee_tick": taker_rate,
        "leased_lit": "0.00000000",
        "effective_lit_stakes": "0.00000000",
        "user_tier_last_update": 0,
    }


def _fee_percent(rate: Decimal) -> str:
    return f"{rate * 100:.4f}"  # a percentage with 4 decimals, as captured ("0.0000", liquidation "1.0000")


def order_book_json(spec: MarketSpec, fees: tuple[Decimal, Decimal], created_ms: int) -> dict[str, Any]:
    """One market of `orderBooks`: exactly the 19 keys of the captured answer (hftbacktest, mainnet
    2026-07-31, five markets, perp and spot, active and inactive: the same keys on each). No
    size_decimals/price_decimals there, only supported_*; lighter-sdk's settlement, outcome and open_interest
    fields are not sent."""
    maker, taker = fees
    return {
        "symbol": spec.symbol,
        "market_id": spec.market_id,
        "market_type": "perp",
        "base_asset_id": 0,
        "quote_asset_id": USDC_ASSET_ID,
        "status": "active",
        "taker_fee": _fee_percent(taker),
        "is_taker_fee_enabled": taker > 0,
        "maker_fee": _fee_percent(maker),
        "is_maker_fee_enabled": maker > 0,
        "liquidation_fee": "1.0000",
        "min_base_amount": spec.fmt_size(spec.min_base_amount),
        "min_quote_amount": fmt_usdc(spec.min_quote_amount),
        "order_quote_limit": "281474976.710655",
        "supported_size_decimals": spec.size_decimals,
        "supported_price_decimals": spec.price_decimals,
        "supported_quote_decimals": 6,
        "created_at": str(created_ms),
        "multiplier": "1.000000000000000000",
    }


def perps_detail_json(
    spec: MarketSpec,
    fees: tuple[Decimal, Decimal],
    last_trade_price: int,
    open_interest: Decimal,
    daily_trades: int,
) -> dict[str, Any]:
    """One market of `orderBookDetails`: exactly the keys of the captured answer (NautilusTrader, mainnet
    2026-05-05). lighter-sdk's funding clamps, mark/index prices, created_at and the like are not in it."""
    body = order_book_json(spec, fees, 0)
    del body["created_at"], body["multiplier"]
    last = float(spec.price_from_int(last_trade_price))
    body.update(
        {
            "size_decimals": spec.size_decimals,
            "price_decimals": spec.price_decimals,
            "quote_multiplier": 1,
            "default_initial_margin_fraction": IMF_TICKS,
            "min_initial_margin_fraction": 200,
            "maintenance_margin_fraction": 300,
            "closeout_margin_fraction": 200,
            "last_trade_price": last,
            "daily_trades_count": daily_trades,
            "daily_base_token_volume": 0,
            "daily_quote_token_volume": 0,
            "daily_price_low": last,
            "daily_price_high": last,
            "daily_price_change": 0.0,
            "open_interest": float(open_interest),
            "daily_chart": {},
            "market_config": {
                "market_margin_mode": 0,
                "insurance_fund_account_index": (1 << 48) - 1,
                "liquidation_mode": 0,
                "force_reduce_only": False,
                "trading_hours": "",
                "funding_fee_discounts_enabled": False,
                "hidden": False,
                "rfq_enabled": False,
            },
            "strategy_index": 0,
        }
    )
    return body

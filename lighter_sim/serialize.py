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
NETWORK_ID = 304
USDC_ASSET_ID = 3

_TIF_NAMES = {TIF_IOC: "immediate-or-cancel", TIF_GTT: "good-till-time", 2: "post-only"}


def l1_address(account_index: int) -> str:
    return "0x" + f"{account_index:040x}"


def order_json(order: Order, spec: MarketSpec) -> dict[str, Any]:
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
        "base_size": order.initial_size,
        "base_price": order.price,
        "filled_base_amount": spec.fmt_size(order.filled),
        "filled_quote_amount": fmt_usdc(spec.quote_from_ints(1, order.filled_quote)),
        "side": "sell" if order.is_ask else "buy",
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
        "block_height": order.block_height,
        "timestamp": order.updated_ms,
        "created_at": order.created_ms,
        "updated_at": order.updated_ms,
        "transaction_time": order.transaction_us,
        "integrator_fee_collector_index": "0",
        "integrator_maker_fee": "0",
        "integrator_taker_fee": "0",
        "order_flags": 0,
        "order_version": 0,
        "market_symbol": spec.symbol,
        "market_kind": "perps",
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
        "transaction_time": order.transaction_us,
    }


def unrealized_pnl(pos: Position, spec: MarketSpec, mid: int) -> Decimal:
    if pos.size == 0:
        return Decimal(0)
    return (spec.price_from_int(mid) - pos.avg_entry) * spec.size_from_int(pos.size)


def position_json(pos: Position, spec: MarketSpec, mid: int, open_orders: int) -> dict[str, Any]:
    size = abs(pos.size)
    return {
        "market_id": spec.market_id,
        "symbol": spec.symbol,
        "initial_margin_fraction": f"{INITIAL_MARGIN_FRACTION * 100:.2f}",
        "open_order_count": open_orders,
        "pending_order_count": 0,
        "position_tied_order_count": 0,
        "sign": pos.sign,
        "position": spec.fmt_size(size),
        "avg_entry_price": spec.fmt_price(_round_price(pos.avg_entry, spec)),
        "position_value": fmt_usdc(spec.quote_from_ints(mid, size)),
        "unrealized_pnl": fmt_usdc(unrealized_pnl(pos, spec, mid)),
        "realized_pnl": fmt_usdc(pos.realized),
        "liquidation_price": "0",
        "total_funding_paid_out": "0",
        "margin_mode": 0,
        "allocated_margin": "0.000000",
        "total_discount": "0",
        "margin_set_flag": 0,
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
    equity = account.collateral + unrealized
    available = max(Decimal(0), equity - initial_margin)
    return {
        "code": 200,
        "message": "",
        "account_type": 0,
        "account_trading_mode": 0,
        "index": account.index,
        "l1_address": l1_address(account.index),
        "cancel_all_time": account.cancel_all_time,
        "total_order_count": len(account.open_orders),
        "total_isolated_order_count": 0,
        "pending_order_count": sum(account.pending_per_market.values()),
        "available_balance": fmt_usdc(available),
        "status": 1,
        "collateral": fmt_usdc(account.collateral),
        "account_index": account.index,
        "name": "",
        "description": "",
        "can_invite": False,
        "referral_points_percentage": "0",
        "positions": positions,
        "assets": [
            {
                "symbol": "USDC",
                "asset_id": USDC_ASSET_ID,
                "balance": fmt_usdc(account.collateral),
                "locked_balance": "0.000000",
                "margin_balance": fmt_usdc(equity),
                "margin_mode": "enabled",
                "multiplier": "1.000000000000000000",
            }
        ],
        "total_asset_value": fmt_usdc(equity),
        "cross_asset_value": fmt_usdc(equity),
        "pool_info": {
            "status": 0,
            "operator_fee": "0",
            "min_operator_share_rate": "0",
            "total_shares": 0,
            "operator_shares": 0,
            "annual_percentage_yield": 0,
            "daily_returns": [],
            "share_prices": [],
            "sharpe_ratio": 0,
            "strategies": [],
        },
        "shares": [],
        "created_at": account.created_ms,
        "transaction_time": now_ms * 1000,
        "pending_unlocks": [],
        "approved_integrators": [],
        "can_rfq": False,
        "cross_initial_margin_requirement": fmt_usdc(initial_margin),
        "cross_maintenance_margin_requirement": fmt_usdc(initial_margin * Decimal("0.6")),
        "can_rfq_market_ids": [],
        "metadata": {"color": ""},
        "agent_enabled": False,
        "bo_positions": [],
    }


def _fee_percent(rate: Decimal) -> str:
    return f"{rate * 100:.4f}"


def order_book_json(
    spec: MarketSpec, fees: tuple[Decimal, Decimal], created_ms: int, open_interest: Decimal
) -> dict[str, Any]:
    """The `OrderBook` model (orderBooks endpoint): no size_decimals/price_decimals, only supported_*."""
    maker, taker = fees
    return {
        "symbol": spec.symbol,
        "market_id": spec.market_id,
        "market_type": "perp",
        "base_asset_id": 0,
        "quote_asset_id": USDC_ASSET_ID,
        "status": "active",
        "taker_fee": _fee_percent(taker),
        "maker_fee": _fee_percent(maker),
        "liquidation_fee": "1.0000",
        "min_base_amount": spec.fmt_size(spec.min_base_amount),
        "min_quote_amount": fmt_usdc(spec.min_quote_amount),
        "supported_size_decimals": spec.size_decimals,
        "supported_price_decimals": spec.price_decimals,
        "supported_quote_decimals": 6,
        "order_quote_limit": "281474976.710655",
        "is_maker_fee_enabled": maker > 0,
        "is_taker_fee_enabled": taker > 0,
        "created_at": str(created_ms),
        "multiplier": "1.000000000000000000",
        "start_timestamp": 0,
        "end_timestamp": 0,
        "settlement_type": 0,
        "settlement_price": 0,
        "settlement_cap": 0,
        "outcome": 0,
        "default_price": 0,
        "operator_account_index": 0,
        "is_frozen": False,
        "open_interest": f"{open_interest:f}",
    }


def perps_detail_json(
    spec: MarketSpec,
    fees: tuple[Decimal, Decimal],
    created_ms: int,
    mid: int,
    last_trade_price: int,
    open_interest: Decimal,
    daily_trades: int,
) -> dict[str, Any]:
    """The `PerpsOrderBookDetail` model (orderBookDetails endpoint)."""
    body = order_book_json(spec, fees, created_ms, open_interest)
    body.pop("open_interest")
    mid_str = spec.fmt_price(mid)
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
                "funding_fee_discounts_enabled": False,
                "trading_hours": "",
                "hidden": False,
                "rfq_enabled": False,
            },
            "strategy_index": 0,
            "funding_clamp_small": "0.0500",
            "funding_clamp_big": "4.0000",
            "base_interest_rate": "0.0100",
            "mark_price": mid_str,
            "index_price": mid_str,
            "market_flags": 0,
            "funding_premium_multiplier": 100,
        }
    )
    return body

"""Orders, trades and positions as the venue's WebSocket frames carry them.

The engine's dicts follow lighter-sdk's REST models (strict `model_validate` of REST bodies must pass),
which hold more fields than the venue's WebSocket objects. These projections keep exactly the fields of the
newest captures, in the venue's order, so the stream never carries a field the venue does not send:
- orders: `account_all_orders` captured on testnet, July 2026;
- positions: `account_all_positions` captured on testnet, July 2026 (no `total_funding_paid_out`,
  `total_discount`: the REST-only fields);
- trades: `trade` channel captured on mainnet, July 2026 (the account channels carry the same object). Fees
  and the `*_position_sign_changed` flags are left out when zero / false, as in every capture.
"""

from __future__ import annotations

from typing import Any

ORDER_KEYS = (
    "order_index", "client_order_index", "order_id", "client_order_id", "market_index",
    "owner_account_index", "initial_base_amount", "price", "nonce", "remaining_base_amount", "is_ask",
    "base_size", "base_price", "filled_base_amount", "filled_quote_amount", "side", "type", "time_in_force",
    "reduce_only", "trigger_price", "order_expiry", "status", "trigger_status", "trigger_time",
    "parent_order_index", "parent_order_id", "to_trigger_order_id_0", "to_trigger_order_id_1",
    "to_cancel_order_id_0", "integrator_fee_collector_index", "integrator_taker_fee",
    "integrator_maker_fee", "order_flags", "block_height", "timestamp", "created_at", "updated_at",
    "transaction_time",
)  # fmt: skip

POSITION_KEYS = (
    "market_id", "symbol", "initial_margin_fraction", "open_order_count", "pending_order_count",
    "position_tied_order_count", "sign", "position", "avg_entry_price", "position_value", "unrealized_pnl",
    "realized_pnl", "liquidation_price", "margin_mode", "margin_set_flag", "allocated_margin",
)  # fmt: skip

TRADE_KEYS = (
    "trade_id", "trade_id_str", "tx_hash", "type", "market_id", "size", "price", "usd_amount", "ask_id",
    "ask_id_str", "bid_id", "bid_id_str", "ask_client_id", "ask_client_id_str", "bid_client_id",
    "bid_client_id_str", "ask_account_id", "bid_account_id", "is_maker_ask", "block_height", "timestamp",
    "taker_fee", "taker_position_size_before", "taker_entry_quote_before",
    "taker_initial_margin_fraction_before", "taker_position_sign_changed", "maker_fee",
    "maker_position_size_before", "maker_entry_quote_before", "maker_initial_margin_fraction_before",
    "maker_position_sign_changed", "transaction_time",
)  # fmt: skip

# Left out when zero / false (Go's omitempty): captures show them only when set.
TRADE_OMITTED_WHEN_EMPTY = frozenset(
    {"taker_fee", "maker_fee", "taker_position_sign_changed", "maker_position_sign_changed"}
)


def _project(source: dict[str, Any], keys: tuple[str, ...], omit_empty: frozenset[str] = frozenset()) -> dict:
    return {k: source[k] for k in keys if k in source and not (k in omit_empty and not source[k])}


def ws_order(order: dict[str, Any]) -> dict[str, Any]:
    return _project(order, ORDER_KEYS)


def ws_position(position: dict[str, Any]) -> dict[str, Any]:
    return _project(position, POSITION_KEYS)


def ws_trade(trade: dict[str, Any]) -> dict[str, Any]:
    return _project(trade, TRADE_KEYS, TRADE_OMITTED_WHEN_EMPTY)


def ws_orders_by_market(orders: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Only markets with orders: the venue's snapshot of an account without orders is `"orders":{}`."""
    return {market: [ws_order(o) for o in listed] for market, listed in orders.items() if listed}


def ws_positions(positions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {market: ws_position(p) for market, p in positions.items()}

"""Accounts, API keys, nonces and positions (signed size, average entry, realized PnL)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from .book import Order

# Accounts the simulator runs itself: background liquidity (maker) and synthetic takers.
LIQUIDITY_ACCOUNT = 1
TAKER_ACCOUNT = 2
INTERNAL_ACCOUNTS = frozenset({LIQUIDITY_ACCOUNT, TAKER_ACCOUNT})

TX_LOG_LIMIT = 5000
INACTIVE_LIMIT = 5000
ACCOUNT_TRADES_LIMIT = 5000
ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    market_id: int
    size: int = 0  # signed, scaled by size_decimals
    avg_entry: Decimal = ZERO  # price units
    realized: Decimal = ZERO  # USDC

    @property
    def sign(self) -> int:
        return (self.size > 0) - (self.size < 0)

    def apply_fill(self, delta: int, price: Decimal, size_scale: int) -> Decimal:
        """Applies a signed fill of `delta` lots at `price`; returns the PnL it realizes (USDC).

        The average entry is weighted on increase, unchanged on reduce, and reset to the fill price on a flip.
        """
        old = self.size
        new = old + delta
        realized = ZERO
        if old == 0 or (old > 0) == (delta > 0):
            total = abs(new)
            self.avg_entry = (self.avg_entry * abs(old) + price * abs(delta)) / total
        else:
            closed = min(abs(old), abs(delta))
            direction = 1 if old > 0 else -1
            realized = (price - self.avg_entry) * closed * direction
            realized = realized.scaleb(-size_scale)
            if new == 0:
                self.avg_entry = ZERO
            elif (new > 0) != (old > 0):
                self.avg_entry = price
        self.size = new
        self.realized += realized
        return realized


@dataclass
class Account:
    index: int
    tier: str
    initial_collateral: Decimal
    collateral: Decimal
    api_keys: dict[int, str]
    internal: bool = False
    nonces: dict[int, int] = field(default_factory=dict)
    key_tx_time: dict[int, int] = field(default_factory=dict)  # api key -> µs of its last accepted tx
    positions: dict[int, Position] = field(default_factory=dict)
    open_orders: dict[int, Order] = field(default_factory=dict)  # order_index -> order
    by_client: dict[int, Order] = field(default_factory=dict)  # client_order_index -> latest open order
    pending_creates: dict[tuple[int, int], int] = field(default_factory=dict)  # (market, coid) -> count
    pending_per_market: dict[int, int] = field(default_factory=dict)
    open_per_market: dict[int, int] = field(default_factory=dict)
    inactive: deque[Order] = field(default_factory=lambda: deque(maxlen=INACTIVE_LIMIT))
    all_orders_by_client: dict[int, Order] = field(default_factory=dict)  # latest order per coid, any state
    trades: deque[dict] = field(default_factory=lambda: deque(maxlen=ACCOUNT_TRADES_LIMIT))
    tx_log: deque[dict] = field(default_factory=lambda: deque(maxlen=TX_LOG_LIMIT))
    cancel_all_time: int = 0
    created_ms: int = 0

    def position(self, market_id: int) -> Position:
        pos = self.positions.get(market_id)
        if pos is None:
            pos = self.positions[market_id] = Position(market_id)
        return pos

    def position_size(self, market_id: int) -> int:
        pos = self.positions.get(market_id)
        return pos.size if pos else 0

    def add_open(self, order: Order) -> None:
        self.open_orders[order.order_index] = order
        self.by_client[order.client_order_index] = order
        self.open_per_market[order.market_id] = self.open_per_market.get(order.market_id, 0) + 1

    def drop_open(self, order: Order) -> None:
        if self.open_orders.pop(order.order_index, None) is None:
            return
        if self.by_client.get(order.client_order_index) is order:
            del self.by_client[order.client_order_index]
        self.open_per_market[order.market_id] -= 1

    def find_open(self, market_id: int, index: int) -> Order | None:
        """An open order by order index (>= 2^48) or client order index (< 2^48)."""
        order = self.open_orders.get(index) if index >= 1 << 48 else self.by_client.get(index)
        if order is None or order.market_id != market_id:
            return None
        return order

    def reset(self) -> None:
        self.collateral = self.initial_collateral
        self.nonces = dict.fromkeys(self.api_keys, 0)
        self.key_tx_time = dict.fromkeys(self.api_keys, 0)
        self.positions.clear()
        self.open_orders.clear()
        self.by_client.clear()
        self.pending_creates.clear()
        self.pending_per_market.clear()
        self.open_per_market.clear()
        self.inactive.clear()
        self.all_orders_by_client.clear()
        self.trades.clear()
        self.tx_log.clear()
        self.cancel_all_time = 0

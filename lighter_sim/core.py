"""Exchange state and the matching core: order lifecycle, fills, positions, fees, margin and events.

`Engine` (engine.py) adds transaction intake on top; this module knows nothing about tx_info JSON.
Every public engine operation runs inside `_operation()`, which fixes the clock for the operation and
publishes at its end a PositionChanged for each market whose count of open orders it changed (unless a fill
reported it already) and one BookChanged per touched market.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from .accounts import INTERNAL_ACCOUNTS, LIQUIDITY_ACCOUNT, TAKER_ACCOUNT, Account, Position
from .book import TIF_IOC, TIF_POST_ONLY, TYPE_MARKET, Order, OrderBook
from .events import BookChanged, OrderChanged, PositionChanged, SimEvent, TradeHappened
from .fees import fee_paid, rates_of
from .markets import MarketSpec
from .serialize import INITIAL_MARGIN_FRACTION, order_json, position_json, trade_json

log = logging.getLogger("lighter_sim.engine")

ORDER_INDEX_SHIFT = 48  # exchange order indexes are >= 2^48 (client order indexes are below)
# Id space reserved per millisecond of wall-clock start time (see ExchangeCore.__init__). Orders get less so
# that the sequence stays below 2^48 (start ms x 100 reaches 2^48 in 2059).
TRADE_IDS_PER_MS = 1000
ORDER_IDS_PER_MS = 100
TRADES_LIMIT = 20000
MARKET_TRADES_LIMIT = 2000
BY_CLIENT_LIMIT = 20000  # orders per account findable by client index once ended
EXPIRY_COMPACT_AT = 10000
ZERO = Decimal(0)

# Why a taker stopped matching before being filled.
STOP_BOOK_EMPTY = "empty"
STOP_PRICE_LIMIT = "limit"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ExchangeCore:
    def __init__(
        self,
        markets: list[MarketSpec],
        fees: dict[str, tuple[Decimal, Decimal]],
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.specs: dict[int, MarketSpec] = {m.market_id: m for m in markets}
        self.fees = {tier: (Decimal(maker), Decimal(taker)) for tier, (maker, taker) in fees.items()}
        # The venue's fee unit (rates in millionths), converted once here: see fees.py.
        self.fee_rates = rates_of(self.fees)
        self.clock_ms = clock_ms
        self._listeners: list[Callable[[SimEvent], None]] = []
        self.created_ms = clock_ms()
        self.books = {m: OrderBook(m) for m in self.specs}
        self.accounts: dict[int, Account] = {}
        # Trade ids and order indexes never repeat across restarts, as the venue's do not: each run starts its
        # counters at its start time in ms x 1000 (trades) or x 100 (orders). A later run starts above every
        # id an earlier run used unless that run averaged more than 1000 trades (100 orders) per millisecond
        # of its life, or the wall clock stepped back. Nothing is persisted, so a kill -9 loses nothing.
        # An order index is (market_id + 1) << 48 plus that sequence, as in every captured order and trade
        # (`order_index >> 48 == market_index + 1`; inferred from captures, not documented).
        self._next_order_seq = self.created_ms * ORDER_IDS_PER_MS
        self._next_trade_id = self.created_ms * TRADE_IDS_PER_MS
        self._next_seq = 1  # time priority and inactive-history ordering
        self.block_height = 0
        self._now_ms = self.created_ms
        self._last_change_us = 0  # the latest order change's transaction_time (`_stamp`)
        # (account, market) -> its open orders as last reported, where this operation changed them
        self._open_before: dict[tuple[int, int], int] = {}
        self._tx_hash = ""
        self._depth = 0
        for index in sorted(INTERNAL_ACCOUNTS):
            self.accounts[index] = Account(index, "standard", ZERO, ZERO, {}, internal=True)
        self._reset_market_state()

    def _reset_market_state(self) -> None:
        self.mids: dict[int, int] = {m: s.initial_price_int for m, s in self.specs.items()}
        self.last_trade_price: dict[int, int] = dict(self.mids)
        self.trades: deque[dict[str, Any]] = deque(maxlen=TRADES_LIMIT)
        self.market_trades: dict[int, deque[dict[str, Any]]] = {
            m: deque(maxlen=MARKET_TRADES_LIMIT) for m in self.specs
        }
        self.trade_counts: dict[int, int] = dict.fromkeys(self.specs, 0)
        self._expiries: list[tuple[int, int, Order]] = []
        self._expiry_compact_at = EXPIRY_COMPACT_AT

    # -- events ------
    def add_listener(self, callback: Callable[[SimEvent], None]) -> None:
        self._listeners.append(callback)

    def _emit(self, event: SimEvent) -> None:
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                # A broken subscriber must not leave the book half-updated; the engine carries on.
                log.exception("event listener failed on %s; engine state is unaffected", type(event).__name__)

    @contextmanager
    def _operation(self, tx_hash: str = "", now_ms: int | None = None) -> Iterator[None]:
        """One state change: one clock reading (or `now_ms`), then one BookChanged per touched market."""
        outer = self._depth == 0
        if outer:
            self._now_ms = self.clock_ms() if now_ms is None else now_ms
            self._tx_hash = tx_hash
            self.block_height += 1
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if outer:
                self._report_open_counts()
                self._flush_books()

    def _open_count_changing(self, account: Account, market_id: int) -> None:
        """`account`'s open orders in `market_id` are about to change (an order rests or leaves the book)."""
        if not account.internal:
            count = account.open_per_market.get(market_id, 0)
            self._open_before.setdefault((account.index, market_id), count)

    def _report_open_counts(self) -> None:
        """A position update for each market whose `open_order_count` the operation changed and no later
        position update reported. Verified (ws/account_all_positions/hftbacktest_testnet-516-2026-07-30.jsonl
        lines 3, 4, 6; tests/wire/README.md "Session order"): an order placed or canceled is followed by
        `update/account_all_positions` with the new count, the position unchanged. Inferred: a modify that
        leaves the count as it was sends none, and `account_all` carries the same update."""
        changed, self._open_before = self._open_before, {}
        for (index, market_id), before in changed.items():
            account = self.accounts.get(index)
            if account is not None and account.open_per_market.get(market_id, 0) != before:
                self._position_changed(account, market_id)

    def _flush_books(self) -> None:
        for market_id, book in self.books.items():
            changes = book.take_changes()
            if changes is None:
                continue
            spec = self.specs[market_id]
            book.offset += 1
            asks, bids = changes
            self._emit(
                BookChanged(
                    market_id,
                    book.offset,
                    [{"price": spec.fmt_price(p), "size": spec.fmt_size(s)} for p, s in asks],
                    [{"price": spec.fmt_price(p), "size": spec.fmt_size(s)} for p, s in bids],
                )
            )

    def _order_changed(self, order: Order) -> None:
        if order.account_index in INTERNAL_ACCOUNTS:
            return  # nobody subscribes to the simulator's own accounts; skip the serialization cost
        self._emit(
            OrderChanged(
                order.account_index,
                order.market_id,
                order_json(order, self.specs[order.market_id], snapshot=False),
            )
        )

    def _position_changed(self, account: Account, market_id: int) -> None:
        self._open_before.pop((account.index, market_id), None)  # this update reports the count as it is now
        self._emit(PositionChanged(account.index, market_id, self.position_dict(account, market_id)))

    def position_dict(self, account: Account, market_id: int) -> dict[str, Any]:
        pos = account.positions.get(market_id) or Position(market_id)
        return position_json(
            pos, self.specs[market_id], self.mids[market_id], account.open_per_market.get(market_id, 0)
        )

    # -- order lifecycle ------
    def _new_order(self, account: Account, market_id: int, **fields: Any) -> Order:
        order = Order(
            order_index=((market_id + 1) << ORDER_INDEX_SHIFT) + self._next_order_seq,
            account_index=account.index,
            market_id=market_id,
            created_ms=self._now_ms,
            updated_ms=self._now_ms,
            block_height=self.block_height,
            seq=self._take_seq(),
            **fields,
        )
        self._stamp(order)
        self._next_order_seq += 1
        if not account.internal:
            self._remember_by_client(account, order)
        return order

    def _stamp(self, order: Order) -> None:
        """`order` changes in this operation (created, filled, canceled, modified): it takes the operation's
        block time and height, and a `transaction_time` in µs that no other change shares.

        Verified (ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl lines 9, 13): a cancel moves
        the order's `timestamp`, `updated_at` and `block_height` to its block, `created_at` stays; two orders
        ended by one transaction carry distinct `transaction_time`s. Inferred: a fill and a modify move them
        the same way (no capture shows either on a resting order)."""
        order.updated_ms = self._now_ms
        order.block_height = self.block_height
        self._last_change_us = max(self._now_ms * 1000, self._last_change_us + 1)
        order.transaction_us = self._last_change_us

    @staticmethod
    def _remember_by_client(account: Account, order: Order) -> None:
        """Latest order per client index, for lookups in any state; the oldest ended ones are forgotten."""
        known = account.all_orders_by_client
        known.pop(order.client_order_index, None)  # re-insert at the end: the dict stays oldest-first
        known[order.client_order_index] = order
        while len(known) > BY_CLIENT_LIMIT:
            oldest_coid = next(iter(known))
            oldest = known.pop(oldest_coid)
            if oldest.status == "open":
                known[oldest_coid] = oldest  # still open: keep it, now at the young end
                break

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _rest(self, order: Order) -> None:
        account = self.accounts[order.account_index]
        self.books[order.market_id].add(order)
        self._open_count_changing(account, order.market_id)
        account.add_open(order)
        if order.order_expiry > 0:
            heapq.heappush(self._expiries, (order.order_expiry, order.order_index, order))
            if len(self._expiries) > self._expiry_compact_at:
                # Ended orders keep their (28-day) entries until due; drop them instead of growing forever.
                self._expiries = [e for e in self._expiries if e[2].status == "open"]
                heapq.heapify(self._expiries)
                self._expiry_compact_at = max(EXPIRY_COMPACT_AT, 2 * len(self._expiries))

    def _close(self, order: Order, status: str) -> None:
        """Ends an order (resting or not) with a final status and publishes it."""
        account = self.accounts[order.account_index]
        if order.status == "open":
            self.books[order.market_id].remove(order)
            self._open_count_changing(account, order.market_id)
            account.drop_open(order)
        order.status = status
        self._stamp(order)
        if not account.internal:
            order.closed_seq = self._take_seq()
            account.inactive.append(order)
        self._order_changed(order)

    def _cancel_orders(self, account: Account, market_id: int | None, status: str = "canceled") -> int:
        victims = [o for o in account.open_orders.values() if market_id is None or o.market_id == market_id]
        for order in victims:
            self._close(order, status)
        return len(victims)

    # -- matching ------
    def crosses(self, market_id: int, is_ask: bool, price: int) -> bool:
        best = self.books[market_id].best(not is_ask)
        if best is None:
            return False
        return best <= price if not is_ask else best >= price

    def _match(self, taker: Order, limit: int | None) -> str | None:
        """Fills `taker` against the other side, best price first, up to `limit` (None: no limit).

        Returns None when filled, else why it stopped (STOP_BOOK_EMPTY / STOP_PRICE_LIMIT).
        """
        book = self.books[taker.market_id]
        maker_side = not taker.is_ask
        while taker.remaining > 0:
            best = book.best(maker_side)
            if best is None:
                return STOP_BOOK_EMPTY
            if limit is not None and (best > limit if maker_side else best < limit):
                return STOP_PRICE_LIMIT
            level = book.level(maker_side, best)
            assert level is not None
            maker = level.first()
            if maker.account_index == taker.account_index:
                # Self-trade: expire the resting maker and keep going (Lighter's default "expire maker").
                self._close(maker, "canceled-self-trade")
                continue
            qty = min(taker.remaining, maker.remaining)
            if maker.reduce_only:
                qty = min(qty, self._reducible(maker))
                if qty == 0:
                    self._close(maker, "canceled-reduce-only")
                    continue
            self._fill(taker, maker, qty, best)
            if maker.status == "open" and maker.reduce_only and self._reducible(maker) == 0:
                self._close(maker, "canceled-reduce-only")
        return None

    def _reducible(self, order: Order) -> int:
        """How much of `order` still reduces its account's position (0 if it would grow it)."""
        pos = self.accounts[order.account_index].position_size(order.market_id)
        if (pos > 0 and order.is_ask) or (pos < 0 and not order.is_ask):
            return abs(pos)
        return 0

    def _fill(self, taker: Order, maker: Order, qty: int, price: int) -> None:
        spec = self.specs[taker.market_id]
        now = self._now_ms
        self.books[maker.market_id].reduce(maker, qty)
        for order in (maker, taker):
            order.filled += qty
            order.filled_quote += qty * price
            self._stamp(order)
        taker.remaining -= qty
        maker_acc = self.accounts[maker.account_index]
        taker_acc = self.accounts[taker.account_index]
        notional = spec.quote_from_ints(price, qty)
        maker_side = self._settle(maker_acc, spec, maker.is_ask, qty, price, notional, is_maker=True)
        taker_side = self._settle(taker_acc, spec, taker.is_ask, qty, price, notional, is_maker=False)
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        trade = trade_json(
            trade_id=trade_id,
            tx_hash=self._tx_hash or f"{trade_id:080x}",
            spec=spec,
            maker=maker,
            taker=taker,
            qty=qty,
            price=price,
            notional=notional,
            block_height=self.block_height,
            now_ms=now,
            maker_side=maker_side,
            taker_side=taker_side,
        )
        self.last_trade_price[spec.market_id] = price
        self.trade_counts[spec.market_id] += 1
        self.trades.append(trade)
        self.market_trades[spec.market_id].append(trade)
        for account in (maker_acc, taker_acc):
            if not account.internal:
                account.trades.append(trade)
        if maker.remaining == 0:
            self._close(maker, "filled")
        else:
            self._order_changed(maker)
        self._emit(TradeHappened(spec.market_id, trade, maker.account_index, taker.account_index))
        for account in (maker_acc, taker_acc):
            if not account.internal:
                self._position_changed(account, spec.market_id)

    def _settle(
        self,
        account: Account,
        spec: MarketSpec,
        is_ask: bool,
        qty: int,
        price: int,
        notional: Decimal,
        *,
        is_maker: bool,
    ) -> dict[str, Any]:
        """Updates position and collateral for one side of a fill; returns the trade's before/after facts."""
        if account.internal:
            return {"size_before": 0, "entry_quote_before": ZERO, "sign_changed": False, "fee_rate": 0}
        pos = account.position(spec.market_id)
        size_before, sign_before = pos.size, pos.sign
        entry_quote_before = pos.avg_entry * spec.size_from_int(abs(pos.size))
        realized = pos.apply_fill(-qty if is_ask else qty, spec.price_from_int(price), spec.size_decimals)
        maker_rate, taker_rate = self.fee_rates.get(account.tier, (0, 0))
        rate = maker_rate if is_maker else taker_rate
        account.collateral += realized - fee_paid(rate, notional)
        return {
            "size_before": size_before,  # signed, as the venue sends it
            "entry_quote_before": entry_quote_before,
            "sign_changed": sign_before != pos.sign,
            "fee_rate": rate,
        }

    # -- margin ------
    def unrealized_and_margin(
        self, account: Account, extra: tuple[int, int] | None = None
    ) -> tuple[Decimal, Decimal]:
        """(unrealized PnL, initial margin) at the mids, optionally with a signed size added to a market."""
        unrealized = ZERO
        notional = ZERO
        sizes = {m: p.size for m, p in account.positions.items()}
        if extra is not None:
            sizes[extra[0]] = sizes.get(extra[0], 0) + extra[1]
        for market_id, size in sizes.items():
            spec = self.specs[market_id]
            mid = self.mids[market_id]
            notional += spec.quote_from_ints(mid, abs(size))
            pos = account.positions.get(market_id)
            if pos is not None and pos.size:
                unrealized += (spec.price_from_int(mid) - pos.avg_entry) * spec.size_from_int(pos.size)
        return unrealized, notional * INITIAL_MARGIN_FRACTION

    def _margin_allows(self, account: Account, market_id: int, signed_size: int) -> bool:
        unrealized, required = self.unrealized_and_margin(account, (market_id, signed_size))
        return required <= account.collateral + unrealized

    def _execute_order(self, order: Order) -> None:
        """Runs a new order: reduce-only, margin, post-only, matching, then rest or end it."""
        account = self.accounts[order.account_index]
        if order.reduce_only:
            reducible = self._reducible(order)
            if reducible == 0:
                self._close(order, "canceled-reduce-only")
                return
            if order.remaining > reducible:
                order.initial_size = order.remaining = reducible
        elif not account.internal:
            signed = -order.remaining if order.is_ask else order.remaining
            held = account.position_size(order.market_id)
            # Only an order that grows the position needs margin; reducing is always allowed.
            grows = abs(held + signed) > abs(held)
            if grows and not self._margin_allows(account, order.market_id, signed):
                self._close(order, "canceled-margin-not-allowed")
                return
        if order.time_in_force == TIF_POST_ONLY and self.crosses(order.market_id, order.is_ask, order.price):
            self._close(order, "canceled-post-only")
            return
        self._match_then_place(order)

    def _match_then_place(self, order: Order) -> None:
        stop = self._match(order, order.price)
        if order.remaining == 0:
            self._close(order, "filled")
        elif order.order_type == TYPE_MARKET:
            self._close(
                order,
                "canceled-not-enough-liquidity" if stop == STOP_BOOK_EMPTY else "canceled-too-much-slippage",
            )
        elif order.time_in_force == TIF_IOC:
            self._close(order, "canceled")
        else:
            self._rest(order)
            self._order_changed(order)

    def _expire_orders(self, now_ms: int) -> None:
        while self._expiries and self._expiries[0][0] <= now_ms:
            _, _, order = heapq.heappop(self._expiries)
            if order.status == "open":
                self._close(order, "canceled-expired")

    def internal_account(self, index: int) -> Account:
        assert index in (LIQUIDITY_ACCOUNT, TAKER_ACCOUNT)
        return self.accounts[index]

"""Read side of the engine: every REST/WS body, shaped like the lighter-sdk models (strict-valid)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounts import Account
from .book import Order
from .core import ExchangeCore
from .errors import ACCOUNT_NOT_FOUND, MARKET_NOT_FOUND, SimError
from .serialize import (
    CHAIN_ID,
    account_limits_json,
    detailed_account_json,
    l1_address,
    order_book_json,
    order_json,
    perps_detail_json,
    simple_order_json,
)

# Captured REST answers carry `"code": 200` and no `message` when it is empty, nor an empty `next_cursor`
# (corpus: accountActiveOrders, trades, recentTrades, orderBookOrders, nextNonce, account).
OK: dict[str, Any] = {"code": 200}


def _with_cursor(body: dict[str, Any], next_cursor: str) -> dict[str, Any]:
    if next_cursor:
        body["next_cursor"] = next_cursor
    return body


class EngineReads(ExchangeCore):
    chain_id: int = CHAIN_ID  # the chain the sim stands for (sim.chain_id); Engine sets it

    def _reader_account(self, index: int) -> Account:
        account = self.accounts.get(index)
        if account is None or account.internal:
            raise SimError(ACCOUNT_NOT_FOUND, "account not found")
        return account

    def _market_ids(self, market_id: int | None) -> list[int]:
        if market_id is None:
            return sorted(self.specs)
        if market_id not in self.specs:
            raise SimError(MARKET_NOT_FOUND, "market not found")
        return [market_id]

    def _orders_body(self, orders: list[Order], next_cursor: str = "") -> dict[str, Any]:
        body = {**OK, "orders": [order_json(o, self.specs[o.market_id], snapshot=True) for o in orders]}
        return _with_cursor(body, next_cursor)

    # -- exchange-wide ------
    def status_json(self) -> dict[str, Any]:
        return {"status": 200, "network_id": self.chain_id, "timestamp": self.clock_ms() // 1000}

    def _open_interest(self, market_id: int) -> Decimal:
        longs = sum(
            a.position_size(market_id) for a in self.accounts.values() if a.position_size(market_id) > 0
        )
        return self.specs[market_id].size_from_int(longs)

    def _fees_shown(self) -> tuple[Decimal, Decimal]:
        return self.fees.get("premium", (Decimal(0), Decimal(0)))

    def order_book_details_json(self, market_id: int | None) -> dict[str, Any]:
        details = [
            perps_detail_json(
                self.specs[m],
                self._fees_shown(),
                self.last_trade_price[m],
                self._open_interest(m),
                self.trade_counts[m],
            )
            for m in self._market_ids(market_id)
        ]
        return {**OK, "order_book_details": details, "spot_order_book_details": []}

    def order_books_json(self, market_id: int | None) -> dict[str, Any]:
        books = [
            order_book_json(self.specs[m], self._fees_shown(), self.created_ms)
            for m in self._market_ids(market_id)
        ]
        return {**OK, "order_books": books}

    def order_book_orders_json(self, market_id: int, limit: int) -> dict[str, Any]:
        (m,) = self._market_ids(market_id)
        spec, book = self.specs[m], self.books[m]
        sides = {}
        for is_ask, name in ((True, "asks"), (False, "bids")):
            orders = []
            for order in book.orders(is_ask):
                if len(orders) >= limit:
                    break
                orders.append(simple_order_json(order, spec))
            sides[name] = orders
        return {
            **OK,
            "total_asks": book.order_count(True),
            "asks": sides["asks"],
            "total_bids": book.order_count(False),
            "bids": sides["bids"],
        }

    def book_snapshot(self, market_id: int) -> dict[str, Any]:
        (m,) = self._market_ids(market_id)
        spec, book = self.specs[m], self.books[m]
        return {
            "asks": [
                {"price": spec.fmt_price(lv.price), "size": spec.fmt_size(lv.total)}
                for lv in book.levels(True)
            ],
            "bids": [
                {"price": spec.fmt_price(lv.price), "size": spec.fmt_size(lv.total)}
                for lv in book.levels(False)
            ],
            "offset": book.offset,
        }

    def recent_trades_json(self, market_id: int, limit: int) -> dict[str, Any]:
        (m,) = self._market_ids(market_id)
        trades = list(self.market_trades[m])[-limit:] if limit > 0 else []
        trades.reverse()
        return {**OK, "trades": trades}

    def trades_json(
        self,
        *,
        account_index: int | None,
        market_id: int | None,
        order_index: int | None,
        from_ms: int | None,
        limit: int,
        sort_dir: str = "desc",
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Trades filtered by account/market/order, `from_ms` inclusive; cursor = last trade id seen."""
        if market_id is not None:
            self._market_ids(market_id)
        if account_index is not None:
            source = list(self._reader_account(account_index).trades)
        elif market_id is not None:
            source = list(self.market_trades[market_id])
        else:
            source = list(self.trades)
        descending = sort_dir != "asc"
        if descending:
            source.reverse()
        after = int(cursor) if cursor else None
        picked: list[dict[str, Any]] = []
        more = False
        for trade in source:
            if after is not None and (
                trade["trade_id"] >= after if descending else trade["trade_id"] <= after
            ):
                continue
            if market_id is not None and trade["market_id"] != market_id:
                continue
            if order_index is not None and order_index not in (trade["ask_id"], trade["bid_id"]):
                continue
            if from_ms is not None and trade["timestamp"] < from_ms:
                continue
            if len(picked) == limit:
                more = True
                break
            picked.append(trade)
        next_cursor = str(picked[-1]["trade_id"]) if more and picked else ""
        return _with_cursor({**OK, "trades": picked}, next_cursor)

    # -- per account ------
    def account_json(self, by: str, value: str) -> dict[str, Any]:
        account: Account | None = None
        if by == "index":
            try:
                account = self.accounts.get(int(value))
            except ValueError:
                account = None
        elif by == "l1_address":
            account = next(
                (a for a in self.accounts.values() if l1_address(a.index) == str(value).lower()), None
            )
        if account is None or account.internal:
            raise SimError(ACCOUNT_NOT_FOUND, "account not found")
        positions = [self.position_dict(account, m) for m in sorted(account.positions)]
        unrealized, margin = self.unrealized_and_margin(account)
        body = detailed_account_json(account, positions, unrealized, margin, self.clock_ms())
        return {**OK, "total": 1, "accounts": [body]}

    def account_limits_json(self, account_index: int) -> dict[str, Any]:
        account = self._reader_account(account_index)
        maker, taker = self.fee_rates.get(account.tier, (0, 0))
        return {**OK, **account_limits_json(account.tier, maker, taker)}

    def active_orders_json(self, account_index: int, market_id: int | None) -> dict[str, Any]:
        account = self._reader_account(account_index)
        orders = sorted(
            (o for o in account.open_orders.values() if market_id is None or o.market_id == market_id),
            key=lambda o: o.order_index,
        )
        return self._orders_body(orders)

    def inactive_orders_json(
        self, account_index: int, limit: int, market_id: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """Ended orders, newest first; `next_cursor` pages further back (empty when there is nothing more)."""
        account = self._reader_account(account_index)
        before = int(cursor) if cursor else None
        picked: list[Order] = []
        more = False
        for order in reversed(account.inactive):
            if before is not None and order.closed_seq >= before:
                continue
            if market_id is not None and order.market_id != market_id:
                continue
            if len(picked) == limit:
                more = True
                break
            picked.append(order)
        return self._orders_body(picked, str(picked[-1].closed_seq) if more and picked else "")

    def orders_by_client_index_json(self, account_index: int, coids: list[int]) -> dict[str, Any]:
        account = self._reader_account(account_index)
        orders = [account.all_orders_by_client[c] for c in coids if c in account.all_orders_by_client]
        return self._orders_body(orders)

    def open_orders_json(self, account_index: int) -> dict[str, list[dict[str, Any]]]:
        account = self._reader_account(account_index)
        result: dict[str, list[dict[str, Any]]] = {str(m): [] for m in sorted(self.specs)}
        for order in sorted(account.open_orders.values(), key=lambda o: o.order_index):
            result[str(order.market_id)].append(order_json(order, self.specs[order.market_id], snapshot=True))
        return result

    def positions_json(self, account_index: int) -> dict[str, dict[str, Any]]:
        account = self._reader_account(account_index)
        return {str(m): self.position_dict(account, m) for m in sorted(account.positions)}

    def account_trades_json(self, account_index: int, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        account = self._reader_account(account_index)
        result: dict[str, list[dict[str, Any]]] = {}
        for trade in list(account.trades)[-limit:] if limit > 0 else []:
            result.setdefault(str(trade["market_id"]), []).append(trade)
        return result

    def state_json(self) -> dict[str, Any]:
        """Everything a test or operator wants to see at once (GET /sim/state); not a Lighter model."""
        markets = {
            str(m): {
                "symbol": spec.symbol,
                "mid": spec.fmt_price(self.mids[m]),
                "last_trade_price": spec.fmt_price(self.last_trade_price[m]),
                "book": self.book_snapshot(m),
            }
            for m, spec in sorted(self.specs.items())
        }
        accounts = {}
        for index, account in sorted(self.accounts.items()):
            if account.internal:
                continue
            unrealized, margin = self.unrealized_and_margin(account)
            accounts[str(index)] = {
                "tier": account.tier,
                "collateral": str(account.collateral),
                "unrealized_pnl": str(unrealized),
                "initial_margin": str(margin),
                "cancel_all_time": account.cancel_all_time,
                "nonces": {str(k): v for k, v in sorted(account.nonces.items())},
                "positions": self.positions_json(index),
                "open_orders": self.open_orders_json(index),
                "fills": list(account.trades),
                "tx_log": list(account.tx_log),
            }
        return {"markets": markets, "accounts": accounts}

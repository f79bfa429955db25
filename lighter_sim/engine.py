"""The simulated exchange engine: accounts and keys, transaction intake (accept, then execute), admin actions.

Pure, synchronous and deterministic: no I/O, time only through the injected clock. The server puts its
speed bump between `accept_tx` (validation, nonce) and `execute` (matching); orders in between are invisible
to reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .accounts import INTERNAL_ACCOUNTS, LIQUIDITY_ACCOUNT, TAKER_ACCOUNT, Account
from .book import TIF_GTT, TIF_IOC, TIF_POST_ONLY, TYPE_LIMIT, TYPE_MARKET, Order
from .core import STOP_BOOK_EMPTY, wall_clock_ms
from .errors import (
    ACCOUNT_NOT_FOUND,
    API_KEY_NOT_FOUND,
    CLIENT_ORDER_INDEX_EXISTS,
    EXPIRED_TX,
    INVALID_NONCE,
    INVALID_PRICE,
    INVALID_PUBLIC_KEY,
    INVALID_SIZE,
    MARKET_NOT_FOUND,
    ORDER_NOT_FOUND,
    QUOTE_TOO_SMALL,
    TOO_MANY_ORDERS,
    SimError,
)
from .events import BookChanged, OrderChanged, PositionChanged, SimEvent, TradeHappened, TxSettled
from .markets import MarketSpec
from .periods import check_periods
from .reads import EngineReads
from .serialize import CHAIN_ID, l1_address
from .tx_history import tx_object
from .txparse import (
    NIL_MARKET,
    TX_CANCEL_ALL,
    TX_CANCEL_ORDER,
    TX_CREATE_ORDER,
    TX_MODIFY_ORDER,
    ParsedTx,
    parse_tx,
    venue_tx_hash,
)

__all__ = [
    "AcceptedTx",
    "BookChanged",
    "Engine",
    "OrderChanged",
    "PositionChanged",
    "SimError",
    "SimEvent",
    "TradeHappened",
]

log = logging.getLogger("lighter_sim.engine")

MAX_OPEN_PER_MARKET = 1000
CANCEL_ALL_IMMEDIATE, CANCEL_ALL_SCHEDULED, CANCEL_ALL_ABORT = 0, 1, 2


@dataclass(frozen=True)
class AcceptedTx:
    tx_hash: str
    tx_type: int
    account_index: int
    api_key_index: int
    kind: str  # "maker" (limit GTT / post-only create, modify), "taker" (IOC / market create), "cancel"
    payload: dict[str, Any]  # the parsed tx_info
    arrival_us: int


class Engine(EngineReads):
    def __init__(
        self,
        markets: list[MarketSpec],
        fees: dict[str, tuple[Decimal, Decimal]],
        clock_ms: Callable[[], int] = wall_clock_ms,
        *,
        chain_id: int = CHAIN_ID,
        check_signature: Callable[[ParsedTx, str], None] | None = None,
    ) -> None:
        """`check_signature(tx, registered public key hex)` raises SimError when the tx's Sig does not verify
        (signatures.py); None checks nothing (the engine's unit tests sign with dummies)."""
        super().__init__(markets, fees, clock_ms)
        self.chain_id = chain_id
        self._check_signature = check_signature
        self._pending: dict[str, AcceptedTx] = {}
        self._tx_sequence = 0  # sequence_index of settled txs (tx_history.py)

    # -- accounts and keys ------
    def upsert_account(self, index: int, tier: str, collateral: Decimal, api_keys: dict[int, str]) -> None:
        """Creates or updates an account: tier, start collateral, keys (positions, orders, nonces stay)."""
        if index in INTERNAL_ACCOUNTS:
            raise ValueError(f"account {index} is reserved for the simulator's own market flow")
        keys = {int(k): v.removeprefix("0x") for k, v in api_keys.items()}
        account = self.accounts.get(index)
        if account is None:
            account = Account(
                index, tier, Decimal(collateral), Decimal(collateral), keys, created_ms=self.clock_ms()
            )
            self.accounts[index] = account
        else:
            account.tier = tier
            account.initial_collateral = Decimal(collateral)
            account.api_keys = keys
        account.nonces = {k: account.nonces.get(k, 0) for k in keys}
        account.key_tx_time = {k: account.key_tx_time.get(k, 0) for k in keys}

    def has_account(self, index: int) -> bool:
        return index in self.accounts and index not in INTERNAL_ACCOUNTS

    def tier_of(self, index: int) -> str:
        return self._user_account(index).tier

    def api_keys_json(self, account_index: int, api_key_index: int | None = None) -> list[dict[str, Any]]:
        from .serialize import api_key_json

        account = self._user_account(account_index)
        indexes = sorted(account.api_keys) if api_key_index is None else [api_key_index]
        return [api_key_json(account, k) for k in indexes if k in account.api_keys]

    def next_nonce(self, account_index: int, api_key_index: int) -> int:
        account = self._user_account(account_index)
        if api_key_index not in account.api_keys:
            raise SimError(API_KEY_NOT_FOUND, "api key not found")
        return account.nonces[api_key_index]

    def _user_account(self, index: int) -> Account:
        account = self.accounts.get(index)
        if account is None or account.internal:
            raise SimError(ACCOUNT_NOT_FOUND, "account not found")
        return account

    # -- transactions: accept ------
    def accept_tx(self, tx_type: int, tx_info: str, arrival_us: int) -> AcceptedTx:
        """Validates a signed tx and consumes its nonce; raises SimError (changing nothing) when refused."""
        parsed: ParsedTx | None = None
        try:
            parsed = parse_tx(tx_type, tx_info)
            account = self._user_account(parsed.account_index)
            if parsed.api_key_index not in account.api_keys:
                raise SimError(INVALID_PUBLIC_KEY, "invalid PublicKey, please run changePubKey")
            if self._check_signature is not None:
                # Before the nonce and business checks: the venue's API answers a wrong chain id 21120
                # whatever the tx holds (inferred: the order of the venue's checks is not documented).
                self._check_signature(parsed, account.api_keys[parsed.api_key_index])
            self._validate(parsed, account)
            tx_hash = venue_tx_hash(self.chain_id, parsed)
        except SimError as err:
            if parsed is not None and self.has_account(parsed.account_index):
                self._log_tx(self.accounts[parsed.account_index], parsed, arrival_us, err.code)
            raise
        account.nonces[parsed.api_key_index] += 1
        account.key_tx_time[parsed.api_key_index] = arrival_us
        if parsed.tx_type == TX_CREATE_ORDER:
            key = (parsed["MarketIndex"], parsed["ClientOrderIndex"])
            account.pending_creates[key] = account.pending_creates.get(key, 0) + 1
            account.pending_per_market[key[0]] = account.pending_per_market.get(key[0], 0) + 1
        accepted = AcceptedTx(
            tx_hash,
            parsed.tx_type,
            account.index,
            parsed.api_key_index,
            _kind(parsed),
            parsed.raw,
            arrival_us,
        )
        self._pending[tx_hash] = accepted
        self._log_tx(account, parsed, arrival_us, "accepted", tx_hash)
        return accepted

    def _validate(self, tx: ParsedTx, account: Account) -> None:
        if tx["ExpiredAt"] < self.clock_ms():
            raise SimError(EXPIRED_TX, "transaction expired")
        if tx["Nonce"] != account.nonces[tx.api_key_index]:
            raise SimError(INVALID_NONCE, "invalid nonce")
        check_periods(tx, self.clock_ms())
        if tx.tx_type == TX_CANCEL_ALL:
            return
        spec = self.specs.get(tx["MarketIndex"])
        if spec is None:
            raise SimError(MARKET_NOT_FOUND, "market not found")
        if tx.tx_type in (TX_CREATE_ORDER, TX_MODIFY_ORDER):
            self._validate_amounts(tx, spec)
        if tx.tx_type == TX_CREATE_ORDER:
            market = spec.market_id
            in_use = account.open_per_market.get(market, 0) + account.pending_per_market.get(market, 0)
            if in_use >= MAX_OPEN_PER_MARKET:
                raise SimError(
                    TOO_MANY_ORDERS, f"too many open orders (max {MAX_OPEN_PER_MARKET} per market)"
                )
        else:
            index = tx["Index"]
            known = account.find_open(spec.market_id, index) is not None or (
                index < 1 << 48 and account.pending_creates.get((spec.market_id, index), 0) > 0
            )
            if not known:
                raise SimError(ORDER_NOT_FOUND, "order not found")

    @staticmethod
    def _validate_amounts(tx: ParsedTx, spec: MarketSpec) -> None:
        size, price = tx["BaseAmount"], tx["Price"]
        if size < 1 or size < spec.min_base_int:
            raise SimError(INVALID_SIZE, f"size below minimum {spec.fmt_size(spec.min_base_amount)}")
        if price <= 0 or price >= 1 << 32:
            raise SimError(INVALID_PRICE, "price out of range")
        is_limit = tx.tx_type == TX_MODIFY_ORDER or tx["Type"] == TYPE_LIMIT
        if is_limit and spec.quote_from_ints(price, size) < spec.min_quote_amount:
            raise SimError(QUOTE_TOO_SMALL, f"quote amount below minimum {spec.min_quote_amount}")

    def _log_tx(
        self, account: Account, tx: ParsedTx, arrival_us: int, result: str | int, tx_hash: str = ""
    ) -> None:
        entry: dict[str, Any] = {
            "arrival_us": arrival_us,
            "tx_type": tx.tx_type,
            "api_key_index": tx.api_key_index,
            "nonce": tx["Nonce"],
            "result": result,
        }
        if tx.tx_type == TX_CREATE_ORDER:
            entry["client_order_index"] = tx["ClientOrderIndex"]
        elif tx.tx_type in (TX_CANCEL_ORDER, TX_MODIFY_ORDER):
            entry["index"] = tx["Index"]
        if tx_hash:
            entry["tx_hash"] = tx_hash
        account.tx_log.append(entry)

    def unconsume_nonce(self, accepted: AcceptedTx) -> None:
        """Gives back the nonce `accepted` took, right after accept_tx: the venue's sequencer sometimes
        drops a transaction without consuming its nonce, so the client's later nonces run ahead."""
        account = self.accounts[accepted.account_index]
        account.nonces[accepted.api_key_index] -= 1

    def discard(self, accepted: AcceptedTx, code: int, reason: str) -> None:
        """The sequencer refuses an accepted tx instead of executing it: no order ever appears for it; the
        refusal (`code`, `reason`) shows only in the account's transactions (`tx_history.py`)."""
        if self._pending.pop(accepted.tx_hash, None) is None:
            return
        account = self.accounts[accepted.account_index]
        tx = accepted.payload
        if accepted.tx_type == TX_CREATE_ORDER:
            self._release_pending_create(account, tx["MarketIndex"], tx["ClientOrderIndex"])
        entry: dict[str, Any] = {
            "arrival_us": accepted.arrival_us,
            "tx_type": accepted.tx_type,
            "api_key_index": accepted.api_key_index,
            "nonce": tx.get("Nonce"),
            "result": f"sequencer-rejected {code}: {reason}",
            "tx_hash": accepted.tx_hash,
        }
        account.tx_log.append(entry)
        self._settled(accepted, (code, reason))

    def _settled(self, accepted: AcceptedTx, error: tuple[int, str] | None) -> None:
        """Tell listeners the sequencer executed (`error` None) or refused `accepted`."""
        self._tx_sequence += 1
        account = accepted.account_index
        self._emit(TxSettled(account, tx_object(
            tx_hash=accepted.tx_hash, tx_type=accepted.tx_type, payload=accepted.payload, error=error,
            account_index=account, l1_address=l1_address(account), block_height=self.block_height,
            sequence_index=self._tx_sequence, queued_ms=accepted.arrival_us // 1000,
            executed_ms=self.clock_ms())))

    @staticmethod
    def _client_index_in_use(account: Account, client_order_index: int) -> bool:
        return client_order_index != 0 and client_order_index in account.by_client

    @staticmethod
    def _release_pending_create(account: Account, market: int, client_order_index: int) -> None:
        key = (market, client_order_index)
        account.pending_creates[key] -= 1
        if account.pending_creates[key] == 0:
            del account.pending_creates[key]
        account.pending_per_market[market] -= 1

    # -- transactions: execute ------
    def execute(self, accepted: AcceptedTx) -> None:
        """Applies an accepted tx now; a tx dropped by reset() (or executed twice) is ignored."""
        if accepted.tx_hash not in self._pending:
            log.warning(
                "execute of unknown tx %s ignored (reset in between, or executed twice)", accepted.tx_hash
            )
            return
        account = self.accounts[accepted.account_index]
        tx = accepted.payload
        if accepted.tx_type == TX_CREATE_ORDER and self._client_index_in_use(account, tx["ClientOrderIndex"]):
            # Captured on testnet (corpus rest/sendTx hftbacktest 2026-07-30 line 4): a create reusing the
            # client order index of a resting order is answered 200 and never appears (sequencer code 21728).
            self.discard(accepted, CLIENT_ORDER_INDEX_EXISTS, "client order index already exists")
            log.info(
                "create of account %s dropped by the sequencer: client order index %s is in use",
                account.index,
                tx["ClientOrderIndex"],
            )
            return
        del self._pending[accepted.tx_hash]
        with self._operation(accepted.tx_hash):
            if accepted.tx_type == TX_CREATE_ORDER:
                self._execute_create(account, tx)
            elif accepted.tx_type == TX_CANCEL_ORDER:
                order = account.find_open(tx["MarketIndex"], tx["Index"])
                if order is not None:  # filled or ended in the meantime: nothing to do
                    self._close(order, "canceled")
            elif accepted.tx_type == TX_CANCEL_ALL:
                self._execute_cancel_all(account, tx)
            else:
                self._execute_modify(account, tx)
        self._settled(accepted, None)

    def _execute_create(self, account: Account, tx: dict[str, Any]) -> None:
        market = tx["MarketIndex"]
        self._release_pending_create(account, market, tx["ClientOrderIndex"])
        order = self._new_order(
            account,
            market,
            client_order_index=tx["ClientOrderIndex"],
            is_ask=bool(tx["IsAsk"]),
            price=tx["Price"],
            initial_size=tx["BaseAmount"],
            remaining=tx["BaseAmount"],
            order_type=tx["Type"],
            time_in_force=tx["TimeInForce"],
            reduce_only=bool(tx["ReduceOnly"]),
            trigger_price=tx["TriggerPrice"],
            order_expiry=max(0, tx["OrderExpiry"]) if tx["TimeInForce"] != TIF_IOC else 0,
            nonce=tx["Nonce"],
        )
        self._execute_order(order)

    def _execute_cancel_all(self, account: Account, tx: dict[str, Any]) -> None:
        mode = tx["TimeInForce"]
        if mode == CANCEL_ALL_IMMEDIATE:
            market = ParsedTx(TX_CANCEL_ALL, {}, tx).cancel_all_market
            self._cancel_orders(account, None if market == NIL_MARKET else market)
        elif mode == CANCEL_ALL_SCHEDULED:
            account.cancel_all_time = tx["Time"]  # dead-man's switch; a later schedule renews it
        else:
            account.cancel_all_time = 0

    def _execute_modify(self, account: Account, tx: dict[str, Any]) -> None:
        order = account.find_open(tx["MarketIndex"], tx["Index"])
        if order is None:
            return  # filled or ended in the meantime
        book = self.books[order.market_id]
        new_size, new_price = tx["BaseAmount"], tx["Price"]
        order.trigger_price = tx["TriggerPrice"]
        self._stamp(order)
        if new_price == order.price and new_size <= order.remaining:
            # Same price, not bigger: keeps its place in the queue.
            book.reduce(order, order.remaining - new_size)
            order.initial_size = order.filled + new_size
            self._order_changed(order)
            return
        book.remove(order)
        self._open_count_changing(account, order.market_id)
        account.drop_open(order)
        order.price, order.remaining = new_price, new_size
        order.initial_size = order.filled + new_size
        order.seq = self._take_seq()
        if order.time_in_force == TIF_POST_ONLY and self.crosses(order.market_id, order.is_ask, new_price):
            self._close(order, "canceled-post-only")
            return
        self._match_then_place(order)

    def tick(self, now_ms: int) -> None:
        """Fires due scheduled cancel-alls (dead-man's switch) and expires GTT orders past their expiry."""
        with self._operation(now_ms=now_ms):
            for account in self.accounts.values():
                if 0 < account.cancel_all_time <= now_ms:
                    account.cancel_all_time = 0
                    count = self._cancel_orders(account, None)
                    log.info(
                        "scheduled cancel-all fired for account %s: %d orders canceled", account.index, count
                    )
            self._expire_orders(now_ms)

    # -- admin ------
    def force_trade(
        self, market_id: int, taker_side: str, size: Decimal, price: Decimal | None
    ) -> list[dict]:
        """A synthetic taker (account 2) buys or sells `size` against resting orders, never beyond `price`."""
        spec = self._spec(market_id)
        if taker_side not in ("buy", "sell"):
            raise SimError(400, "taker_side must be buy or sell")
        try:
            size_int = spec.size_to_int(Decimal(size))
            limit = None if price is None else spec.price_to_int(Decimal(price))
        except ValueError as exc:
            raise SimError(INVALID_SIZE, str(exc)) from None
        if size_int <= 0:
            raise SimError(INVALID_SIZE, "size must be positive")
        return self.submit_taker(market_id, taker_side == "sell", size_int, limit)

    def submit_taker(
        self, market_id: int, is_ask: bool, size: int, limit: int | None, now_ms: int | None = None
    ) -> list[dict]:
        """An IOC from the synthetic taker account (scaled ints); returns the trades it made."""
        first_trade = self._next_trade_id
        with self._operation(now_ms=now_ms):
            order = self._internal_order(TAKER_ACCOUNT, market_id, is_ask, limit or 0, size, TIF_IOC)
            stop = self._match(order, limit)
            self._close(
                order,
                "filled"
                if order.remaining == 0
                else "canceled-not-enough-liquidity"
                if stop == STOP_BOOK_EMPTY
                else "canceled",
            )
        trades = [t for t in reversed(self.market_trades[market_id]) if t["trade_id"] >= first_trade]
        trades.reverse()
        return trades

    def replace_liquidity(
        self, market_id: int, levels: dict[tuple[bool, int], int], now_ms: int | None = None
    ) -> None:
        """Makes account 1's resting orders in `market_id` exactly `levels` ((is_ask, price) -> size),
        skipping a level that would cross a resting order; levels in place keep their queue spot."""
        wanted = dict(levels)
        account = self.accounts[LIQUIDITY_ACCOUNT]
        with self._operation(now_ms=now_ms):
            for order in [o for o in account.open_orders.values() if o.market_id == market_id]:
                key = (order.is_ask, order.price)
                if wanted.get(key) == order.remaining:
                    del wanted[key]
                else:
                    self._close(order, "canceled")
            for (is_ask, price), size in sorted(
                wanted.items(), key=lambda kv: (kv[0][0], kv[0][1] * (1 if kv[0][0] else -1))
            ):
                if size > 0 and not self.crosses(market_id, is_ask, price):
                    self._rest(
                        self._internal_order(LIQUIDITY_ACCOUNT, market_id, is_ask, price, size, TIF_GTT)
                    )

    def _internal_order(
        self, account_index: int, market_id: int, is_ask: bool, price: int, size: int, tif: int
    ) -> Order:
        return self._new_order(
            self.accounts[account_index],
            market_id,
            client_order_index=0,
            is_ask=is_ask,
            price=price,
            initial_size=size,
            remaining=size,
            order_type=TYPE_MARKET if tif == TIF_IOC else TYPE_LIMIT,
            time_in_force=tif,
            reduce_only=False,
            trigger_price=0,
            order_expiry=0,
            nonce=0,
        )

    def set_mid(self, market_id: int, price: Decimal) -> None:
        spec = self._spec(market_id)
        self.set_mid_int(market_id, spec.price_to_int(Decimal(price)))

    def set_mid_int(self, market_id: int, price: int) -> None:
        if price <= 0:
            raise SimError(INVALID_PRICE, "mid must be positive")
        self.mids[market_id] = price

    def mid(self, market_id: int) -> Decimal:
        spec = self._spec(market_id)
        return spec.price_from_int(self.mids[market_id])

    def reset(self) -> None:
        """Back to the initial state; order/trade ids and book offsets keep growing so clients see a delta."""
        with self._operation():
            for book in self.books.values():
                book.clear()
            for account in self.accounts.values():
                account.reset()
            self._pending.clear()
            self._reset_market_state()
        log.info("engine reset: books, orders, positions, trades and nonces back to the initial state")

    def _spec(self, market_id: int) -> MarketSpec:
        spec = self.specs.get(market_id)
        if spec is None:
            raise SimError(MARKET_NOT_FOUND, "market not found")
        return spec


def _kind(tx: ParsedTx) -> str:
    if tx.tx_type == TX_CREATE_ORDER:
        return "taker" if tx["Type"] == TYPE_MARKET or tx["TimeInForce"] == TIF_IOC else "maker"
    return "maker" if tx.tx_type == TX_MODIFY_ORDER else "cancel"

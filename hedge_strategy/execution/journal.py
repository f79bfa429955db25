"""The order journal: every order and fill of one account, in memory at once and on disk soon after.

Two write paths, on purpose:
- `record_new` (and `next_sequence`) commit before they return. An order is on disk before it is sent, so
  a crash between the write and the send leaves a PENDING_SUBMIT row that reconciliation resolves, never an
  order on the exchange that no record knows.
- every other change applies to the in-memory view at once and reaches disk through a background writer
  task that batches whatever accumulated: the trading path never waits for a disk write.
  `flush()` drains it and `close()` flushes; nothing needed for recovery stays only in memory for longer
  than one batch.

Fills are keyed by the exchange's trade id with its account, market, side and an epoch (`fill_identity`),
each matched to exactly one order by client order index: a trade reported twice (WebSocket and REST) counts
once, and a trade id a restarted venue hands out again for another trade is a new fill. A fill
also carries an "announced" flag: the tracker marks it once the strategy has been told, and a fill stored but
never announced (a crash in between) is announced again on restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from loguru import logger

from hedge_strategy.exchange.coid import describe_coid
from hedge_strategy.exchange.events import OrderUpdate
from hedge_strategy.execution.fill_identity import FillKey, disagreement
from hedge_strategy.execution.journal_modify import ModifyRecords
from hedge_strategy.execution.journal_store import (
    DuplicateOrderError,
    JournalStore,
    fill_to_row,
    order_to_row,
)
from hedge_strategy.execution.models import (
    TERMINAL_STATES,
    UNRESOLVED_STATES,
    Intent,
    JournalFill,
    JournalOrder,
    OrderState,
    is_legal_move,
    new_order,
    now_ms,
    state_for_venue,
)

__all__ = [
    "DuplicateOrderError",
    "Intent",
    "Journal",
    "JournalFill",
    "JournalOrder",
    "OrderState",
    "journal_path",
    "new_order",
    "now_ms",
]

_WRITE_RETRY_S = 1.0  # after a failed background write (disk full, locked file): try again this much later
_EVICT_ABOVE = 2000  # settled orders kept in memory before the oldest are dropped (they stay on disk)
_EVICT_AFTER_MS = 10 * 60 * 1000  # a settled order untouched this long may leave memory
_RESERVED_META_PREFIX = "seq:"


def _same_trade(fill: JournalFill, held: list[JournalFill]) -> JournalFill | None:
    return next((known for known in held if disagreement(known, fill) is None), None)


def journal_path(directory: Path | str, account_index: int) -> Path:
    """The conventional journal file of an account: `<journal.dir>/journal_<account_index>.sqlite`."""
    return Path(directory) / f"journal_{account_index}.sqlite"


class Journal(ModifyRecords):
    """One account's orders and fills. Use `await Journal.open(path, account_index)`.

    Orders returned by `get`/`unresolved` are the journal's live objects: read them, never mutate them.
    """

    def __init__(self, store: JournalStore, account_index: int) -> None:
        self.account_index = account_index
        self.path = store.path
        self._store = store
        self._orders: dict[int, JournalOrder] = {}
        self._exchange_filled: dict[int, Decimal] = {}  # largest filled size an OrderUpdate reported
        self._price_ts: dict[int, int] = {}  # when the exchange reported the price an order has (ms)
        self._fills: dict[FillKey, JournalFill] = {}
        self._fills_by_order: dict[int, dict[FillKey, JournalFill]] = {}
        self._fills_complete: set[int] = set()  # orders whose every stored fill is in memory
        self._unannounced: dict[FillKey, JournalFill] = {}
        self._meta: dict[str, str] = {}
        self._dirty_orders: set[int] = set()
        self._new_fills: list[JournalFill] = []
        self._newly_announced: set[FillKey] = set()
        self._dirty_meta: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._late_listeners: list[Callable[[JournalOrder], None]] = []

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    async def open(cls, path: Path, account_index: int) -> Journal:
        """Open (or create) the journal file and load every unresolved order and unannounced fill."""
        store = await asyncio.to_thread(JournalStore, Path(path))
        journal = cls(store, account_index)
        await journal._load()
        journal._writer = asyncio.create_task(journal._write_loop(), name=f"journal-writer-{account_index}")
        return journal

    async def _load(self) -> None:
        loaded = await asyncio.to_thread(self._store.load_unresolved)
        for order, exchange_filled in loaded:
            self._remember(order, exchange_filled)
            self._ensure_fills_loaded(order.client_order_index)
        for fill in await asyncio.to_thread(self._store.load_unannounced_fills):
            self._ensure_fills_loaded(fill.client_order_index)
            self._unannounced[fill.key] = fill
        logger.info("journal {} opened for account {}: {} unresolved orders, {} fills awaiting announcement",
                    self.path, self.account_index, len(loaded), len(self._unannounced))

    async def flush(self) -> None:
        """Write every change made so far to disk; returns once it is committed."""
        await self._write_pending()

    async def close(self) -> None:
        """Stop the background writer, flush what is left and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._write_pending()
        await asyncio.to_thread(self._store.close)
        logger.info("journal {} closed, every change on disk", self.path)

    # ---------------------------------------------------------------- durable writes

    async def record_new(self, order: JournalOrder) -> None:
        """Write a new PENDING_SUBMIT order and commit it: in the WAL file before this returns, so before the
        send (safe from a kill of the process; `journal_store` says what a power loss can undo)."""
        self._check_open()
        if order.account_index != self.account_index:
            raise ValueError(
                f"order for account {order.account_index} in the journal of {self.account_index}")
        if order.state is not OrderState.PENDING_SUBMIT:
            raise ValueError(f"a new order must be PENDING_SUBMIT, got {order.state}")
        coid = order.client_order_index
        if coid in self._orders:
            raise DuplicateOrderError(f"client order index {coid} is already in the journal")
        await asyncio.to_thread(self._store.insert_order, order_to_row(order, Decimal(0)))
        self._remember(order, Decimal(0))
        self._fills_complete.add(coid)  # a brand-new order has no stored fills
        # Not logged here: this runs while the order is signed, right before its send; the caller logs the
        # record once the order is sent (`OrderExecutor.submit`).

    def next_sequence(self, name: str) -> int:
        """The next number of a named sequence, committed before it is returned (unique across restarts).

        Synchronous by contract: one small commit (WAL, no fsync: `journal_store`) on the event loop thread.
        """
        self._check_open()
        return self._store.next_sequence(name)

    # ---------------------------------------------------------------- in-memory changes, written later

    def mark_sent(self, coid: int, ts_ms: int) -> None:
        order = self.get(coid)
        if order is None:
            logger.warning(
                "journal: mark_sent for {} which is not in the journal; ignored", describe_coid(coid))
            return
        order.sent_ms = ts_ms
        self._touch(order)

    def transition(
        self, coid: int, state: OrderState, *, reason: str | None = None, order_index: int | None = None
    ) -> bool:
        """Move an order to `state`; False if the move is illegal (only a missing order index is taken)."""
        order = self.get(coid)
        if order is None:
            logger.warning("journal: transition of unknown {} to {} ignored", describe_coid(coid), state)
            return False
        index_learned = order_index is not None and order.order_index is None
        if index_learned:
            order.order_index = order_index
        if state is order.state or not is_legal_move(order.state, state):
            if state is not order.state:
                logger.info("journal: {} stays {} (move to {} refused: {})", describe_coid(coid), order.state,
                            state, "terminal" if order.is_terminal else "not a forward move")
            if index_learned:
                self._touch(order)
            return False
        self._set_state(order, state, reason, why="transition")
        return True

    def apply_order_update(self, update: OrderUpdate) -> bool:
        """Apply an exchange order update (WebSocket or REST); True if anything changed."""
        order = self.get(update.client_order_index)
        if order is None:
            return False
        coid = order.client_order_index
        changed = False
        if update.order_index and order.order_index != update.order_index:
            order.order_index = update.order_index
            changed = True
        if update.filled_size > self._exchange_filled.get(coid, Decimal(0)):
            self._exchange_filled[coid] = update.filled_size
            changed = True
        changed |= self._refresh_filled_size(order)
        changed |= self._take_price(order, update)
        changed |= self._take_size(order, update)
        mapped = state_for_venue(update.state, update.end_reason, order.filled_size)
        if mapped is None:
            logger.warning("journal: {} has unknown exchange status {!r}; state left as {}",
                           describe_coid(coid), update.venue_status, order.state)
        else:
            state, reason = mapped
            if state is not order.state and is_legal_move(order.state, state):
                self._set_state(order, state, reason, why=f"exchange status {update.venue_status}")
                return True
            if order.state is OrderState.REJECTED and state is not OrderState.REJECTED:
                self._executed_late(order, state, reason, f"exchange status {update.venue_status}")
                return True
            contradicts = state.is_terminal or order.state is OrderState.REJECTED
            if state is not order.state and order.is_terminal and contradicts:
                logger.warning(
                    "journal: exchange reports {} as {} but the journal has it {} ({}); terminal, kept",
                    describe_coid(coid), update.venue_status, order.state, order.reason)
        if changed:
            self._touch(order)
        return changed

    def apply_fill(self, fill: JournalFill) -> JournalFill | None:
        """Record a fill and return it as recorded (its epoch set); None for a trade already recorded.

        WebSocket and REST report one trade: the second report is dropped, logged at INFO with the reason.
        A trade id already held for a different trade (another order, size, price or time: a venue that
        restarted and numbered its trades from 1 again) is a new fill under the next epoch, logged at WARNING.
        """
        if fill.account_index != self.account_index:
            raise ValueError(f"fill of account {fill.account_index} in the journal of {self.account_index}")
        held = self._fills_under_trade_id(fill)
        if duplicate := _same_trade(fill, held):
            logger.info(
                "journal: trade {} (market {}, {}) for {} from {} already recorded from {} (same order, size,"
                " price and time); duplicate report ignored", fill.trade_id, fill.market_id, fill.side,
                describe_coid(fill.client_order_index), fill.source, duplicate.source)
            return None
        if held:
            logger.warning(
                "journal: trade {} (market {}, {}) for {} is not the trade already recorded under that id"
                " ({}): the venue reused the id (restarted?); recorded as a new fill, epoch {}",
                fill.trade_id, fill.market_id, fill.side, describe_coid(fill.client_order_index),
                disagreement(held[-1], fill), len(held))
            fill = dataclasses.replace(fill, epoch=len(held))
        coid = fill.client_order_index
        order = self.get(coid)  # loads the order and its stored fills if it left memory
        self._ensure_fills_loaded(coid)
        self._fills[fill.key] = fill
        self._fills_by_order.setdefault(coid, {})[fill.key] = fill
        self._unannounced[fill.key] = fill
        self._new_fills.append(fill)
        self._wake.set()
        if order is None:
            return fill
        order.filled_quote += fill.size * fill.price
        self._refresh_filled_size(order)
        if not order.is_terminal:
            state = OrderState.FILLED if order.filled_size >= order.size else OrderState.PARTIALLY_FILLED
            if state is not order.state and is_legal_move(order.state, state):
                self._set_state(order, state, None, why=f"fill {fill.trade_id}")
                return fill
        elif order.state is OrderState.REJECTED:
            state = OrderState.FILLED if order.filled_size >= order.size else OrderState.PARTIALLY_FILLED
            self._executed_late(order, state, None, f"fill {fill.trade_id}")
            return fill
        self._touch(order)
        return fill

    def _executed_late(self, order: JournalOrder, state: OrderState, reason: str | None, what: str) -> None:
        """The exchange reports an order this journal has REJECTED: it executed after all (a send the
        sequencer ran after the lookup that did not find it, or an unanswered one that executed after the
        grace). The exchange is the truth: the order takes its state at once, instead of waiting for a
        reconciliation that never looks at a terminal order. Its fills count wherever the order's filled size
        is read (B's chase sums its attempts' filled sizes: a late fill is never hedged twice)."""
        logger.warning("journal: {} was recorded REJECTED ({}) but the exchange reports it ({}): it executed "
                       "late; now {}", describe_coid(order.client_order_index), order.reason, what, state)
        self._set_state(order, state, reason, why=f"executed late: {what}")
        for listener in self._late_listeners:
            try:
                listener(order)
            except Exception:  # a listener's bug must not lose the exchange's state, which is taken above
                logger.exception("journal: a listener of late executions failed on {}",
                                 describe_coid(order.client_order_index))

    def on_executed_late(self, listener: Callable[[JournalOrder], None]) -> None:
        """Call `listener(order)` (synchronously: schedule any I/O) whenever an order recorded REJECTED is
        reported by the exchange after all (`_executed_late`)."""
        self._late_listeners.append(listener)

    def recorded(self, fill: JournalFill) -> JournalFill | None:
        """The fill already recorded for the trade that `fill` reports, if any (it records nothing)."""
        return _same_trade(fill, self._fills_under_trade_id(fill))

    def mark_announced(self, key: FillKey) -> None:
        """The strategy has been told about this fill: never announce it again, even after a restart."""
        if self._unannounced.pop(key, None) is not None:
            self._newly_announced.add(key)
            self._wake.set()

    def set_meta(self, key: str, value: str) -> None:
        if key.startswith(_RESERVED_META_PREFIX):
            raise ValueError(f"meta key {key!r} is reserved for sequences")
        self._meta[key] = value
        self._dirty_meta[key] = value
        self._wake.set()

    # ---------------------------------------------------------------- reads

    def get(self, coid: int) -> JournalOrder | None:
        order = self._orders.get(coid)
        if order is not None or self._closed:
            return order
        loaded = self._store.load_order(coid)  # a settled order that left memory: one indexed read
        if loaded is None:
            return None
        self._remember(*loaded)
        self._ensure_fills_loaded(coid)
        return loaded[0]

    def unresolved(self) -> list[JournalOrder]:
        """Orders not yet in a terminal state: PENDING_SUBMIT, UNKNOWN, OPEN, PARTIALLY_FILLED."""
        return sorted(
            (o for o in self._orders.values() if o.state in UNRESOLVED_STATES), key=lambda o: o.created_ms)

    def orders_for_request(self, request_id: str) -> list[JournalOrder]:
        """Every order recorded for the hedge request `request_id` (B's idempotency), oldest first.

        `JournalOrder.request_id` may list several ids joined by ',' (requests netted into one order); each
        is indexed. The index lives in SQLite, written in the same commit as `record_new`, so the answer is
        complete across restarts: one indexed read, no need to hold every request id in memory.
        """
        if self._closed:
            return []
        orders = [self.get(coid) for coid in self._store.orders_for_request(request_id)]
        found = [o for o in orders if o is not None]
        return sorted(found, key=lambda o: (o.created_ms, o.client_order_index))

    def fills_for(self, coid: int) -> list[JournalFill]:
        self._ensure_fills_loaded(coid)
        return sorted(self._fills_by_order.get(coid, {}).values(), key=lambda f: (f.ts_ms, f.trade_id))

    def fills_total(self, coid: int) -> Decimal:
        """Sum of the deduplicated fills applied to this order."""
        self._ensure_fills_loaded(coid)
        return sum((f.size for f in self._fills_by_order.get(coid, {}).values()), Decimal(0))

    def exchange_filled_size(self, coid: int) -> Decimal:
        """The largest filled size an exchange order update reported for this order."""
        self.get(coid)
        return self._exchange_filled.get(coid, Decimal(0))

    def unannounced_fills(self) -> list[JournalFill]:
        """Fills recorded but not yet marked announced, oldest first."""
        return sorted(self._unannounced.values(), key=lambda f: (f.ts_ms, f.trade_id))

    def get_meta(self, key: str) -> str | None:
        if key in self._meta:
            return self._meta[key]
        value = self._store.get_meta(key)
        if value is not None:
            self._meta[key] = value
        return value

    # ---------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"journal {self.path} is closed")

    def _remember(self, order: JournalOrder, exchange_filled: Decimal) -> None:
        self._orders[order.client_order_index] = order
        self._exchange_filled[order.client_order_index] = exchange_filled

    def _ensure_fills_loaded(self, coid: int) -> None:
        if coid in self._fills_complete or self._closed:
            return
        known = self._fills_by_order.setdefault(coid, {})
        for fill in self._store.load_fills_for(coid):
            known.setdefault(fill.key, fill)
            self._fills.setdefault(fill.key, fill)
        self._fills_complete.add(coid)

    def _fills_under_trade_id(self, fill: JournalFill) -> list[JournalFill]:
        """Every fill held under the venue's trade id of `fill` (all epochs), from memory or disk.

        Epochs are given in order from 0 and every fill is in memory until written (`_evict_settled`), so
        the epochs held are 0..n-1 with none missing: the first one found in neither place ends the list.
        """
        key = fill.key
        stored = {} if self._closed else {f.epoch: f for f in self._store.fills_under_trade_id(*key[:4])}
        held: list[JournalFill] = []
        while found := self._fills.get(key._replace(epoch=len(held))) or stored.get(len(held)):
            held.append(found)
        return held

    def _refresh_filled_size(self, order: JournalOrder) -> bool:
        """filled_size = the fills we hold, or the exchange's count when larger (fills still in flight)."""
        coid = order.client_order_index
        filled = max(self.fills_total(coid), self._exchange_filled.get(coid, Decimal(0)))
        if filled == order.filled_size:
            return False
        order.filled_size = filled
        return True

    def _set_state(self, order: JournalOrder, state: OrderState, reason: str | None, *, why: str) -> None:
        previous = order.state
        order.state = state
        order.reason = reason
        self._touch(order)
        logger.info("journal: {} {} -> {}{} ({}; filled {}/{})", describe_coid(order.client_order_index),
                    previous, state, f"({reason})" if reason else "", why, order.filled_size, order.size)

    def _touch(self, order: JournalOrder) -> None:
        order.updated_ms = now_ms()
        self._dirty_orders.add(order.client_order_index)
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            # The tasks woken with the writer go first: a fill wakes it before A's outbox (the fill is stored
            # before it is announced), and the batch can wait a turn of the loop where a hedge request cannot.
            await asyncio.sleep(0)
            self._wake.clear()
            try:
                await self._write_pending()
            except Exception as exc:  # keep the changes and retry: the in-memory view stays authoritative
                logger.error("journal {}: background write failed ({!r}); retrying in {}s", self.path, exc,
                             _WRITE_RETRY_S)
                await asyncio.sleep(_WRITE_RETRY_S)
                self._wake.set()

    async def _write_pending(self) -> None:
        async with self._write_lock:
            if not (self._dirty_orders or self._new_fills or self._newly_announced or self._dirty_meta):
                return
            # Rows are built here, on the loop thread, so the worker sees one consistent snapshot.
            dirty_orders, self._dirty_orders = self._dirty_orders, set()
            new_fills, self._new_fills = self._new_fills, []
            announced, self._newly_announced = self._newly_announced, set()
            meta, self._dirty_meta = self._dirty_meta, {}
            order_rows = [order_to_row(self._orders[c], self._exchange_filled[c]) for c in dirty_orders]
            fill_rows = [fill_to_row(f, announced=f.key not in self._unannounced) for f in new_fills]
            try:
                await asyncio.to_thread(
                    self._store.write_batch, order_rows, fill_rows, announced, meta.items())
            except BaseException:
                self._dirty_orders |= dirty_orders
                self._new_fills[:0] = new_fills
                self._newly_announced |= announced
                self._dirty_meta = {**meta, **self._dirty_meta}
                raise
            self._evict_settled()

    def _evict_settled(self) -> None:
        """Drop long-settled orders from memory once there are many; they stay on disk, reload on demand."""
        if len(self._orders) <= _EVICT_ABOVE:
            return
        cutoff = now_ms() - _EVICT_AFTER_MS
        unwritten = {f.key for f in self._new_fills}
        for coid, order in list(self._orders.items()):
            if order.state not in TERMINAL_STATES or order.updated_ms > cutoff or coid in self._dirty_orders:
                continue
            keys = self._fills_by_order.get(coid, {}).keys()
            if any(k in self._unannounced or k in unwritten for k in keys):
                continue
            del self._orders[coid]
            del self._exchange_filled[coid]
            self._price_ts.pop(coid, None)
            for key in self._fills_by_order.pop(coid, {}):
                self._fills.pop(key, None)
            self._fills_complete.discard(coid)

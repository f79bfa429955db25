"""The journal's part of a modify of a resting order (`OrderExecutor.modify`): the price it is sent for,
written ahead of the send, and the order's price as the exchange reports it (`models.reported_price`).

A mixin of `Journal` (journal.py), which holds the state it uses; kept apart so that each module stays one
responsibility long.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from hedge_strategy.exchange.coid import describe_coid
from hedge_strategy.exchange.events import OrderUpdate, VenueState
from hedge_strategy.execution.models import RESTING_ORDER_TYPE, JournalOrder, now_ms, reported_price

if TYPE_CHECKING:
    from hedge_strategy.execution.journal_store import JournalStore


class ModifyRecords:
    """A modify in flight, in the journal. The state and the two methods below are `Journal`'s."""

    _store: JournalStore
    _write_lock: asyncio.Lock
    _closed: bool
    _price_ts: dict[int, int]  # when the exchange reported the price an order has (ms)

    def get(self, coid: int) -> JournalOrder | None:
        raise NotImplementedError

    def _touch(self, order: JournalOrder) -> None:
        raise NotImplementedError

    async def record_modify(self, coid: int, price: Decimal) -> None:
        """Commit the price a modify of a live order is about to be sent for (write-ahead: `record_new`)."""
        order = self.get(coid) if not self._closed else None
        if order is None or order.is_terminal:
            raise ValueError(f"{describe_coid(coid)} is not a live order of the journal: no modify")
        async with self._write_lock:  # no background batch holding the row without it commits after it
            order.modify_price, order.updated_ms = price, now_ms()
            try:
                await asyncio.to_thread(self._store.set_modify_price, coid, str(price), order.updated_ms)
            except BaseException:
                order.modify_price = None
                raise
        logger.info("journal: recorded a modify of {} from {} to {} before sending", describe_coid(coid),
                    order.price, price)

    def modify_settled(self, coid: int, why: str) -> None:
        """The modify in flight is refused (`why`): the order stays where the exchange last showed it."""
        order = self.get(coid)
        if order is not None and order.modify_price is not None:
            logger.info("journal: the modify of {} to {} {}; it stays at {}", describe_coid(coid),
                        order.modify_price, why, order.price)
            order.modify_price = None
            self._touch(order)

    def _take_price(self, order: JournalOrder, update: OrderUpdate) -> bool:
        """The exchange's price of the order and the modify it confirms (`models.reported_price`)."""
        coid = order.client_order_index
        price, confirmed = reported_price(order, update, self._price_ts.get(coid, 0))
        if price is not None:
            logger.info("journal: {} now at {} (was {}), as the exchange reports it", describe_coid(coid),
                        price, order.price)
            order.price, self._price_ts[coid] = price, update.ts_ms
        if confirmed:
            order.modify_price = None
        return price is not None or confirmed

    def _take_size(self, order: JournalOrder, update: OrderUpdate) -> bool:
        """A live resting order the exchange shows larger than the journal holds it: a modify gave its
        remainder the size it was sent with after a fill the journal had not seen yet (the simulator's
        ModifyOrder sets the remaining size, `lighter_sim/engine.py` `_execute_modify`; inferred for the
        venue). The exchange's size is taken: with the journal's, the fills would end the order FILLED (and A
        clear its entry for B's wash guard) while its remainder still rests."""
        if (order.order_type != RESTING_ORDER_TYPE or update.state is not VenueState.LIVE
                or update.initial_size <= order.size):
            return False
        logger.warning("journal: {} is {} at the exchange, not {}: a modify re-sized it after a fill; the "
                       "exchange's size taken", describe_coid(order.client_order_index), update.initial_size,
                       order.size)
        order.size = update.initial_size
        return True

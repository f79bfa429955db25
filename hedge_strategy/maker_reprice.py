"""Re-pricing A's resting order in place (one ModifyOrder) when the book moved away from it or through it.

The reference is the price A would place now: depth N of the book *without A's own order* (when the book moved
through A's price, A's order is the best level alone and would otherwise be its own reference), kept clear of
the opposite touch by the maker speed bump's move on Standard (`LighterAccount.live_maker_price`, the price a
new order would get). Measured from depth N alone, the room itself (~100 ticks on Standard) read as drift.
Behind it by more than `strategy.max_price_drift_ticks` (the touch moved away), or ahead of it, through the
book, by more than `strategy.max_through_ticks` (the next taker would fill it at a price the market has left,
and B's hedge at the then touch pays the difference: bench/README.md "tiers (session 4)"): A modifies the
order to that price. A modify is one transaction and one maker speed bump (a cancel and a new order were two
of each), and the order keeps resting at its old price meanwhile. Without a fresh book nothing is sent.

No wash trade meanwhile (`bus.resting`): before the modify is posted, A's published entry bounds B by the
more aggressive of the old and the new price (a bid: the higher; an ask: the lower), so B's IOC can match the
order at neither, and names no size (`UNSIZED`); once the exchange shows the new price (or refused the
modify), the entry names the price and the size the order has (`narrow`). Redis not answering: no modify is
sent (the entry could not be widened); a narrowing that fails leaves the wider entry, which still bounds B
soundly, and is tried again at the next wake-up.

One modify at a time: none while one is in flight (recorded in the journal, `JournalOrder.modify_price`). One
the exchange has neither shown nor refused after `MODIFY_UNCONFIRMED_S` ends the order by a cancel (A's loop).
After a modify that was not sent or was refused, the next waits `MODIFY_RETRY_S`. And two attempts are at
least `throttle.modify_interval_s` apart (each spends a sendTx token, one given up at departure too): a
trending book does not spend the tier's budget (Standard's 60 requests a minute) on modifies, so the cancel of
a partly filled order does not queue behind them.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from decimal import Decimal

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus.resting import RestingOrder
from hedge_strategy.config import StrategyConfig
from hedge_strategy.exchange import SendStatus, Side, describe_coid
from hedge_strategy.exchange.throttle import modify_interval_s
from hedge_strategy.execution import JournalOrder
from hedge_strategy.runtime import Runtime

# The entry of an order while a modify of it is in flight names no size, so B keeps the bound whatever
# fills its hedge covers: a modify that meets a fill A has not seen yet gives the remainder the size it was
# sent with (the simulator's ModifyOrder sets the remaining size; inferred for the venue), so the order may
# rest on after fills adding up to the size A published. Narrowed (the modify shown or refused), it names the
# size again.
UNSIZED = None
MODIFY_UNCONFIRMED_S = 5.0  # a modify neither shown nor refused by then: the order is cancelled instead
MODIFY_RETRY_S = 1.0  # after a modify not sent (no book, Redis down) or refused: the next one waits this long


def moved_reason(side: Side, price: Decimal, target: Decimal, tick: Decimal,
                 cfg: StrategyConfig) -> str | None:
    """Why an order of `side` at `price` should be re-priced, A's price now being `target`; None: it stays
    (see the module docstring)."""
    behind = (target - price if side is Side.BUY else price - target) / tick
    if behind > cfg.max_price_drift_ticks:
        return f"A's price now is {target}, {behind:.0f} ticks ahead of it"
    if -behind > cfg.max_through_ticks:
        return (f"the book moved {-behind:.0f} ticks through its price (A's price now {target}): it would "
                "fill at a stale price")
    return None


def bounding_price(side: Side, old: Decimal, new: Decimal) -> Decimal:
    """The price that bounds B for an order of `side` at `old` or `new`: the more aggressive of the two."""
    return max(old, new) if side is Side.BUY else min(old, new)


class Repricer:
    """The modifies of one resting order (A's loop, `Maker._while_resting`)."""

    def __init__(self, rt: Runtime, coid: int, maker_price: Callable[[JournalOrder], Decimal | None],
                 entry: Callable[[], RestingOrder | None],
                 publish: Callable[[RestingOrder], Awaitable[None]],
                 clock: Callable[[], float]) -> None:
        self.rt = rt
        self.coid = coid
        self.cfg = rt.config.strategy
        self._maker_price = maker_price  # A's price for the order now, without it (None: no book)
        self._entry = entry  # the entry for B's wash guard as last published
        self._publish = publish  # publishes an entry (raises RedisError)
        self._clock = clock
        self._sent_at: float | None = None  # when the modify in flight left
        self._intended: Decimal | None = None  # the price it was sent for
        self._retry_at = -math.inf
        ex = rt.config.exchange
        self.interval_s = modify_interval_s(ex.tier, ex.shared_budget)  # between two attempts, at least
        self._next_at = -math.inf  # the earliest the next attempt may go out
        self.sent = 0  # modifies sent

    def reason(self, order: JournalOrder) -> str | None:
        """Why the order should be modified now (None: it stays, or a modify may not go out yet)."""
        self._settle(order)
        if order.modify_price is not None or self._clock() < self._due() or order.filled_size > 0:
            return None
        target = self._maker_price(order)
        if target is None or target == order.price:
            return None
        return moved_reason(order.side, order.price, target, self.rt.market.tick, self.cfg)

    def _settle(self, order: JournalOrder) -> None:
        """A modify sent and no longer in flight: refused by the sequencer when the order is not at its price
        (then the next waits `MODIFY_RETRY_S`, as after one refused at sendTx)."""
        if self._sent_at is None or order.modify_price is not None:
            return
        self._sent_at = None
        if order.price != self._intended and not order.is_terminal:
            self._retry_at = self._clock() + MODIFY_RETRY_S

    def _due(self) -> float:
        """When the next modify may go out: after the retry wait, and the attempts' spacing."""
        return max(self._retry_at, self._next_at)

    def wake_in(self, order: JournalOrder) -> float:
        """Seconds until A's loop must look again without any event: when a modify may go out again after
        one not sent or refused, or when the modify in flight has waited too long; infinite otherwise."""
        now = self._clock()
        if order.modify_price is not None and self._sent_at is not None:
            return max(self._sent_at + MODIFY_UNCONFIRMED_S - now, 0.0)
        due = self._due()
        return due - now if due > now else math.inf

    def unconfirmed(self, order: JournalOrder) -> str | None:
        """A cancel reason when the modify in flight has been neither shown nor refused for too long."""
        if order.modify_price is None or self._sent_at is None:
            return None
        if self._clock() - self._sent_at < MODIFY_UNCONFIRMED_S:
            return None
        return (f"its modify to {order.modify_price} is neither shown nor refused after "
                f"{MODIFY_UNCONFIRMED_S:g} s")

    async def modify(self, order: JournalOrder, why: str) -> None:
        """One modify to the price A would place at when it leaves (after the throttle's wait): given up when
        the order filled meanwhile or that price no longer calls for it."""
        side = order.side

        def price_at_send() -> Decimal | None:
            if order.filled_size > 0 or order.is_terminal:
                return None  # a fill came first: A's loop cancels the remainder
            target = self._maker_price(order)
            if target is None or target == order.price:
                return None
            return target if moved_reason(side, order.price, target, self.rt.market.tick, self.cfg) else None

        async def announce(price: Decimal) -> None:
            # Write-ahead for B's wash guard, before the post: a RedisError sends nothing.
            self._intended = price
            await self._publish(RestingOrder(self.coid, side.value, bounding_price(side, order.price, price),
                                             UNSIZED))

        self._next_at = self._clock() + self.interval_s  # an attempt spends a token, whatever comes of it
        result = await self.rt.orders.modify(self.rt.market, self.coid, price_at_send, why, announce=announce)
        if result.status is SendStatus.REJECTED:
            self._retry_at = self._clock() + MODIFY_RETRY_S
        else:
            self._sent_at = self._clock()
            self.sent += 1

    async def narrow(self, order: JournalOrder) -> None:
        """With no modify in flight, the entry for B's wash guard names the price the order has (it was
        widened for a modify that is now shown or refused), and its size again while nothing of it filled:
        the exchange's report that settled the modify gave the journal the order's size at the exchange
        (`Journal._take_size`). A Redis error leaves the wider entry (sound)."""
        entry = self._entry()
        if (order.modify_price is not None or order.is_terminal or entry is None
                or entry.client_order_index != self.coid):
            return
        size = order.size if order.filled_size == 0 else UNSIZED
        if (entry.price, entry.size) == (order.price, size):
            return
        try:
            await self._publish(RestingOrder(self.coid, entry.side, order.price, size))
        except RedisError as exc:
            logger.warning("A: the entry of {} for B's wash guard still bounds at {} (not narrowed to {}: "
                           "{!r}); tried again at the next wake-up", describe_coid(self.coid), entry.price,
                           order.price, exc)

"""A's maker orders left unsettled: one whose send had no verdict (no answer within `exchange.send_timeout_s`,
a 5xx, an unreadable answer: the executor's UNKNOWN), and, at a cycle's start or on shutdown, any an earlier
cycle or run left live.

The account stream usually tells within a round trip where an order whose send had no verdict is. When it does
not (the chaos bench's `ws_silence`, seed 3: A's order was written to a silent account WebSocket, went
unanswered, and A waited the whole `exchange.unknown_order_grace_s`, 10 s, before the reconciliation found it
placed and filled: that fill was naked 10.5 s), A looks the order up by client order index as B's chase does
its IOCs: once `exchange.order_lookup_after_s` (1 s) has passed since the send (counted, as the grace is, from
its mark: the answer, or the timeout), and once more halfway through the grace. Each look is
`OrderExecutor.check_by_rest`, the path A's look at its resting order in a silence takes too
(`maker_rest_check`): one `accountOrders` read, the transaction by its hash when the order is not found (a
refusal by the sequencer settles it at once), a `trades` read when it filled. What a look finds goes through
the tracker like a streamed report: a fill is applied and announced once whichever path brings it first (the
journal knows each trade), so its hedge request goes out at once; an order found resting is A's resting order
again (the resting loop manages it), or, at a cycle's start and on shutdown, cancelled before anything new
("from before is still live").

Not found proves nothing: an ambiguous send may still land (docs/design.md, the nonce discipline), so the
order waits out the rest of the grace as before, then a reconciliation decides (REJECTED "never reached the
exchange" when it is still not found). Two looks at most per wait: the Standard tier's 60 requests a minute
are shared by everything, and a look may cost two or three of them.

The wait does not end on the stop signal: A must know whether the order rests before it leaves (to cancel it),
and the wait is bounded by the grace. (Before, a stop cut it short and A's resting loop reconciled again and
again until the grace had passed.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from loguru import logger

from hedge_strategy.bus import now_ms
from hedge_strategy.exchange import VenueError, describe_coid
from hedge_strategy.execution import PAST_THE_GRACE_S, JournalOrder, OrderState
from hedge_strategy.runtime import Runtime


def look_times(since_send_s: float, lookup_after_s: float, grace_s: float) -> list[float]:
    """Seconds from now of the looks by client order index at an order sent `since_send_s` ago: the first once
    `lookup_after_s` has passed since the send (at once when it has), a second halfway through the grace when
    that is at least `lookup_after_s` later. None at or after the grace's end: the reconciliation there looks
    anyway."""
    end = grace_s - since_send_s
    first = max(lookup_after_s - since_send_s, 0.0)
    looks = [first] if first < end else []
    second = grace_s / 2 - since_send_s
    if looks and second - first >= lookup_after_s and second < end:
        looks.append(second)
    return looks


def is_live(order: JournalOrder) -> bool:
    """Resting on the exchange, or accepted by its API (a PENDING_SUBMIT marked sent): to be cancelled."""
    return order.state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED) or (
        order.state is OrderState.PENDING_SUBMIT and order.sent_ms is not None)


class UnsettledOrders:
    """A's maker orders whose outcome is unknown or that an earlier cycle left live (the module docstring)."""

    def __init__(self, rt: Runtime, clock: Callable[[], float], confirm_s: float) -> None:
        self.rt = rt
        self.clock = clock  # the waits are measured on it (a test moves it by hand)
        self.confirm_s = confirm_s  # how long a cancel's final state is waited for

    async def settle(self, pending: Sequence[JournalOrder]) -> None:
        """Those of `pending` still live are cancelled; those whose outcome is unknown are waited for (and
        looked up) until the exchange tells, then cancelled in turn when found resting."""
        await self._cancel_left_live([o for o in pending if is_live(o)])
        unknown = [o for o in pending if not is_live(o)]  # UNKNOWN, or PENDING_SUBMIT never marked sent
        if unknown:
            await self.await_known(unknown)
            await self._cancel_left_live([o for o in unknown if is_live(o)])

    async def await_known(self, orders: Sequence[JournalOrder]) -> None:
        """The orders' outcome from the exchange: the stream, the looks, then (the grace over) a
        reconciliation, which also settles a PENDING_SUBMIT row a previous process never marked sent."""
        await self._wait(orders)
        if any(o.state in (OrderState.UNKNOWN, OrderState.PENDING_SUBMIT) for o in orders):
            await self.rt.orders.reconcile("unsettled maker order")

    async def _cancel_left_live(self, live: Sequence[JournalOrder]) -> None:
        if not live:
            return
        labels = ", ".join(f"{describe_coid(o.client_order_index)} {o.state}" for o in live)
        logger.info("A: {} from before is still live: cancelling it before anything new", labels)
        for order in live:
            coid = order.client_order_index
            await self.rt.orders.cancel(self.rt.market, coid, "left from an earlier cycle", self.confirm_s)

    async def _wait(self, orders: Sequence[JournalOrder]) -> None:
        """Until none of `orders` is UNKNOWN any more, looked up by client order index on the way, or until
        the grace since the latest send has passed. A grace over already (an order of a previous process, or
        one a reconciliation could not settle) starts again from now: the wait never ends at once, so a caller
        that comes back to an order still unknown does not spin."""
        unknown = self._still_unknown(orders)
        if not unknown:
            return
        ex = self.rt.config.exchange
        grace = ex.unknown_order_grace_s
        since_send = max((now_ms() - max(o.sent_ms or o.created_ms for o in unknown)) / 1000, 0.0)
        if since_send >= grace:
            since_send = 0.0
        start = self.clock()
        looks = [start + t for t in look_times(since_send, ex.order_lookup_after_s, grace)]
        logger.info("A: waiting for the exchange to settle {} (its send had no verdict): looked up by client "
                    "order index {}, within the {:g} s grace",
                    ", ".join(describe_coid(o.client_order_index) for o in unknown),
                    f"in {looks[0] - start:.1f} s" if looks else "by a reconciliation", grace)
        for look_at in looks:
            if await self._known_by(unknown, look_at):
                return
            await self._look(unknown)
            if not self._still_unknown(unknown):
                return
        await self._known_by(unknown, start + grace - since_send + PAST_THE_GRACE_S)

    async def _known_by(self, orders: Sequence[JournalOrder], at: float) -> bool:
        """Wait until the stream (or a reconciliation) has settled every one of `orders`, or the clock reads
        `at`; True when they are settled."""
        left = at - self.clock()
        if left > 0 and self._still_unknown(orders):
            try:
                await self.rt.orders.wait_known([o.client_order_index for o in orders], left)
            except TimeoutError:
                pass
        return not self._still_unknown(orders)

    async def _look(self, orders: Sequence[JournalOrder]) -> None:
        """One look by client order index at each order still unknown; one line per order on what it found."""
        for order in self._still_unknown(orders):
            coid = order.client_order_index
            what = (f"{describe_coid(coid)}, {(now_ms() - (order.sent_ms or order.created_ms)) / 1000:.1f} s "
                    "after its send without a verdict")
            try:
                fills = await self.rt.orders.check_by_rest(coid)
            except (VenueError, OSError, TimeoutError) as exc:
                logger.warning("A: {}: its lookup by client order index failed ({!r}); waiting for the "
                               "exchange within the grace", what, exc)
                continue
            if order.state is OrderState.UNKNOWN:
                logger.info("A: {}: not found by its client order index; it may still land: waiting out the "
                            "grace", what)
            elif fills or order.filled_size > 0:
                logger.warning("A: {}: found by its client order index ({} {}/{}); each fill goes to B "
                               "at once", what, order.state, order.filled_size, order.size)
            else:  # resting (the caller goes on with it), or ended (refused by the sequencer, cancelled)
                logger.info("A: {}: found by its client order index ({}{})", what, order.state,
                            f": {order.reason}" if order.reason else "")

    @staticmethod
    def _still_unknown(orders: Sequence[JournalOrder]) -> list[JournalOrder]:
        return [o for o in orders if o.state is OrderState.UNKNOWN]

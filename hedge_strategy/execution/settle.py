"""The reconciler's driver, and what it settles between runs (mixed into `Reconciler`).

`run` reconciles every interval and at once after each stream reconnect. In between it wakes for two things
that cannot wait for the next periodic run, and settles them with ONE REST lookup by client order index
(`settle_due`):

* A send whose grace ran out while its order is still PENDING_SUBMIT or UNKNOWN. HTTP 200 from sendTx means
  accepted by the API, not executed: the sequencer can still refuse the transaction (price band, margin) and
  then no order ever appears (lighter-venue.md, last section). A refusal the sequencer's verdict showed
  (tx_verdicts.py) has settled it already; this is for a send whose order and transaction both stayed
  unknown. Found: its state is applied. Not found: it is
  REJECTED, "accepted, never executed" (or "never reached the exchange" after an ambiguous send). So such a
  send is settled within about twice `unknown_grace_s` (one grace, plus at most one re-check interval), and a
  caller waiting on it is woken, never left hanging.
* Fills the tracker holds because they name no client order index and no order update has named their
  exchange order index yet. After `HELD_FILL_PATIENCE_S` the orders without a known exchange order index are
  looked up, which teaches the tracker their index; fills still unmatched `HOLD_FILL_S` after they arrived
  are given up (logged) by the tracker.

Each item is looked up at most once per re-check interval, so an answer that settles nothing (an order found
in a state the adapter does not recognise, a fill of an order that is not ours) never makes the driver spin.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from loguru import logger

from hedge_strategy.execution.journal import Journal, JournalOrder, OrderState, now_ms
from hedge_strategy.execution.tracker import HOLD_FILL_S, OrderTracker

if TYPE_CHECKING:
    from hedge_strategy.exchange.adapter import LighterAccount
    from hedge_strategy.execution.reconcile import ReconcileReport

HELD_FILL_PATIENCE_S = 2.0  # a held fill waits this long for the stream to name its order before a lookup
_SETTLE_AFTER_GRACE = frozenset({OrderState.PENDING_SUBMIT, OrderState.UNKNOWN})


class DueSettlement:
    """The driver loop and `settle_due`; `Reconciler` provides the attributes declared here."""

    account: LighterAccount
    journal: Journal
    tracker: OrderTracker
    unknown_grace_s: float
    _lock: asyncio.Lock
    _looked_up: dict[int, float]

    async def run_once(self, reason: str) -> ReconcileReport:
        raise NotImplementedError

    def resolve_missing(self, order: JournalOrder, now: int, report: ReconcileReport | None) -> None:
        raise NotImplementedError

    async def run(self, interval_s: float) -> None:
        """Reconcile every `interval_s` and at once after each stream reconnect, until cancelled; settle
        overdue sends and held fills (`settle_due`) in between."""
        loop = asyncio.get_running_loop()
        seen = self.tracker.reconnects
        next_run = loop.time() + interval_s
        while True:
            reason = await self._next_work(seen, next_run)
            if reason == "due":
                try:
                    await self.settle_due()
                except Exception:
                    logger.exception("reconcile {}: settling overdue sends and held fills failed; retried "
                                     "at the next wake", self.journal.account_index)
                continue
            # Reconnects up to now are covered by the run starting now; one during it triggers another.
            seen = self.tracker.reconnects
            next_run = loop.time() + interval_s
            try:
                await self.run_once(reason)
            except Exception:
                logger.exception(
                    "reconcile {} ({}): failed; next attempt as scheduled", self.journal.account_index, reason
                )

    async def _next_work(self, seen_reconnects: int, next_run: float) -> str:
        """Wait for a reconnect ("reconnect"), the next periodic run ("periodic") or a settlement ("due")."""
        loop = asyncio.get_running_loop()
        while True:
            if self.tracker.reconnects > seen_reconnects:
                return "reconnect"
            now = loop.time()
            if now >= next_run:
                return "periodic"
            due_in = self._due_in_s()
            if due_in is not None and due_in <= 0:
                return "due"
            # Any applied event may change what is due; a send marked sent raises none, hence the re-check.
            wait_s = min(next_run - now, self._recheck_s(), due_in if due_in is not None else next_run - now)
            await self.tracker.wait_change(wait_s)

    def _recheck_s(self) -> float:
        return max(self.unknown_grace_s, 1.0)

    def _overdue_sends(self) -> list[JournalOrder]:
        now = now_ms()
        return [o for o in self.journal.unresolved() if o.state in _SETTLE_AFTER_GRACE
                and o.sent_ms is not None and now - o.sent_ms >= self.unknown_grace_s * 1000]

    def _due_in_s(self) -> float | None:
        """Seconds until `settle_due` has something to do (<= 0: now); None when nothing waits."""
        waits: list[float] = []
        now = now_ms()
        for order in self.journal.unresolved():
            if order.state in _SETTLE_AFTER_GRACE and order.sent_ms is not None:
                due = (order.sent_ms - now) / 1000 + self.unknown_grace_s
                waits.append(max(due, self._next_look_in_s(order.client_order_index)))
        for held in self.tracker.held_fills:
            due = held.since + HELD_FILL_PATIENCE_S - time.monotonic()
            give_up = held.since + HOLD_FILL_S - time.monotonic()
            waits.append(min(max(due, self._next_look_in_s(held.fill.trade_id)), give_up))
        return min(waits) if waits else None

    def _next_look_in_s(self, key: int) -> float:
        """Seconds until `key` (a client order index or a trade id) may be looked up again."""
        last = self._looked_up.get(key)
        return -1.0 if last is None else last + self._recheck_s() - time.monotonic()

    async def settle_due(self) -> None:
        """One REST lookup by client order index for what is overdue (see the module docstring)."""
        async with self._lock:
            now = now_ms()
            overdue = [o for o in self._overdue_sends() if self._next_look_in_s(o.client_order_index) <= 0]
            waiting = [h for h in self.tracker.held_fills
                       if time.monotonic() - h.since >= HELD_FILL_PATIENCE_S
                       and self._next_look_in_s(h.fill.trade_id) <= 0]
            unindexed = [o for o in self.journal.unresolved() if o.order_index is None] if waiting else []
            coids = list(dict.fromkeys(o.client_order_index for o in [*overdue, *unindexed]))
            looked_at = time.monotonic()
            self._looked_up = {k: t for k, t in self._looked_up.items() if looked_at - t < self._recheck_s()}
            self._looked_up.update({key: looked_at for key in [*coids, *(h.fill.trade_id for h in waiting)]})
            if coids:
                if waiting:
                    logger.info("reconcile {}: {} fill(s) wait for their order; looking up {} order(s) by "
                                "client order index", self.journal.account_index, len(waiting), len(coids))
                found = await self.account.orders_by_client_index(coids)
                for order in overdue:
                    if order.client_order_index in found:
                        self.tracker.apply_update(found[order.client_order_index], "rest")
                    else:
                        self.resolve_missing(order, now, None)
                for order in unindexed:
                    if order.client_order_index in found and order not in overdue:
                        self.tracker.apply_update(found[order.client_order_index], "rest")
            await self.tracker.release_held()
            self.tracker.give_up_held()

"""Reconciliation: the exchange is the single source of truth, the journal is brought in line with it.

Local records are what this process believed; a restart, a manual trade or a liquidation makes them wrong,
and a stream does not replay what happened while it was down. So it runs at start-up (nothing trades until it
finished), after every stream reconnect and every N seconds. One run:
1. positions from the exchange replace local belief, one log line per difference;
2. every unresolved order (PENDING_SUBMIT, UNKNOWN, OPEN, PARTIALLY_FILLED) is resolved: from the open
   orders when it is among them, else looked up by client order index. Found: its exchange state is
   applied. (A send the sequencer refused is REJECTED as soon as its verdict is known: tx_verdicts.py;
   `confirm_final` reads the verdict by the transaction's hash when the order is not found.) Not found:
   within `unknown_grace_s` of its send (or of its creation when it was never sent) it
   stays as it is, because the exchange may not have indexed it yet; past the grace it is
   REJECTED("never reached the exchange"). An order this process wrote and has not marked sent is a send
   in flight: only its sender decides it. Open orders the journal does not hold as live are reported
   (orphans);
3. fills missed during a stream gap are read from the trades endpoint since the persisted watermark (minus a
   margin for late indexing) and go through the tracker, so each is applied and announced exactly once.

A run costs three or four REST reads (premium weight about 1,200-1,500 of the 24,000 per minute).

Between runs the driver (`run`, in `settle.py`) settles what cannot wait for the next periodic run: a send
whose grace ran out without its order appearing (HTTP 200 from sendTx means accepted by the API, not
executed), and fills that wait for their order (see `settle.py`).

`confirm_final` is what callers use after every cancel: it waits for the order's terminal state (stream
events first, REST lookup as fallback) and makes sure all its fills are applied, so a fill that raced the
cancel is never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from hedge_strategy.exchange.coid import describe_coid
from hedge_strategy.exchange.events import Fill, OrderUpdate, PositionSnapshot
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.execution.journal import Journal, JournalOrder, OrderState, now_ms
from hedge_strategy.execution.settle import DueSettlement
from hedge_strategy.execution.tracker import OrderTracker
from hedge_strategy.execution.tx_verdicts import SETTLED_BY_REFUSAL

if TYPE_CHECKING:
    from hedge_strategy.exchange.adapter import LighterAccount

WATERMARK_KEY = "reconcile.trades_watermark_ms"
NEVER_REACHED = "never reached the exchange"
NEVER_EXECUTED = "accepted, never executed"  # sendTx answered 200, the order never appeared
_ACKNOWLEDGED = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})
# A wait for an order's grace ends this much after it, so the settling that follows finds it over: that
# decides by the journal's whole milliseconds, and an order found "within the grace" by a millisecond would be
# waited for again.
PAST_THE_GRACE_S = 0.1

__all__ = ["NEVER_EXECUTED", "NEVER_REACHED", "WATERMARK_KEY", "ReconcileReport", "Reconciler", "now_ms"]


@dataclass
class ReconcileReport:
    reason: str
    started_ms: int
    finished_ms: int = 0
    position_changes: list[str] = field(default_factory=list)
    resolved: dict[int, OrderState] = field(default_factory=dict)  # orders whose state this run changed
    within_grace: list[int] = field(default_factory=list)  # not found yet, left as they were
    rejected: list[int] = field(default_factory=list)  # not found past the grace
    recovered_fills: list[int] = field(default_factory=list)  # trade ids first learned by this run
    orphans: list[int] = field(default_factory=list)  # open on the exchange, not live in the journal
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every step got its answer from the exchange."""
        return not self.errors

    def summary(self) -> str:
        return (
            f"{len(self.position_changes)} position changes, {len(self.resolved)} orders resolved, "
            f"{len(self.within_grace)} within grace, {len(self.rejected)} rejected, "
            f"{len(self.recovered_fills)} fills recovered, {len(self.orphans)} orphans, "
            f"{len(self.errors)} errors"
        )


class Reconciler(DueSettlement):
    def __init__(self, account: LighterAccount, journal: Journal, tracker: OrderTracker,
                 markets: Sequence[MarketInfo], unknown_grace_s: float, *,
                 trade_margin_s: float = 30.0) -> None:
        self.account = account
        self.journal = journal
        self.tracker = tracker
        self.markets = {m.market_id: m for m in markets}
        self.unknown_grace_s = unknown_grace_s
        self.trade_margin_ms = int(trade_margin_s * 1000)  # trades may be indexed a little after their time
        self.last_report: ReconcileReport | None = None
        self.completed_runs = 0
        self._started_ms = now_ms()  # orders created since then and not yet sent are this process's sends
        self._report_ready = asyncio.Event()  # replaced after each run: waiters see the next report
        self._lock = asyncio.Lock()  # one run at a time: the periodic driver and callers share it
        self._looked_up: dict[int, float] = {}  # coid or trade id -> when settle_due last looked it up

    @property
    def positions(self) -> dict[int, PositionSnapshot]:
        """Positions as last confirmed by the exchange (kept current by stream snapshots in between)."""
        return self.tracker.positions

    # ---------------------------------------------------------------- one run

    async def run_once(self, reason: str) -> ReconcileReport:
        async with self._lock:
            report = ReconcileReport(reason=reason, started_ms=now_ms())
            logger.info("reconcile {} ({}): started", self.journal.account_index, reason)
            await self._step(report, "positions", self._reconcile_positions(report))
            await self._step(report, "orders", self._reconcile_orders(report))
            await self._step(report, "fills", self._recover_missed_fills(report))
            await self.tracker.release_held()  # the orders step may have named the order of a held fill
            self.tracker.give_up_held()
            await self.tracker.announce_pending()  # retries announcements whose callback failed
            report.finished_ms = now_ms()
            self.last_report = report
            self.completed_runs += 1
            ready, self._report_ready = self._report_ready, asyncio.Event()
            ready.set()
            log = logger.info if report.complete else logger.warning
            log("reconcile {} ({}): done in {} ms: {}", self.journal.account_index, reason,
                report.finished_ms - report.started_ms, report.summary())
            return report

    async def next_report(self, timeout: float) -> ReconcileReport:  # noqa: ASYNC109
        """The report of the next run to finish (from any caller or the driver); TimeoutError if none."""
        await asyncio.wait_for(self._report_ready.wait(), timeout)
        assert self.last_report is not None
        return self.last_report

    async def _step(self, report: ReconcileReport, name: str, work: Awaitable[None]) -> None:
        """Run one step; an exchange error ends that step only (and decides nothing from missing data)."""
        try:
            await work
        except Exception as exc:
            report.errors.append(f"{name}: {exc!r}")
            logger.warning(
                "reconcile {}: {} step failed ({!r}); its state is left as it was until the next run",
                self.journal.account_index, name, exc)

    async def _reconcile_positions(self, report: ReconcileReport) -> None:
        read_from = self.tracker.position_step()  # a fill applied during the read may be missing from it
        fresh = await self.account.positions()
        believed = self.tracker.positions
        for market_id in sorted(set(believed) | set(fresh)):
            old = believed[market_id].size if market_id in believed else Decimal(0)
            new = fresh[market_id].size if market_id in fresh else Decimal(0)
            if old != new:
                line = f"{self._symbol(market_id)} believed {old}, exchange {new}"
                report.position_changes.append(line)
                logger.info("reconcile {}: position {}; the exchange's value replaces it",
                            self.journal.account_index, line)
        self.tracker.replace_positions(fresh, read_from)

    async def _reconcile_orders(self, report: ReconcileReport) -> None:
        # The open orders come in one call; only orders missing from it are looked up by client index
        # (they ended, or never arrived), which keeps a steady-state run cheap in rate-limit weight.
        active = {u.client_order_index: u for u in await self.account.open_orders()}
        for update in active.values():
            order = self.journal.get(update.client_order_index)
            # An order recorded REJECTED that rests on the exchange executed late: it takes the exchange's
            # state (the journal's rule for a rejected order the exchange reports)
            if order is not None and (not order.is_terminal or order.state is OrderState.REJECTED):
                self._apply_found(order, update, report)
            else:
                self._report_orphan(update, order, report)
        missing = [o for o in self.journal.unresolved() if o.client_order_index not in active]
        if not missing:
            return
        found = await self.account.orders_by_client_index([o.client_order_index for o in missing])
        now = now_ms()
        for order in missing:
            update = found.get(order.client_order_index)
            if update is not None:
                self._apply_found(order, update, report)
            else:
                self.resolve_missing(order, now, report)

    def _apply_found(self, order: JournalOrder, update: OrderUpdate, report: ReconcileReport) -> None:
        before = order.state
        self.tracker.apply_update(update, "rest")
        if order.state is not before:
            report.resolved[order.client_order_index] = order.state
            logger.info("reconcile {}: {} was {}, the exchange says {}: now {} (filled {}/{})",
                        self.journal.account_index, describe_coid(order.client_order_index), before,
                        update.venue_status, order.state, order.filled_size, order.size)

    def resolve_missing(self, order: JournalOrder, now: int, report: ReconcileReport | None) -> None:
        """An order the exchange does not find: wait out the grace, then it never arrived."""
        coid = order.client_order_index
        if order.state in _ACKNOWLEDGED:
            logger.warning("reconcile {}: {} is {} but the exchange does not find it; left as is",
                           self.journal.account_index, describe_coid(coid), order.state)
            return
        if order.sent_ms is None and order.created_ms >= self._started_ms:
            # Written by this process and not marked sent: its send is in flight, and only the sender's
            # answer (or, if this process dies, the next process's reconciliation) may decide it.
            if report is not None:
                report.within_grace.append(coid)
            logger.info("reconcile {}: {} not found, its send by this process is still in flight; left {}",
                        self.journal.account_index, describe_coid(coid), order.state)
            return
        age_s = (now - (order.sent_ms or order.created_ms)) / 1000
        if age_s < self.unknown_grace_s:
            if report is not None:
                report.within_grace.append(coid)
            logger.info("reconcile {}: {} ({}) not found {:.1f}s after its {}; within the {}s grace, left {}",
                        self.journal.account_index, describe_coid(coid), order.state, age_s,
                        "send" if order.sent_ms else "creation", self.unknown_grace_s, order.state)
            return
        # PENDING_SUBMIT with a send time: the send was accepted (HTTP 200) and the sequencer refused it.
        accepted = order.state is OrderState.PENDING_SUBMIT and order.sent_ms is not None
        reason = NEVER_EXECUTED if accepted else NEVER_REACHED
        unknown = order.state is OrderState.UNKNOWN  # read before the transition changes it
        if self.tracker.transition(coid, OrderState.REJECTED, reason=reason):
            if report is not None:
                report.rejected.append(coid)
                report.resolved[coid] = OrderState.REJECTED
            logger.warning(
                "reconcile {}: {} ({}) not found {:.1f}s after its {}: marked REJECTED ({})",
                self.journal.account_index,
                describe_coid(coid),
                "unknown outcome" if unknown else "accepted by the API" if accepted else "was pending submit",
                age_s,
                "send" if order.sent_ms else "creation",
                reason,
            )

    async def _recover_missed_fills(self, report: ReconcileReport) -> None:
        started = now_ms()
        stored = self.journal.get_meta(WATERMARK_KEY)
        if stored is not None:
            since = int(stored) - self.trade_margin_ms
        else:
            # A fresh journal: only orders it holds can have fills of ours. With none, start the watermark
            # now, so trades made before this journal existed are never announced as new.
            live = [o.created_ms for o in self.journal.unresolved()]
            if not live:
                self.journal.set_meta(WATERMARK_KEY, str(started))
                return
            since = min(live) - self.trade_margin_ms
        for fill in await self.account.trades_since(since):
            if await self.tracker.ingest_fill(fill, source="reconcile"):
                report.recovered_fills.append(fill.trade_id)
                coid = self.tracker.client_index_of(fill)
                logger.warning(
                    "reconcile {}: trade {} for {} ({} {} @ {}) was missed by the stream; recovered",
                    self.journal.account_index, fill.trade_id, describe_coid(coid) if coid else "-",
                    fill.side, fill.size, fill.price)
        # Everything before the call started is now known (up to late indexing, which the margin covers).
        self.journal.set_meta(WATERMARK_KEY, str(started))

    def _report_orphan(self, update: OrderUpdate, order: JournalOrder | None, report: ReconcileReport
                       ) -> None:
        report.orphans.append(update.client_order_index)
        logger.warning(
            "reconcile {}: {} is open on the exchange ({} {} @ {} on {}) but the journal has it as {}; "
            "not managed by this process, cancel it by hand if unwanted",
            self.journal.account_index,
            describe_coid(update.client_order_index),
            update.side,
            update.remaining_size,
            update.price,
            self._symbol(update.market_id),
            order.state if order else "unknown",
        )

    # ---------------------------------------------------------------- after a cancel

    async def confirm_final(self, coid: int, timeout: float,  # noqa: ASYNC109 (pinned name)
                            first_look_s: float | None = None) -> JournalOrder:
        """Wait for the order's final state and all its fills; returns it (maybe still live: if time ran out,
        or at once when the sequencer refused a cancel of it meanwhile, tx_verdicts.py).

        Stream events first; when they do not come (stream gap, cancel not yet processed) the order is looked
        up by client order index, and missing fills are read from the trades endpoint. The stream gets
        `first_look_s` (default: a quarter of `timeout`) before the first lookup, twice as long before each
        next one.
        """
        order = self.journal.get(coid)
        if order is None:
            raise KeyError(f"{describe_coid(coid)} is not in the journal")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._await_terminal(order, deadline, first_look_s)
        if not order.is_terminal:
            logger.warning("confirm {}: {} still {} after {:.1f}s; left to its caller and reconciliation",
                           self.journal.account_index, describe_coid(coid), order.state,
                           timeout - (deadline - loop.time()))
            return order
        await self._await_fills(order, deadline, first_look_s)
        logger.info("confirm {}: {} final {}{}, filled {}/{} ({} fills)", self.journal.account_index,
                    describe_coid(coid), order.state, f"({order.reason})" if order.reason else "",
                    order.filled_size, order.size, len(self.journal.fills_for(coid)))
        return order

    async def _await_terminal(self, order: JournalOrder, deadline: float, first_look_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        coid = order.client_order_index
        # How long the stream gets before each REST look
        patience = max(first_look_s if first_look_s is not None else (deadline - loop.time()) / 4, 0.05)
        def settled() -> JournalOrder | None:  # final, or the latest cancel of it refused: it will not take
            return order if order.is_terminal or self.tracker.txs.last_cancel_refused(coid) else None

        while not order.is_terminal and loop.time() < deadline:
            try:
                await self.tracker.wait_for(settled, timeout=min(patience, deadline - loop.time()))
            except TimeoutError:
                pass
            else:
                if not order.is_terminal:
                    logger.warning("confirm {}: the sequencer refused the cancel of {}; it is still {}",
                                   self.journal.account_index, describe_coid(coid), order.state)
                return
            logger.info(
                "confirm {}: no final state for {} from the stream after {:.2f}s; asking the exchange",
                self.journal.account_index, describe_coid(coid), patience)
            try:
                found = await self.account.orders_by_client_index([coid])
            except Exception as exc:  # keep waiting on the stream; the next look may get through
                logger.warning("confirm {}: lookup of {} failed ({!r})", self.journal.account_index,
                               describe_coid(coid), exc)
            else:
                await self._apply_lookup(order, found)
            patience *= 2
            if (grace_left := self._grace_left_s(order)) is not None:
                # Not found within its grace: look again once the grace is over, not a doubled wait later
                # (chaos seed 1: a killed B's journaled, never-sent IOC was settled 18.8 s after it, not 10)
                patience = max(min(patience, grace_left + PAST_THE_GRACE_S), 0.05)

    def _grace_left_s(self, order: JournalOrder) -> float | None:
        """Seconds until `resolve_missing` may settle `order` as never placed; None when no grace applies
        (settled, acknowledged, or its send by this process still in flight: the sender decides)."""
        if order.is_terminal or order.state in _ACKNOWLEDGED:
            return None
        if order.sent_ms is None and order.created_ms >= self._started_ms:
            return None
        return (order.sent_ms or order.created_ms) / 1000 + self.unknown_grace_s - now_ms() / 1000

    async def _apply_lookup(self, order: JournalOrder, found: dict[int, OrderUpdate]) -> None:
        """What a lookup by client order index said of `order`: its exchange state when found; else the
        sequencer's verdict on its transaction (`settle_by_tx`); else the grace (`resolve_missing`)."""
        coid = order.client_order_index
        if coid in found:
            self.tracker.apply_update(found[coid], "rest")
        elif not await self.settle_by_tx(order):
            self.resolve_missing(order, now_ms(), None)

    async def settle_by_tx(self, order: JournalOrder) -> bool:
        """An order its client order index did not find: what did the sequencer do with its transaction? True
        when its verdict settled the order (refused: REJECTED at once, tx_verdicts.py); False leaves it to the
        grace: the transaction is not known yet, it executed and the order is not indexed yet (REST lag), the
        hash is not known (a send of an earlier process), or the lookup failed."""
        if order.state not in SETTLED_BY_REFUSAL:
            return False
        coid = order.client_order_index
        tx_hash = self.tracker.txs.hash_of(coid)
        if tx_hash is None:
            return False
        outcome = self.tracker.txs.outcome(tx_hash)
        if outcome is None:
            try:
                outcome = await self.account.tx_outcome(tx_hash)
            except Exception as exc:
                logger.warning("confirm {}: lookup of tx {} of {} failed ({!r}); left to the grace",
                               self.journal.account_index, tx_hash[:16], describe_coid(coid), exc)
                return False
        if outcome is None:
            logger.info("confirm {}: neither {} nor its tx {} is known to the exchange yet; within the {}s "
                        "grace", self.journal.account_index, describe_coid(coid), tx_hash[:16],
                        self.unknown_grace_s)
            return False
        if outcome.refused:
            self.tracker.apply_tx_outcome(outcome, "rest")
            return order.is_terminal
        self.tracker.txs.learn(outcome)  # executed: no need to ask again
        logger.info("confirm {}: tx {} of {} executed but the order is not found yet (REST lag); within the "
                    "{}s grace", self.journal.account_index, tx_hash[:16], describe_coid(coid),
                    self.unknown_grace_s)
        return False

    async def _await_fills(self, order: JournalOrder, deadline: float, first_look_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        coid = order.client_order_index
        if self.journal.fills_total(coid) >= order.filled_size:
            return
        patience = max((deadline - loop.time()) / 2, 0.05)  # the stream's time to bring them, then REST
        try:
            await self.tracker.wait_fills_applied(coid, timeout=min(patience, first_look_s or patience))
            return
        except TimeoutError:
            pass
        try:
            recovered = await self.recover_order_fills(order)
        except Exception as exc:
            logger.warning("confirm {}: trades lookup for {} failed ({!r})", self.journal.account_index,
                           describe_coid(coid), exc)
            recovered = 0
        if recovered:  # the stream lost fills, so its position snapshots are stale too
            refresh = ReconcileReport(reason=f"confirm {describe_coid(coid)}", started_ms=now_ms())
            await self._step(refresh, "positions", self._reconcile_positions(refresh))
        missing = order.filled_size - self.journal.fills_total(coid)
        if missing > 0:
            logger.warning(
                "confirm {}: {} filled {} per the exchange but fills for only {} found ({} recovered now); "
                "the next reconciliation looks again",
                self.journal.account_index,
                describe_coid(coid),
                order.filled_size,
                self.journal.fills_total(coid),
                recovered,
            )

    # ---------------------------------------------------------------- a live order, the stream silent

    async def check_order(self, coid: int) -> list[Fill]:
        """Look a live order up by client order index (one read) and apply what the exchange says; when it
        filled more than the fills we hold, read them from the trades endpoint. Each goes through the tracker,
        so it is applied and announced once whichever path (stream, this check, a reconciliation) brings it
        first. Returns the fills this call was first to record. For a caller whose stream may be missing news
        (A's resting order in a silence): raises `VenueError` when the exchange does not answer, deciding
        nothing."""
        order = self.journal.get(coid)
        if order is None:
            raise KeyError(f"{describe_coid(coid)} is not in the journal")
        await self._apply_lookup(order, await self.account.orders_by_client_index([coid]))
        if self.journal.fills_total(coid) >= order.filled_size:
            return []
        return await self._recover_fills(order, by="check")

    async def recover_order_fills(self, order: JournalOrder) -> int:
        """Read this order's fills from the trades endpoint (its market, since its creation); count new."""
        return len(await self._recover_fills(order, by="confirm"))

    async def _recover_fills(self, order: JournalOrder, by: str) -> list[Fill]:
        """The order's fills this call was first to record; `by` names the caller in the log line."""
        market = self.markets.get(order.market_id) or self.account.market_by_id(order.market_id)
        since = order.created_ms - self.trade_margin_ms
        recovered: list[Fill] = []
        for fill in await self.account.trades_since(since, market):
            unnamed_but_ours = fill.client_order_index is None and order.order_index == fill.order_index
            if self.tracker.client_index_of(fill) != order.client_order_index and not unnamed_but_ours:
                continue
            if await self.tracker.ingest_fill(fill, source="rest"):
                recovered.append(fill)
                logger.warning(
                    "{} {}: trade {} for {} ({} @ {}) had not arrived on the stream; recovered", by,
                    self.journal.account_index, fill.trade_id, describe_coid(order.client_order_index),
                    fill.size, fill.price)
        return recovered

    def _symbol(self, market_id: int) -> str:
        market = self.markets.get(market_id)
        return market.symbol if market else f"market {market_id}"

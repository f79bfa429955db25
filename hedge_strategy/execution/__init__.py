"""Execution state: the order journal (SQLite), the fill tracker and reconciliation with the exchange.

Start-up (nothing trades before the first reconciliation finished):

    journal = await Journal.open(journal_path(cfg_journal_dir, account_index), account_index)
    events = account.subscribe()                    # before account.start(): no event is missed
    await account.start(book_symbols)
    tracker = OrderTracker(journal, events, on_fill)  # on_fill(fill, order | None): keep it quick
    await tracker.start()                           # re-announces fills a crash left unannounced
    reconciler = Reconciler(account, journal, tracker, markets, unknown_order_grace_s)
    await reconciler.run_once("startup")
    asyncio.create_task(reconciler.run(reconcile_interval_s))

Sending (the write-ahead rule):

    coid = make_coid(Role.A, Purpose.MAKER, journal.next_sequence("maker"))
    await journal.record_new(new_order(client_order_index=coid, ...))  # committed before the send
    journal.mark_sent(coid, now_ms)                 # right before the send: the grace counts from here
    result = await account.place_post_only(...)
    if result.status is SendStatus.UNKNOWN:
        tracker.transition(coid, OrderState.UNKNOWN, reason=result.message)
    elif result.status is SendStatus.REJECTED:
        tracker.transition(coid, OrderState.REJECTED, reason=result.detail)  # result.worth_retrying?
    # ACCEPTED by the API, not yet executed: the state comes from the exchange (OPEN, FILLED, CANCELED with
    # an EndReason, ...); an order that never appears is REJECTED by the reconciler after the grace.

Cancelling: `await account.cancel(market, coid)` then `await reconciler.confirm_final(coid, timeout)`,
which returns the order in its final state with every fill applied (a fill racing the cancel included).
"""

from hedge_strategy.execution.journal import (
    DuplicateOrderError,
    Intent,
    Journal,
    JournalFill,
    JournalOrder,
    OrderState,
    journal_path,
    new_order,
)
from hedge_strategy.execution.reconcile import Reconciler, ReconcileReport
from hedge_strategy.execution.tracker import FillCallback, OrderTracker

__all__ = [
    "DuplicateOrderError",
    "FillCallback",
    "Intent",
    "Journal",
    "JournalFill",
    "JournalOrder",
    "OrderState",
    "OrderTracker",
    "ReconcileReport",
    "Reconciler",
    "journal_path",
    "new_order",
]

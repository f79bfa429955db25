"""Execution: the one send path of every order, the order journal (SQLite), the fill tracker, reconciliation.

Start-up (`connect.open_account` does it in this order; nothing trades before the first reconciliation):

    account = new_account(config, role, secret)
    events = account.subscribe()                    # before account.start(): no event is missed
    await account.start(book_symbols)
    journal = await Journal.open(journal_file, account_index)
    tracker = OrderTracker(journal, events, on_fill)  # on_fill(fill, order | None): keep it quick
    reconciler = Reconciler(account, journal, tracker, markets, unknown_order_grace_s)
    orders = OrderExecutor(account, journal, tracker, reconciler, ...)
    await tracker.start()                           # re-announces fills a crash left unannounced
    await reconciler.run_once("startup")
    asyncio.create_task(reconciler.run(reconcile_interval_s))

Sending (`orders.OrderExecutor`; the write-ahead rule, the state and when an order is marked sent):

    coid = orders.next_coid(Role.A, Purpose.MAKER, "coid")
    sent = await orders.submit(OrderSpec(coid, Intent.MAKER, market, side, size, price, OrderKind.POST_ONLY))
    # sent.status: ACCEPTED by the API, not yet executed (the state comes from the exchange: OPEN, FILLED,
    # CANCELED with an EndReason; an order that never appears is REJECTED by the reconciler after the grace),
    # REJECTED (sent.result.worth_retrying?), UNKNOWN (resolved by client order index)
    final = await orders.finish(coid)               # an IOC: its final state with all its fills

Chasing (`chase_loop.run_chase`): B's hedge and `hedgectl clear`'s close, IOC after IOC through the executor.

Cancelling: `await orders.cancel(market, coid, why, confirm_s)` returns the order in its final state with
every fill applied (a fill racing the cancel included).
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
from hedge_strategy.execution.orders import OrderExecutor, OrderKind, OrderSpec, Submitted
from hedge_strategy.execution.reconcile import Reconciler, ReconcileReport
from hedge_strategy.execution.tracker import FillCallback, OrderTracker

__all__ = [
    "DuplicateOrderError",
    "FillCallback",
    "Intent",
    "Journal",
    "JournalFill",
    "JournalOrder",
    "OrderExecutor",
    "OrderKind",
    "OrderSpec",
    "OrderState",
    "OrderTracker",
    "ReconcileReport",
    "Reconciler",
    "Submitted",
    "journal_path",
    "new_order",
]

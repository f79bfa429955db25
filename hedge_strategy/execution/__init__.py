"""Execution: the one send path of every order, the order journal (SQLite), the fill tracker, reconciliation.

`connect.open_account` wires one account in this order: adapter (its events subscribed before it starts, so
none is missed) -> `Journal` -> `OrderTracker` (exchange events into the journal, each new fill announced
once) -> `Reconciler` (the exchange is the truth: the journal is brought in line) -> `OrderExecutor`
(`orders.py`: every order's record, send, state and final). The caller starts the tracker once its fill
handler is in place; nothing trades before the first complete reconciliation. `chase_loop.run_chase` is the
IOC chase of B's hedge and `hedgectl clear`'s close, attempt after attempt through the executor.
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
from hedge_strategy.execution.reconcile import (
    NEVER_EXECUTED,
    NEVER_REACHED,
    PAST_THE_GRACE_S,
    Reconciler,
    ReconcileReport,
)
from hedge_strategy.execution.tracker import FillCallback, OrderTracker

__all__ = [
    "NEVER_EXECUTED",
    "NEVER_REACHED",
    "PAST_THE_GRACE_S",
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

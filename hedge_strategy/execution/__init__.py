"""Execution state: the order journal (SQLite), the fill tracker and reconciliation with the exchange."""

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

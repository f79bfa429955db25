"""The sequencer's verdicts on this account's transactions, tied to the orders they carried.

HTTP 200 from a send means accepted by the API, not executed: the sequencer can still refuse the transaction,
and then no order ever appears. Its verdict comes from the adapter as a `TxOutcome`: streamed (`account_tx`)
when the sequencer settles it, or read by hash when the order is not found by its client order index
(`Reconciler.confirm_final`). A refused create is positive evidence: its order is REJECTED at once, with
the venue's reason (`SEQUENCER_REFUSED: code message`), instead of after the grace that covers the venue's
REST lag (`unknown_grace_s`), which is kept for the case where neither the order nor its transaction is known.

A refused modify (ModifyOrder) leaves the order at the price the exchange last showed: the journal's record of
the modify in flight is settled (`Journal.modify_settled`) and whoever waits for the modify wakes.

A refused cancel leaves the order resting: whoever waits for the latest cancel of an order to take
(`Reconciler.confirm_final`) stops waiting once that cancel is known refused (`last_cancel_refused`), so the
caller can cancel again instead of waiting out its confirmation time. The verdict may arrive before the
send's own answer (a cancel has no speed bump on premium): it is kept by hash until the send names it.

The transaction hash of each send is kept in memory only (the journal has no column for it): after a restart
an order still unsettled falls back to the grace.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from loguru import logger

from hedge_strategy.exchange.coid import describe_coid
from hedge_strategy.exchange.events import SEQUENCER_REFUSED, TxOutcome
from hedge_strategy.execution.journal import OrderState

if TYPE_CHECKING:
    from hedge_strategy.execution.tracker import OrderTracker

TXS_KEPT = 10_000  # sends and verdicts remembered; the oldest are forgotten
SETTLED_BY_REFUSAL = frozenset({OrderState.PENDING_SUBMIT, OrderState.UNKNOWN})

__all__ = ["SEQUENCER_REFUSED", "SETTLED_BY_REFUSAL", "TxVerdicts", "apply_verdict"]


class TxVerdicts:
    """client order index <-> transaction hash of each send, and the verdicts learnt (bounded)."""

    def __init__(self) -> None:
        self._hash_of: OrderedDict[int, str] = OrderedDict()
        self._coid_of: dict[str, int] = {}
        self._outcomes: OrderedDict[str, TxOutcome] = OrderedDict()
        self._cancel_of: OrderedDict[str, int] = OrderedDict()  # a cancel's tx hash -> the order it named
        self._last_cancel: OrderedDict[int, str] = OrderedDict()  # order -> the hash of its latest cancel
        self._modify_of: OrderedDict[str, int] = OrderedDict()  # a modify's tx hash -> the order it named

    def sent(self, coid: int, tx_hash: str) -> None:
        """`coid`'s order left in the transaction `tx_hash` (its latest send: a re-send has its own coid)."""
        self._hash_of[coid] = tx_hash
        self._coid_of[tx_hash] = coid
        if len(self._hash_of) > TXS_KEPT:
            _, old_hash = self._hash_of.popitem(last=False)
            self._coid_of.pop(old_hash, None)

    def cancel_sent(self, coid: int, tx_hash: str) -> TxOutcome | None:
        """A cancel of `coid`'s order left in the transaction `tx_hash`; its refusal if already known."""
        self._cancel_of[tx_hash] = coid
        self._last_cancel[coid] = tx_hash
        self._last_cancel.move_to_end(coid)
        for kept in (self._cancel_of, self._last_cancel):
            if len(kept) > TXS_KEPT:
                kept.popitem(last=False)
        return self.last_cancel_refused(coid)

    def modify_sent(self, coid: int, tx_hash: str) -> TxOutcome | None:
        """A modify of `coid`'s order left in the transaction `tx_hash`; its refusal if already known."""
        self._modify_of[tx_hash] = coid
        if len(self._modify_of) > TXS_KEPT:
            self._modify_of.popitem(last=False)
        outcome = self._outcomes.get(tx_hash)
        return outcome if outcome is not None and outcome.refused else None

    def modify_of(self, tx_hash: str) -> int | None:
        """The order a modify named, when `tx_hash` is one of our modifies."""
        return self._modify_of.get(tx_hash)

    def cancel_of(self, tx_hash: str) -> int | None:
        """The order a cancel named, when `tx_hash` is one of our cancels."""
        return self._cancel_of.get(tx_hash)

    def last_cancel_refused(self, coid: int) -> TxOutcome | None:
        """The refusal of the latest cancel of `coid`'s order, when the sequencer refused it."""
        tx_hash = self._last_cancel.get(coid)
        outcome = self._outcomes.get(tx_hash) if tx_hash is not None else None
        return outcome if outcome is not None and outcome.refused else None

    def hash_of(self, coid: int) -> str | None:
        return self._hash_of.get(coid)

    def outcome(self, tx_hash: str) -> TxOutcome | None:
        return self._outcomes.get(tx_hash)

    def learn(self, outcome: TxOutcome) -> int | None:
        """Keep `outcome`; the client order index of the order its transaction carried, when known."""
        self._outcomes[outcome.tx_hash] = outcome
        if len(self._outcomes) > TXS_KEPT:
            self._outcomes.popitem(last=False)
        return outcome.client_order_index or self._coid_of.get(outcome.tx_hash)


def apply_verdict(tracker: OrderTracker, outcome: TxOutcome, source: str) -> bool:
    """A transaction's verdict (stream, or a lookup by hash), applied to `tracker`'s journal: a refused create
    ends its order, pending or unknown, REJECTED at once with the venue's reason (no order will appear); a
    refused cancel wakes whoever waits for it; a refused modify settles the journal's modify in flight (the
    order stays as the exchange shows it). True if an order was rejected."""
    txs, account = tracker.txs, tracker.account_index
    coid = txs.learn(outcome)
    cancelled = txs.cancel_of(outcome.tx_hash)
    modified = txs.modify_of(outcome.tx_hash)
    if outcome.refused and modified is not None:
        tracker.journal.modify_settled(modified, f"was {outcome.describe()} (tx {outcome.tx_hash[:16]})")
        tracker.wake()
        return False
    if outcome.refused and cancelled is not None:
        logger.warning("tracker {}: the cancel of {} was {} (tx {}); the order stays as the exchange "
                       "reports it", account, describe_coid(cancelled), outcome.describe(),
                       outcome.tx_hash[:16])
        tracker.wake()
        return False
    order = tracker.journal.get(coid) if outcome.refused and coid is not None else None
    if order is None:
        if outcome.refused and coid is None:  # a cancel whose send has not returned yet, or not ours
            logger.info("tracker {}: tx {} (type {}) was {}; kept until a send names it", account,
                        outcome.tx_hash[:16], outcome.tx_type, outcome.describe())
            tracker.wake()
        return False
    if order.state not in SETTLED_BY_REFUSAL:
        logger.warning("tracker {}: {} says tx {} of {} was {}, but the order is {}; left as it is", account,
                       source, outcome.tx_hash[:16], describe_coid(order.client_order_index),
                       outcome.describe(), order.state)
        return False
    changed = tracker.transition(order.client_order_index, OrderState.REJECTED, reason=outcome.describe())
    if changed:
        logger.warning("tracker {}: {} was {} (tx {}, from {}); no order will appear: REJECTED now", account,
                       describe_coid(order.client_order_index), outcome.describe(), outcome.tx_hash[:16],
                       source)
    return changed

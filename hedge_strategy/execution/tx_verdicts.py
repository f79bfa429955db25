"""The sequencer's verdicts on this account's transactions, tied to the orders they carried.

HTTP 200 from a send means accepted by the API, not executed: the sequencer can still refuse the transaction,
and then no order ever appears. Its verdict comes from the adapter as a `TxOutcome`: streamed (`account_tx`)
when the sequencer settles it, or read by hash when the order is not found by its client order index
(`Reconciler.confirm_final`). A refused create is positive evidence: its order is REJECTED at once, with
the venue's reason (`SEQUENCER_REFUSED: code message`), instead of after the grace that covers the venue's
REST lag (`unknown_grace_s`), which is kept for the case where neither the order nor its transaction is known.

The transaction hash of each send is kept in memory only (the journal has no column for it): after a restart
an order still unsettled falls back to the grace.
"""

from __future__ import annotations

from collections import OrderedDict

from hedge_strategy.exchange.events import SEQUENCER_REFUSED, TxOutcome
from hedge_strategy.execution.journal import OrderState

TXS_KEPT = 10_000  # sends and verdicts remembered; the oldest are forgotten
SETTLED_BY_REFUSAL = frozenset({OrderState.PENDING_SUBMIT, OrderState.UNKNOWN})

__all__ = ["SEQUENCER_REFUSED", "SETTLED_BY_REFUSAL", "TxVerdicts"]


class TxVerdicts:
    """client order index <-> transaction hash of each send, and the verdicts learnt (bounded)."""

    def __init__(self) -> None:
        self._hash_of: OrderedDict[int, str] = OrderedDict()
        self._coid_of: dict[str, int] = {}
        self._outcomes: OrderedDict[str, TxOutcome] = OrderedDict()

    def sent(self, coid: int, tx_hash: str) -> None:
        """`coid`'s order left in the transaction `tx_hash` (its latest send: a re-send has its own coid)."""
        self._hash_of[coid] = tx_hash
        self._coid_of[tx_hash] = coid
        if len(self._hash_of) > TXS_KEPT:
            _, old_hash = self._hash_of.popitem(last=False)
            self._coid_of.pop(old_hash, None)

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

"""When A may send the next cancel of a resting order that has not ended yet (maker.py's resting loop). A
book that moved re-prices the order in place instead of cancelling it (`maker_reprice`).

A cancel the API accepted may still be on its way through the sequencer, so the next one goes out
`RECANCEL_AFTER_S` after it (one the sequencer refused ends the wait for it at once, tx_verdicts.py). A cancel
refused at sendTx itself is a definite answer: nothing was cancelled and nothing is on its way, so waiting
for the order's end would only wait out the timeout. The next one goes out after `REFUSED_RECANCEL_S`,
doubling with each refusal in a row up to `RECANCEL_AFTER_S`, so a venue refusing every send is not hammered.
"""

from __future__ import annotations

from collections.abc import Callable

from hedge_strategy.exchange import SendResult, SendStatus

RECANCEL_AFTER_S = 5.0  # a cancel that did not end the order is sent again this often
REFUSED_RECANCEL_S = 0.5  # after a cancel refused at sendTx: the first pause before the next one


def refused_at_send(result: SendResult) -> bool:
    """The venue's API (or the sender, before posting) refused the cancel: it cancelled nothing."""
    return result.status is SendStatus.REJECTED


class CancelPacing:
    """The cancels of one resting order: how many went out, and when the next one may."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: float | None = None
        self._refusals = 0  # cancels refused at sendTx in a row
        self.sent = 0

    @property
    def any_sent(self) -> bool:
        return self._last is not None

    def record(self, result: SendResult) -> None:
        """A cancel was just sent and answered `result`."""
        self._last = self._clock()
        self.sent += 1
        self._refusals = self._refusals + 1 if refused_at_send(result) else 0

    def due_in(self) -> float:
        """Seconds until the next cancel may go out (<= 0: now)."""
        if self._last is None:
            return 0.0
        pause = RECANCEL_AFTER_S
        if self._refusals:
            pause = min(REFUSED_RECANCEL_S * 2 ** (self._refusals - 1), RECANCEL_AFTER_S)
        return pause - (self._clock() - self._last)

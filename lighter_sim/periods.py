"""How far ahead an order's expiry and a scheduled cancel-all may lie, as on Lighter.

From elliottech/lighter-go `types/txtypes/constants.go` (the constants the venue's own Go code declares):
`MinOrderExpiryPeriod` 5 minutes, `MaxOrderExpiryPeriod` 30 days, `MinOrderCancelAllPeriod` 5 minutes,
`MaxOrderCancelAllPeriod` 15 days. Verified: the values, in lighter-go's source. Inferred, not captured from
the venue: that the sequencer refuses a transaction outside them (the signer only checks `Time >= 1` and that
an IOC carries no expiry: `cancel_all_orders.go` `Validate` declares but never uses the periods; third-party
SDKs describe them as sequencer-side), and the error code (no capture of such a refusal was found: the
simulator answers with its generic invalid-transaction code).

So a dead-man's switch on Lighter is at least 5 minutes long, whether it is a scheduled cancel-all or an
order's own expiry: the simulator refuses shorter ones, so the bot cannot come to rely on a horizon the venue
would refuse. An expiry of 0 (none) is accepted as before; the signer never sends it for a resting order.
"""

from __future__ import annotations

from .errors import INVALID_TX, SimError
from .txparse import TX_CANCEL_ALL, TX_CREATE_ORDER, ParsedTx

MINUTE_MS, DAY_MS = 60_000, 86_400_000
MIN_ORDER_EXPIRY_PERIOD_MS, MAX_ORDER_EXPIRY_PERIOD_MS = 5 * MINUTE_MS, 30 * DAY_MS
MIN_CANCEL_ALL_PERIOD_MS, MAX_CANCEL_ALL_PERIOD_MS = 5 * MINUTE_MS, 15 * DAY_MS
CANCEL_ALL_SCHEDULED = 1


def check_periods(tx: ParsedTx, now_ms: int) -> None:
    """Raise SimError when a create's expiry or a scheduled cancel-all's time is beyond the venue's bounds."""
    if tx.tx_type == TX_CREATE_ORDER and tx["OrderExpiry"] > 0:
        _within(tx["OrderExpiry"] - now_ms, MIN_ORDER_EXPIRY_PERIOD_MS, MAX_ORDER_EXPIRY_PERIOD_MS,
                "order expiry")
    elif tx.tx_type == TX_CANCEL_ALL and tx["TimeInForce"] == CANCEL_ALL_SCHEDULED:
        _within(tx["Time"] - now_ms, MIN_CANCEL_ALL_PERIOD_MS, MAX_CANCEL_ALL_PERIOD_MS,
                "scheduled cancel-all time")


def _within(ahead_ms: int, least_ms: int, most_ms: int, what: str) -> None:
    if not least_ms <= ahead_ms <= most_ms:
        raise SimError(INVALID_TX, f"{what} must be {least_ms // MINUTE_MS} minutes to {most_ms // DAY_MS} "
                                   f"days ahead, got {ahead_ms / 1000:.0f} s")

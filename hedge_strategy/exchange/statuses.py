"""Lighter's order status strings → venue-neutral facts (`VenueState`, `EndReason`).

The only place in the bot that knows Lighter's status words. The list is lighter-sdk 1.1.8's `Order.status`
enum (lighter-venue.md, "Orders"); captured frames show `open`, `filled`, `canceled` and `canceled-*` values
from it. A `canceled-*` word not listed here still ends the order (reason OTHER); anything else is
UNRECOGNISED, and callers leave their state as it was rather than guess.
"""

from __future__ import annotations

from hedge_strategy.exchange.events import EndReason, VenueState

_LIVE = frozenset({"open", "pending", "in-progress"})
_CANCELED_PREFIX = "canceled"

_END_REASONS: dict[str, EndReason] = {
    "canceled": EndReason.CANCELED_BY_US,
    "canceled-post-only": EndReason.POST_ONLY_WOULD_CROSS,
    "canceled-reduce-only": EndReason.REDUCE_ONLY,
    "canceled-margin-not-allowed": EndReason.MARGIN,
    "canceled-too-much-slippage": EndReason.TOO_MUCH_SLIPPAGE,
    "canceled-not-enough-liquidity": EndReason.NOT_ENOUGH_LIQUIDITY,
    "canceled-self-trade": EndReason.SELF_TRADE,
    "canceled-expired": EndReason.EXPIRED,
    # canceled-position-not-allowed, -oco, -child, -liquidation, -invalid-balance: OTHER (see the module doc)
}


def order_facts(status: str) -> tuple[VenueState, EndReason | None]:
    """A Lighter order status → (state, why it ended when it ended without filling)."""
    word = status.strip().lower()
    if word in _LIVE:
        return VenueState.LIVE, None
    if word == "filled":
        return VenueState.FILLED, None
    if word.startswith(_CANCELED_PREFIX):
        return VenueState.CANCELED, _END_REASONS.get(word, EndReason.OTHER)
    return VenueState.UNRECOGNISED, None

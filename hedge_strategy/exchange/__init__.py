"""The Lighter venue adapter: the only code in the bot that knows Lighter."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hedge_strategy.exchange.coid import Purpose, Role, derived_number, describe_coid, make_coid, parse_coid
from hedge_strategy.exchange.errors import Refusal, RefusalKind
from hedge_strategy.exchange.events import (
    AllPositions,
    EndReason,
    Event,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    Side,
    StreamDown,
    StreamUp,
    TopOfBook,
    VenueState,
)
from hedge_strategy.exchange.markets import MarketInfo

if TYPE_CHECKING:
    from hedge_strategy.exchange.adapter import LighterAccount, PriceAtSend, SendResult, SendStatus
    from hedge_strategy.exchange.rest import VenueError

# The adapter and the REST helpers import lighter-sdk (seconds of imports: its signer's crypto stack), so
# they are imported when first named: `from hedge_strategy.exchange import LighterAccount` works as before,
# while code that needs only the light parts (a config check, hedgectl's waits, the rate budget) starts
# without them.
_LAZY = {"LighterAccount": "adapter", "PriceAtSend": "adapter", "SendResult": "adapter",
         "SendStatus": "adapter", "VenueError": "rest"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AllPositions",
    "EndReason",
    "Event",
    "Fill",
    "LighterAccount",
    "MarketInfo",
    "OrderUpdate",
    "PositionSnapshot",
    "PriceAtSend",
    "Purpose",
    "Refusal",
    "RefusalKind",
    "Role",
    "SendResult",
    "SendStatus",
    "Side",
    "StreamDown",
    "StreamUp",
    "TopOfBook",
    "VenueError",
    "VenueState",
    "derived_number",
    "describe_coid",
    "make_coid",
    "parse_coid",
]

"""The Lighter venue adapter: the only code in the bot that knows Lighter."""

from hedge_strategy.exchange.adapter import LighterAccount, PriceAtSend, SendResult, SendStatus
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
from hedge_strategy.exchange.rest import VenueError

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

"""The Lighter venue adapter: the only code in the bot that knows Lighter."""

from hedge_strategy.exchange.adapter import LighterAccount, SendResult, SendStatus
from hedge_strategy.exchange.coid import Purpose, Role, derived_number, describe_coid, make_coid, parse_coid
from hedge_strategy.exchange.events import (
    Event,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    Side,
    StreamDown,
    StreamUp,
    TopOfBook,
)
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.exchange.rest import VenueError

__all__ = [
    "Event",
    "Fill",
    "LighterAccount",
    "MarketInfo",
    "OrderUpdate",
    "PositionSnapshot",
    "Purpose",
    "Role",
    "SendResult",
    "SendStatus",
    "Side",
    "StreamDown",
    "StreamUp",
    "TopOfBook",
    "VenueError",
    "derived_number",
    "describe_coid",
    "make_coid",
    "parse_coid",
]

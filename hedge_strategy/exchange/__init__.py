"""The Lighter venue adapter: the only code in the bot that knows Lighter."""

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

__all__ = [
    "Event",
    "Fill",
    "MarketInfo",
    "OrderUpdate",
    "PositionSnapshot",
    "Purpose",
    "Role",
    "Side",
    "StreamDown",
    "StreamUp",
    "TopOfBook",
    "derived_number",
    "describe_coid",
    "make_coid",
    "parse_coid",
]

"""The Lighter venue adapter: the only code in the bot that knows Lighter.

The names below are loaded on first use (PEP 562), not when the package is imported: `adapter` pulls in
lighter-sdk, whose import takes seconds on a busy machine (eth_account, py_ecc), and code that needs only a
light module of this package (`throttle`, `coid`, `events`: Redis budgets, `hedgectl`'s waits used by
`start_hedge.sh`) must not pay for it. `from hedge_strategy.exchange import X` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and readers
    from hedge_strategy.exchange.adapter import LighterAccount as LighterAccount
    from hedge_strategy.exchange.adapter import SendResult as SendResult
    from hedge_strategy.exchange.adapter import SendStatus as SendStatus
    from hedge_strategy.exchange.book import Traded as Traded
    from hedge_strategy.exchange.coid import Purpose as Purpose
    from hedge_strategy.exchange.coid import Role as Role
    from hedge_strategy.exchange.coid import derived_number as derived_number
    from hedge_strategy.exchange.coid import describe_coid as describe_coid
    from hedge_strategy.exchange.coid import is_a_maker_coid as is_a_maker_coid
    from hedge_strategy.exchange.coid import make_coid as make_coid
    from hedge_strategy.exchange.coid import parse_coid as parse_coid
    from hedge_strategy.exchange.errors import Refusal as Refusal
    from hedge_strategy.exchange.errors import RefusalKind as RefusalKind
    from hedge_strategy.exchange.events import AllPositions as AllPositions
    from hedge_strategy.exchange.events import EndReason as EndReason
    from hedge_strategy.exchange.events import Event as Event
    from hedge_strategy.exchange.events import Fill as Fill
    from hedge_strategy.exchange.events import OrderUpdate as OrderUpdate
    from hedge_strategy.exchange.events import PositionSnapshot as PositionSnapshot
    from hedge_strategy.exchange.events import PublicTrade as PublicTrade
    from hedge_strategy.exchange.events import Side as Side
    from hedge_strategy.exchange.events import StreamDown as StreamDown
    from hedge_strategy.exchange.events import StreamUp as StreamUp
    from hedge_strategy.exchange.events import TopOfBook as TopOfBook
    from hedge_strategy.exchange.events import TxOutcome as TxOutcome
    from hedge_strategy.exchange.events import VenueState as VenueState
    from hedge_strategy.exchange.markets import MarketInfo as MarketInfo
    from hedge_strategy.exchange.order_txs import PriceAtSend as PriceAtSend
    from hedge_strategy.exchange.rest import VenueError as VenueError

_HOME = {  # public name -> the submodule defining it
    **dict.fromkeys(("LighterAccount", "SendResult", "SendStatus"), "adapter"),
    "PriceAtSend": "order_txs",
    "Traded": "book",
    **dict.fromkeys(("Purpose", "Role", "derived_number", "describe_coid", "is_a_maker_coid", "make_coid",
                     "parse_coid"), "coid"),
    **dict.fromkeys(("Refusal", "RefusalKind"), "errors"),
    **dict.fromkeys(("AllPositions", "EndReason", "Event", "Fill", "OrderUpdate", "PositionSnapshot",
                     "PublicTrade", "Side", "StreamDown", "StreamUp", "TopOfBook", "TxOutcome", "VenueState"),
                    "events"),
    "MarketInfo": "markets",
    "VenueError": "rest",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value

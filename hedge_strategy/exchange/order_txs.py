"""What each order transaction says and how it is signed: a description for the logs and a signing function
(nonce -> what `SignerClient.sign_*` returns), which `TxSender` calls once the send's nonce is known.

`LighterAccount` (adapter.py) builds its sends from these; nothing here sends or keeps state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from lighter import SignerClient

from hedge_strategy.exchange.coid import MAX_CLIENT_ORDER_INDEX, describe_coid
from hedge_strategy.exchange.events import Side
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.exchange.sender import SignFn

# SignerClient constants (lighter-sdk.md 3.3), named here so call sites read as intent.
ORDER_TYPE_LIMIT = SignerClient.ORDER_TYPE_LIMIT
ORDER_TYPE_MARKET = SignerClient.ORDER_TYPE_MARKET
TIF_IOC = SignerClient.ORDER_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL
TIF_POST_ONLY = SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
EXPIRY_28_DAYS = SignerClient.DEFAULT_28_DAY_ORDER_EXPIRY  # the signer turns -1 into now + 28 days
EXPIRY_IOC = SignerClient.DEFAULT_IOC_EXPIRY
CANCEL_ALL_IMMEDIATE = SignerClient.CANCEL_ALL_TIF_IMMEDIATE
NO_TRIGGER_PRICE = SignerClient.NIL_TRIGGER_PRICE
# A maker price read when the order leaves (None: no price, the order is given up) and the write-ahead record
# of the price actually sent (its awaitable: the post waits for it).
PriceAtSend = Callable[[], Decimal | None]
WriteAhead = Callable[[Decimal], Awaitable[object]]


def check_coid(coid: int) -> None:
    if not 1 <= coid <= MAX_CLIENT_ORDER_INDEX:
        raise ValueError(f"client order index {coid} outside 1 .. 2^48-1")


def create_tx(signer: SignerClient, api_key_index: int, market: MarketInfo, side: Side, size: Decimal,
              price: Decimal, coid: int, reduce_only: bool, order_type: int, tif: int, expiry: int,
              label: str) -> tuple[str, SignFn]:
    """A create's description and signing function."""
    check_coid(coid)
    base = market.base_to_int(size)
    scaled_price = market.price_to_int(price)
    what = (f"create {describe_coid(coid)} ({coid}) {market.symbol} {side.value} {size} @ {price} {label}"
            f"{' reduce-only' if reduce_only else ''}")

    def sign(nonce: int) -> tuple[object, object, object, object]:
        return signer.sign_create_order(
            market.market_id, coid, base, scaled_price, int(side.is_ask), order_type, tif,
            int(reduce_only), 0, expiry, nonce=nonce, api_key_index=api_key_index)

    return what, sign


def cancel_tx(signer: SignerClient, api_key_index: int, market: MarketInfo, coid: int) -> tuple[str, SignFn]:
    """A cancel by client order index (Lighter reads indexes below 2^48 as client order indexes)."""
    check_coid(coid)

    def sign(nonce: int) -> tuple[object, object, object, object]:
        return signer.sign_cancel_order(market.market_id, coid, nonce=nonce, api_key_index=api_key_index)

    return f"cancel {describe_coid(coid)} ({coid}) {market.symbol}", sign


def modify_tx(signer: SignerClient, api_key_index: int, market: MarketInfo, coid: int, size: Decimal,
              price: Decimal) -> tuple[str, SignFn]:
    """A modify (tx type 17) of our resting order by its client order index: its new price, `size` its new
    remaining size (the simulator reads BaseAmount so, `lighter_sim/engine.py` `_execute_modify`).

    Verified with lighter-sdk 1.1.8's bundled signer (run for this change): `sign_modify_order(market_index,
    order_index, base_amount, price, trigger_price=0, ..., nonce=, api_key_index=)` signs tx type 17 with the
    index as `Index`; 0 is refused "ClientOrderIndex should not be less than 1", 11000000000042 and 2^48 both
    sign (lighter-go reads 1 .. 2^48-1 as a client order index, 2^48 .. 2^60-1 as an exchange order index: the
    research note's probe, lighter-sdk.md).
    Inferred, not captured on the venue: that a modify of a post-only order keeps it post-only (cancelled
    `canceled-post-only` when its new price would cross) and that the venue applies the maker speed bump to it
    (both as the simulator does), that BaseAmount is the remaining size rather than the initial one (we modify
    only an order with nothing filled, where the two are equal), and that a modify of an order that has ended
    executes as nothing (the simulator) or is refused by the sequencer: either leaves nothing to undo."""
    check_coid(coid)
    base = market.base_to_int(size)
    scaled_price = market.price_to_int(price)

    def sign(nonce: int) -> tuple[object, object, object, object]:
        return signer.sign_modify_order(market.market_id, coid, base, scaled_price, NO_TRIGGER_PRICE,
                                        nonce=nonce, api_key_index=api_key_index)

    return f"modify {describe_coid(coid)} ({coid}) {market.symbol} {size} @ {price}", sign


def cancel_all_tx(signer: SignerClient, api_key_index: int, account_index: int) -> tuple[str, SignFn]:
    """A cancel-all of every open order of the account, at once."""

    def sign(nonce: int) -> tuple[object, object, object, object]:
        return signer.sign_cancel_all_orders(CANCEL_ALL_IMMEDIATE, 0, nonce=nonce,
                                             api_key_index=api_key_index)

    return f"cancel-all account {account_index}", sign

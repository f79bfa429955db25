"""The channels a client can subscribe to, their names, and the snapshot each subscription starts with.

A client subscribes with `/` (`order_book/1`, `account_orders/1/101`); every frame names the channel with
`:` (`order_book:1`), verified from captures; `account_orders` frames name the market only
(`account_orders:1`, from the docs), so the sim keys that subscription `account_orders:1:101` internally.
Refusals, as captured unless marked:
- an unknown channel: `{"error":{"code":30005,"message":"Invalid Channel"}}`;
- an unknown market: `{"error":{"code":30005,"message":"Invalid Channel:  (marketId)"}}`;
- an unknown account: the same with `(accountId)` (inferred by analogy, not captured);
- a private channel without `auth`: `{"error":{"code":20001,"message":"invalid param : auth field is required:
  <channel>"}}`; with a token the sim refuses: `{"error":{"code":20013,"message":"invalid auth: <why>:
  <channel>"}}` (captured for an expired token; "invalid deadline" for a token living over 8 h is the REST
  refusal's reason, inferred for the socket; the other reasons are the sim's own words).
`trade/{market}` is public (no token): every trade of the market, both accounts and both client order
indexes named (captured: tests/wire/ws/trade). Its snapshot carries the market's latest trade, none before
the first (captures: ccxt Nov 2025 and Nautilus 2026 show one trade in `subscribed/trade`, hftbacktest Jul
2026 two and qubx Oct 2025 ten; how many the venue sends is not documented, the sim sends one).
`account_all` needs no token, as lighter-sdk's own WsClient subscribes it (not verified on the venue).
`account_tx` takes one like the other account channels (inferred: Qubx subscribed it with its token; whether
the venue refuses it without one is not captured). Its snapshot has no `txs` (captured); each settled
transaction of the account follows as an `update/account_tx` frame (tx_history.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ws_frames as frames
from .auth import AuthError, check_token
from .errors import INVALID_AUTH, INVALID_CHANNEL, INVALID_PARAM
from .ws_book import BookSequencer
from .ws_objects import ws_orders_by_market, ws_positions, ws_trade

PRIVATE_KINDS = (
    "account_all_orders", "account_all_trades", "account_all_positions", "account_orders", "account_tx"
)
ACCOUNT_KINDS = ("account_all", *PRIVATE_KINDS)
PUBLIC_MARKET_KINDS = ("order_book", "trade")
SNAPSHOT_TRADES = 1  # the latest trade of the market (see the module's docstring)


@dataclass(frozen=True)
class Channel:
    kind: str
    market_id: int | None  # order_book, trade, account_orders
    account: int | None  # account channels

    @property
    def name(self) -> str:
        """The subscription's key in the colon spelling, e.g. `order_book:1`, `account_orders:1:101`."""
        ids = [i for i in (self.market_id, self.account) if i is not None]
        return ":".join([self.kind, *map(str, ids)])


class ChannelRefused(Exception):
    """The subscription is refused; `frame` is the error text to send."""

    def __init__(self, frame: str) -> None:
        super().__init__(frame)
        self.frame = frame


def parse_channel(raw: Any) -> Channel:
    """`order_book/1`, `account_all/101`, `account_orders/1/101` (either separator). Raises ChannelRefused."""
    invalid = ChannelRefused(frames.nested_error(INVALID_CHANNEL, frames.INVALID_CHANNEL_MESSAGE))
    if not isinstance(raw, str) or len(raw) > 100:
        raise invalid
    kind, *ids = raw.replace(":", "/").split("/")
    if not ids or not all(i.isdigit() and len(i) <= 15 for i in ids):
        raise invalid
    numbers = [int(i) for i in ids]
    if kind in PUBLIC_MARKET_KINDS and len(numbers) == 1:
        return Channel(kind, numbers[0], None)
    if kind == "account_orders" and len(numbers) == 2:
        return Channel(kind, numbers[0], numbers[1])
    if kind in ACCOUNT_KINDS and kind != "account_orders" and len(numbers) == 1:
        return Channel(kind, None, numbers[0])
    raise invalid


class Snapshots:
    """The first frame of each subscription (a `subscribed/<kind>` frame), built from the engine's state."""

    def __init__(
        self, engine: Any, sequencer: BookSequencer, key_registered: Callable[[int, int], bool]
    ) -> None:
        self.engine = engine
        self.sequencer = sequencer
        self._key_registered = key_registered

    def build(self, channel: Channel, token: Any) -> frames.BookFrame | dict[str, Any]:
        """The snapshot of `channel`, or ChannelRefused. A book's is a BookFrame (offset per connection)."""
        if channel.market_id is not None and channel.market_id not in self.engine.specs:
            raise ChannelRefused(frames.nested_error(INVALID_CHANNEL, frames.INVALID_MARKET_MESSAGE))
        if channel.kind == "order_book":
            return self._book(channel.market_id or 0)
        if channel.kind == "trade":
            return self._trades(channel.market_id or 0)
        account = channel.account if channel.account is not None else -1
        if channel.kind in PRIVATE_KINDS:
            self._check_auth(channel, account, token)
        if not self.engine.has_account(account):
            raise ChannelRefused(frames.nested_error(INVALID_CHANNEL, "Invalid Channel:  (accountId)"))
        return self._account(channel, account)

    def _check_auth(self, channel: Channel, account: int, token: Any) -> None:
        if not isinstance(token, str) or not token:
            raise ChannelRefused(
                frames.nested_error(INVALID_PARAM, f"invalid param : auth field is required: {channel.name}")
            )
        try:
            check_token(token, account, self._key_registered)
        except AuthError as exc:
            # The REST wording with the channel after it: "invalid auth: expired token: <channel>" (captured).
            reason = str(exc).removeprefix("invalid auth: ")
            raise ChannelRefused(
                frames.nested_error(INVALID_AUTH, f"invalid auth: {reason}: {channel.name}")
            ) from None

    def _book(self, market_id: int) -> frames.BookFrame:
        book = self.engine.book_snapshot(market_id)
        nonce, updated_us = self.sequencer.current(market_id)
        return frames.BookFrame("subscribed", market_id, book["asks"], book["bids"], nonce, 0, updated_us)

    def _trades(self, market_id: int) -> dict[str, Any]:
        latest = self.engine.recent_trades_json(market_id, SNAPSHOT_TRADES)["trades"]  # newest first
        nonce = self.sequencer.current(market_id)[0]
        return frames.public_trades("subscribed", market_id, nonce, [ws_trade(t) for t in latest])

    def _account(self, channel: Channel, account: int) -> dict[str, Any]:
        engine = self.engine
        if channel.kind == "account_tx":  # captured: the snapshot lists no past transactions
            return frames.account_tx(account, None)
        if channel.kind in ("account_all_orders", "account_orders"):
            orders = ws_orders_by_market(engine.open_orders_json(account))
            if channel.kind == "account_all_orders":
                return frames.account_all_orders("subscribed", account, orders)
            market = channel.market_id or 0
            nonce = self.sequencer.current(market)[0]
            return frames.account_orders("subscribed", market, account, nonce, orders.get(str(market), []))
        positions = ws_positions(engine.positions_json(account))
        if channel.kind == "account_all_positions":
            return frames.account_all_positions("subscribed", account, positions)
        # The snapshots of the trade channels carry no past trades (as on the venue), only statistics.
        trades = [t for listed in engine.account_trades_json(account, 1 << 30).values() for t in listed]
        counts, volumes = frames.trade_statistics(trades)
        if channel.kind == "account_all_trades":
            return frames.account_all_trades_snapshot(account, volumes)
        return frames.account_all_snapshot(account, positions, counts, volumes)

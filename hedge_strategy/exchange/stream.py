"""The account's WebSocket stream: our own connection loop over `websockets`, not the SDK's WsClient.

The SDK client never reconnects and keeps books unsorted (lighter-sdk.md 5, 7.12). `AccountStream` keeps two
links (ws_link.py), each its own connection, so that trouble with order books never costs the connection
that carries the fills:
- the account link: `account_all_orders`, `account_all_trades`, `account_all_positions`, `account_tx` with an
  auth token. It emits OrderUpdate, Fill and PositionSnapshot events (a positions snapshot as one
  AllPositions, the whole set), TxOutcome for each transaction the sequencer executed or refused
  (tx_outcomes.py), StreamUp / StreamDown as it comes and goes (a StreamUp after a StreamDown has
  `reconnect=True`: the tracker then has reconciliation read the fills missed meanwhile from REST, since the
  venue's snapshot of an account channel carries no past trades). Its auth token is renewed before it
  expires by moving to a new connection subscribed with the new token; a token the server refuses (an error
  frame naming a private channel) is replaced at once and the channel subscribed again, on the same
  connection. It also carries the account's transactions when the sender sends over the socket
  (`transactions`, ws_tx.py): a connection that ends or is replaced ends the transactions still waiting on
  it without an answer.
- the book link: `order_book/{m}` for each book, emitting TopOfBook; and, for an account that asks for it
  (B: `StrategyConfig.follows_trade_feed`), the public `trade/{m}` of its markets, emitting PublicTrade
  (one more subscribe per connect, at the books' priority: the message budget's floors are unchanged).
  A delta that does not follow (book.py:
  `begin_nonce` against the previous `nonce`, or the older offset + 1) invalidates that book, so nobody
  prices off it (`fresh_book` is None and the adapter reads the book over REST meanwhile), and the link
  unsubscribes and subscribes that market again for a fresh snapshot, as soon as the message budget allows.
Every message either link sends goes through one `MessageBudget` (ws_budget.py), book resyncs with the lowest
priority. Connections, pings, silence, error frames and the server's shutdown notice: ws_session.py and
ws_link.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from loguru import logger

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import (
    DeltaResult,
    LocalBook,
    Traded,
    parse_as_of_us,
    parse_levels,
    parse_seq,
)
from hedge_strategy.exchange.events import Event, StreamDown, StreamUp, TopOfBook
from hedge_strategy.exchange.throttle import backoff_delay
from hedge_strategy.exchange.tx_outcomes import tx_outcomes
from hedge_strategy.exchange.ws_budget import MAX_SUBSCRIPTIONS_PER_CONNECTION, MessageBudget, Priority
from hedge_strategy.exchange.ws_link import Link
from hedge_strategy.exchange.ws_session import (
    SUBSCRIBE_RETRY_MAX_S,
    SUBSCRIBE_RETRY_MIN_S,
    Reconnect,
    Session,
    Subscription,
)
from hedge_strategy.exchange.ws_tx import WsTransactions

TX_CHANNEL = "account_tx"  # the sequencer's verdict on each transaction (tx_outcomes.py)
PRIVATE_CHANNELS = ("account_all_orders", "account_all_trades", "account_all_positions", TX_CHANNEL)
# A refused token: 20013 "invalid auth: expired token: <channel>" and 20001 "invalid param : auth field is
# required: <channel>" were captured on the venue (tests/wire/ws/control), and the simulator sends the same.
# 20001 is not in the set (it is also every other bad parameter): its message names "auth", which is enough.
AUTH_ERROR_CODES = frozenset({20013})

# (force a new token?) -> (token, unix expiry seconds)
TokenSource = Callable[[bool], Awaitable[tuple[str, float]]]


class AccountStream:
    def __init__(
        self,
        *,
        ws_url: str,
        account_index: int,
        book_market_ids: Sequence[int],
        token_source: TokenSource,
        emit: Callable[[Event], None],
        heartbeat_timeout_s: float,
        backoff_min_s: float,
        backoff_max_s: float,
        token_refresh_margin_s: float,
        budget: MessageBudget | None = None,
        trade_market_ids: Sequence[int] = (),
    ) -> None:
        if len(book_market_ids) + len(trade_market_ids) > MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise ValueError(f"at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} books per connection")
        self.account_index = account_index
        self.budget = budget or MessageBudget()
        self.books: dict[int, LocalBook] = {m: LocalBook(m) for m in book_market_ids}
        common: dict[str, Any] = {"ws_url": ws_url, "budget": self.budget, "silence_s": heartbeat_timeout_s,
                                  "backoff_min_s": backoff_min_s, "backoff_max_s": backoff_max_s}
        self._account = _AccountLink(account_index, token_source, emit, token_refresh_margin_s, **common)
        self._book_link = (_BookLink(account_index, self.books, emit, trade_market_ids, **common)
                           if self.books or trade_market_ids else None)

    # --- public -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._account.start()
        if self._book_link is not None:
            self._book_link.start()

    async def close(self) -> None:
        await self._account.close()
        self._account.transactions.close()
        if self._book_link is not None:
            await self._book_link.close()

    async def wait_up(self, timeout_s: float) -> bool:
        """True once the account channels are subscribed (the books follow on their own connection)."""
        return await self._account.wait_up(timeout_s)

    @property
    def up(self) -> bool:
        return self._account.up

    @property
    def transactions(self) -> WsTransactions:
        """Transactions sent on the account connection (`jsonapi/sendtx`, ws_tx.py)."""
        return self._account.transactions

    @property
    def connects(self) -> int:
        """Times the account link came up (first connect and every recovery after a StreamDown)."""
        return self._account.connects

    @property
    def token_renewals(self) -> int:
        return self._account.token_renewals

    @property
    def handovers(self) -> int:
        """Moves to a new connection made before the old one went (shutdown notices, token renewals)."""
        return self._account.handovers + (self._book_link.handovers if self._book_link is not None else 0)

    @property
    def book_resyncs(self) -> int:
        return self._book_link.resyncs if self._book_link is not None else 0

    def restart_account_link(self, reason: str) -> bool:
        """Reconnect the account link now (see `Link.restart`); False when it has no connection to leave."""
        return self._account.restart(reason)

    async def probe_account_link(self, timeout_s: float) -> bool:
        """Ping the account link and wait up to `timeout_s` for a frame (`Link.probe`): True when it spoke."""
        return await self._account.probe(timeout_s)

    def seconds_since_heard(self) -> float:
        """Since the last frame on the account link (the one carrying fills)."""
        return self._account.seconds_since_heard()

    def fresh_book(self, market_id: int, heard_within_s: float | None = None) -> LocalBook | None:
        """The local book when it can be trusted (unbroken since its snapshot, link heard lately: within the
        silence limit, or within `heard_within_s` when that is shorter) or None."""
        book = self.books.get(market_id)
        link = self._book_link
        if book is None or link is None or not book.valid:
            return None
        limit = link.silence_s if heard_within_s is None else min(link.silence_s, heard_within_s)
        return None if link.seconds_since_heard() > limit else book


class _AccountLink(Link):
    def __init__(self, account_index: int, token_source: TokenSource, emit: Callable[[Event], None],
                 refresh_margin_s: float, **common: Any) -> None:
        super().__init__(name=f"account {account_index}", **common)
        self.account_index = account_index
        self._token_source = token_source
        self._emit = emit
        self._refresh_margin_s = refresh_margin_s
        self._token = ""
        self._sent_with: dict[str, str] = {}  # channel key -> the token its last subscribe carried
        self._refresh_at = float("inf")
        self.token_renewals = 0
        self._subs = [Subscription(f"{name}/{account_index}", Priority.ACCOUNT) for name in PRIVATE_CHANNELS]
        self.transactions = WsTransactions(self)

    def subscriptions(self) -> list[Subscription]:
        return self._subs

    def subscribe_frame(self, sub: Subscription) -> dict[str, Any]:
        self._sent_with[sub.key] = self._token
        return {"type": "subscribe", "channel": sub.channel, "auth": self._token}

    async def prepare(self, fresh: bool) -> None:
        await self._fetch_token(fresh)

    async def _fetch_token(self, fresh: bool) -> None:
        token, expiry_s = await self._token_source(fresh)
        self._token = token
        self._refresh_at = time.monotonic() + (expiry_s - self._refresh_margin_s - time.time())

    def next_timer(self) -> float:
        return self._refresh_at

    async def on_timer(self, session: Session) -> None:
        self._refresh_at = float("inf")  # the new connection's token sets the next renewal
        if not self.request_handover("auth token renewal", fresh=True):
            # No second connection allowed: renew by reconnecting (reconciliation covers the gap).
            raise Reconnect("auth token renewal by reconnecting", immediate=True, fresh_token=True)

    def handed_over(self, reason: str) -> None:
        if reason == "auth token renewal":
            self.token_renewals += 1

    def went_up(self, reconnect: bool) -> None:
        logger.info("ws up (account {}): {} subscribed{}", self.account_index, ", ".join(PRIVATE_CHANNELS),
                    " after a reconnect; reconciliation reads the fills missed" if reconnect else "")
        self._emit(StreamUp(self.account_index, reconnect=reconnect))

    def went_down(self, reason: str) -> None:
        self._emit(StreamDown(self.account_index, reason))

    def on_tx_answer(self, session: Session, frame: dict[str, Any]) -> None:
        self.transactions.answer(session, frame)

    def on_tx_refusal(self, session: Session, frame: dict[str, Any], error: parsing.WsError) -> bool:
        return self.transactions.take_refusal(session, frame, error)

    def session_closed(self, session: Session) -> None:
        self.transactions.connection_ended(session, "connection closed")

    def session_retired(self, session: Session) -> None:
        self.transactions.connection_ended(session, "replaced by a new connection")

    async def on_error(self, session: Session, error: parsing.WsError, key: str | None) -> bool:
        if error.code not in AUTH_ERROR_CODES and "auth" not in error.message.lower():
            return False
        # Without a channel named, the refusal is about what is still waiting, or else about all of them.
        waiting = [s.key for s in self._subs if s.key not in session.confirmed]
        refused = [key] if key is not None else waiting or [s.key for s in self._subs]
        # Several channels refused in one burst cost one new token: only a refusal of the current one counts.
        if any(self._sent_with.get(each) == self._token for each in refused):
            try:
                await self._fetch_token(True)
            except Exception as exc:
                raise Reconnect(f"auth token refused, and no new one: {exc}", fresh_token=True) from exc
        for each in refused:
            # The first retry is immediate (a new token is all it needs); a channel the venue keeps
            # refusing backs off like any refused subscription.
            attempts = session.attempts(each)
            delay_s = 0.0 if attempts <= 1 else backoff_delay(attempts, SUBSCRIBE_RETRY_MIN_S,
                                                               SUBSCRIBE_RETRY_MAX_S)
            logger.warning("ws account {}: auth refused on {} ({} {!r}); subscribing again with a new token"
                           "{}", self.account_index, each, error.code, error.message,
                           f" in {delay_s:.0f} s" if delay_s else "")
            session.lose(each, f"auth token refused on {each}")
            session.resubscribe(each, delay_s=delay_s)
        return True

    async def on_data(self, session: Session, frame: dict[str, Any], *, snapshot: bool, family: str) -> None:
        if family == "account_all_positions" and snapshot:
            # The whole set: a market it leaves out is flat (the tracker replaces what it believed).
            whole = parsing.all_positions(frame, self.account_index)
            if whole is not None:
                self._emit(whole)
                return
        if family == TX_CHANNEL:
            for outcome in tx_outcomes(frame, self.account_index):
                self._emit(outcome)
        elif family in PRIVATE_CHANNELS:
            for event in parsing.account_events(frame, self.account_index):
                self._emit(event)


class _BookLink(Link):
    keepalive_priority = Priority.BOOK_KEEPALIVE

    def __init__(self, account_index: int, books: dict[int, LocalBook], emit: Callable[[Event], None],
                 trade_market_ids: Sequence[int] = (), **common: Any) -> None:
        super().__init__(name=f"books {account_index}", **common)
        self.account_index = account_index
        self.books = books
        self._emit = emit
        self._tops: dict[int, tuple[Any, Any]] = {}
        self._subs = [Subscription(f"order_book/{m}", Priority.BOOK) for m in books]
        self._subs += [Subscription(f"trade/{m}", Priority.BOOK) for m in dict.fromkeys(trade_market_ids)]
        self.resyncs = 0

    def subscriptions(self) -> list[Subscription]:
        return self._subs

    def went_up(self, reconnect: bool) -> None:
        logger.info("ws up (books of account {}): {} subscribed{}", self.account_index,
                    ", ".join(s.channel for s in self._subs), " after a reconnect" if reconnect else "")

    def session_closed(self, session: Session) -> None:
        for book in self.books.values():
            if book.source == session.serial:
                book.invalidate()

    async def on_already_subscribed(self, session: Session, key: str) -> None:
        # 30003 comes without a snapshot: the book can only be rebuilt from a new subscription.
        session.resubscribe(key, unsubscribe_first=True)

    async def on_data(self, session: Session, frame: dict[str, Any], *, snapshot: bool, family: str) -> None:
        if family == "trade":
            for trade in parsing.public_trades(frame):
                if (book := self.books.get(trade.market_id)) is not None:
                    book.note_trade(Traded(trade.price, trade.size, trade.ts_ms, not trade.is_maker_ask,
                                           trade.trade_id))
                self._emit(trade)
            return
        if family != "order_book":
            return
        market_id = _channel_id(frame.get("channel"))
        book = self.books.get(market_id) if market_id is not None else None
        if book is None:
            return
        try:
            body = frame["order_book"]
            seq, as_of_us = parse_seq(frame, body), parse_as_of_us(frame, body)
            bids, asks = parse_levels(body.get("bids")), parse_levels(body.get("asks"))
        except parsing.PARSE_ERRORS as exc:
            logger.warning("ws frame: malformed order_book frame for market {} ({}); resyncing",
                           market_id, exc)
            self._resync(session, book, "a malformed frame")
            return
        now_ms = int(time.time() * 1000)
        if snapshot:
            book.apply_snapshot(seq, bids, asks, now_ms, source=session.serial, as_of_us=as_of_us)
        else:
            result = book.apply_delta(seq, bids, asks, now_ms, source=session.serial, as_of_us=as_of_us)
            if result is DeltaResult.GAP:
                self._resync(session, book, f"update (begin_nonce {seq.begin_nonce}, nonce {seq.nonce}, "
                                            f"offset {seq.offset}) does not follow")
                return
            if result is DeltaResult.STALE:
                return
        self._emit_top(book, now_ms, force=snapshot)

    def _resync(self, session: Session, book: LocalBook, why: str) -> None:
        book.invalidate()
        key = f"order_book:{book.market_id}"
        if session.retired or session.is_resubscribing(key):
            return  # one resync at a time per market; the book stays invalid until its snapshot
        self.resyncs += 1
        logger.warning("ws book gap on market {}: {}; book marked invalid, resubscribing for a fresh "
                       "snapshot within the message budget", book.market_id, why)
        session.resubscribe(key, unsubscribe_first=True)

    def _emit_top(self, book: LocalBook, now_ms: int, force: bool) -> None:
        top = (book.best_bid(), book.best_ask())
        if force or self._tops.get(book.market_id) != top:
            self._tops[book.market_id] = top
            self._emit(TopOfBook(book.market_id, top[0], top[1], now_ms))


def _channel_id(channel: Any) -> int | None:
    if not isinstance(channel, str):
        return None
    _, sep, ident = parsing.channel_key(channel).partition(":")
    return int(ident) if sep and ident.isdigit() else None


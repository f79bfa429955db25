"""`LighterAccount`: one account on Lighter, over lighter-sdk, as the rest of the bot sees it.

It owns the account's signer, nonce (through `TxSender`), REST reads (`AccountReader`) and WebSocket
(`AccountStream`), and fans the stream's typed events out to every subscriber queue. Construct it anywhere;
call `start()` inside the running loop (the SDK's aiohttp session needs one).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from lighter import SignerClient
from lighter.api.account_api import AccountApi
from lighter.api.order_api import OrderApi
from lighter.api.transaction_api import TransactionApi
from lighter.nonce_manager import NonceManagerType
from loguru import logger

from hedge_strategy.exchange.book import Level, LocalBook, Traded
from hedge_strategy.exchange.coid import describe_coid
from hedge_strategy.exchange.events import (
    Event,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    Side,
    TopOfBook,
    TxOutcome,
)
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.exchange.movement import (
    ARRIVAL_MARGIN_MS,
    MidMovement,
    clear_of_touch,
    maker_speed_bump_ms,
    taker_speed_bump_ms,
)
from hedge_strategy.exchange.order_txs import (
    EXPIRY_28_DAYS,
    EXPIRY_IOC,
    ORDER_TYPE_LIMIT,
    ORDER_TYPE_MARKET,
    TIF_IOC,
    TIF_POST_ONLY,
    PriceAtSend,
    WriteAhead,
    cancel_all_tx,
    cancel_tx,
    check_coid,
    create_tx,
    modify_tx,
)
from hedge_strategy.exchange.reads import AccountReader
from hedge_strategy.exchange.rest import VenueError, rate_limit_backoffs
from hedge_strategy.exchange.sender import Prepared, SendResult, SendStatus, SignFn, TxSender
from hedge_strategy.exchange.stream import AccountStream
from hedge_strategy.exchange.throttle import TX_ENDPOINTS, RateBudget, RequestThrottle
from hedge_strategy.exchange.tx_outcomes import read_tx
from hedge_strategy.exchange.ws_budget import MESSAGES_PER_MINUTE, MessageBudget

__all__ = ["LighterAccount", "PriceAtSend", "SendResult", "SendStatus", "VenueError"]


# An IOC is priced from the touch it meets one taker bump later: a book link silent this long may be dead
# without having closed (the silence limit takes 20 s to say so), and a touch seconds old cost B's first IOC
# in chaos `ws_silence` (priced from a book 5 s old, it found nothing). A quiet market's link past this pays
# one REST read per attempt. A's maker price keeps the silence limit: a post-only order never crosses.
IOC_BOOK_HEARD_WITHIN_S = 2.0

class LighterAccount:
    def __init__(self, *, url: str, ws_url: str, account_index: int, api_key_index: int, api_secret: str,
                 chain_id: int = 304, tier: str = "premium", request_timeout_s: float = 10.0,
                 ws_heartbeat_timeout_s: float = 20.0, ws_backoff_min_s: float = 0.25,
                 ws_backoff_max_s: float = 30.0, auth_token_ttl_s: int = 600,
                 ws_messages_per_minute: int = MESSAGES_PER_MINUTE, budget: RateBudget | None = None,
                 send_over_websocket: bool = False, tx_may_use_reserve: bool = False,
                 clock: Callable[[], float] = time.monotonic, send_timeout_s: float | None = None,
                 resting_order_expiry_s: int | None = None,
                 wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        if auth_token_ttl_s < 2:
            raise ValueError("auth_token_ttl_s must be at least 2 seconds")
        self.url = url.rstrip("/")
        self.ws_url = ws_url
        self.account_index = account_index
        self.api_key_index = api_key_index
        self._secret = api_secret  # never logged
        self.chain_id = chain_id
        self.request_timeout_s = request_timeout_s
        # The wait for a sendTx's answer before the send is ambiguous (None: request_timeout_s).
        self.send_timeout_s = send_timeout_s if send_timeout_s is not None else request_timeout_s
        self.ws_heartbeat_timeout_s = ws_heartbeat_timeout_s
        self.ws_backoff_min_s = ws_backoff_min_s
        self.ws_backoff_max_s = ws_backoff_max_s
        self.auth_token_ttl_s = auth_token_ttl_s
        # Transactions over the account's WebSocket while it is up, HTTP otherwise (sender.py, ws_tx.py).
        # Off here so a bare adapter speaks plain HTTP (the simulator's sendTx faults are HTTP's); the bot's
        # config turns it on (`exchange.send_over_websocket`).
        self.send_over_websocket = send_over_websocket
        # The stream's share of the venue's 200 WebSocket messages a minute per IP (ws_budget.py); tests whose
        # simulator pings many times a second raise it.
        self.ws_budget = MessageBudget(per_minute=ws_messages_per_minute)
        # REST reads and sendTx take from `budget` when given (one shared with the other account of the pair,
        # built by the caller: this module knows no Redis), else from the account's own token bucket.
        # `tx_may_use_reserve` (B): its transactions, its hedges, may take the shared budget's reserve.
        reserved = TX_ENDPOINTS if tx_may_use_reserve else frozenset()
        self.throttle = RequestThrottle(tier, budget=budget, reserved_endpoints=reserved)
        self.taker_speed_bump_ms = taker_speed_bump_ms(tier)
        self.maker_speed_bump_ms = maker_speed_bump_ms(tier)
        self._movements: dict[int, MidMovement] = {}  # market id -> its mid's moves (markets with a book)
        self._maker_movements: dict[int, MidMovement] = {}  # the same over one maker speed bump (Standard)
        self._clock = clock  # monotonic seconds, for the movements (a test moves it by hand)
        # A resting order's own expiry, its dead-man's switch: a process that dies leaves it on the book at
        # most this long (None: the SDK's 28 days). Lighter takes 5 minutes at the least (lighter-go's
        # MinOrderExpiryPeriod, as for a scheduled cancel-all), so the config keeps a margin above that
        # for clocks that differ. Costs no request, unlike renewing a scheduled cancel-all.
        self.resting_order_expiry_s = resting_order_expiry_s
        self._wall_clock_ms = wall_clock_ms
        self._markets: dict[str, MarketInfo] = {}
        self._markets_by_id: dict[int, MarketInfo] = {}
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()
        self._signer: SignerClient | None = None
        self._sender: TxSender | None = None
        self._reader: AccountReader | None = None
        self._tx_api: TransactionApi | None = None
        self._stream: AccountStream | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self, book_symbols: Sequence[str] = (), trade_symbols: Sequence[str] = ()) -> None:
        """Signer, key check, market metadata, nonce, then the stream (waits for it a bounded time); the
        stream follows the books of `book_symbols` and the public trades of `trade_symbols` (PublicTrade)."""
        if self._signer is not None:
            raise RuntimeError(f"account {self.account_index} is already started")
        signer = SignerClient(self.url, self.account_index, {self.api_key_index: self._secret},
                              nonce_management_type=NonceManagerType.NONE, chain_id=self.chain_id)
        self._signer = signer
        try:
            await self._check_key(signer)
            self._reader = AccountReader(
                account_index=self.account_index, order_api=OrderApi(signer.api_client),
                account_api=AccountApi(signer.api_client), throttle=self.throttle,
                timeout_s=self.request_timeout_s, auth_token=self._rest_token)
            await self._load_markets()
            self._tx_api = TransactionApi(signer.api_client)
            self._sender = TxSender(
                account_index=self.account_index, api_key_index=self.api_key_index,
                tx_api=self._tx_api, throttle=self.throttle,
                request_timeout_s=self.request_timeout_s, answer_timeout_s=self.send_timeout_s)
            await self._sender.sync_nonce()
            book_ids = [self.market(symbol).market_id for symbol in dict.fromkeys(book_symbols)]
            self._movements = {m: MidMovement(self.market_by_id(m).tick,
                                              self.taker_speed_bump_ms + ARRIVAL_MARGIN_MS)
                               for m in book_ids}
            if self.maker_speed_bump_ms > 0:  # premium has none: its maker price needs no room
                self._maker_movements = {m: MidMovement(self.market_by_id(m).tick,
                                                        self.maker_speed_bump_ms + ARRIVAL_MARGIN_MS)
                                         for m in book_ids}
            self._stream = AccountStream(
                ws_url=self.ws_url, account_index=self.account_index, book_market_ids=book_ids,
                token_source=self._auth_token, emit=self._emit,
                heartbeat_timeout_s=self.ws_heartbeat_timeout_s, backoff_min_s=self.ws_backoff_min_s,
                backoff_max_s=self.ws_backoff_max_s, token_refresh_margin_s=self._token_margin_s(),
                budget=self.ws_budget,
                trade_market_ids=[self.market(symbol).market_id for symbol in dict.fromkeys(trade_symbols)])
            if self.send_over_websocket:
                self._sender.use_websocket(self._stream.transactions)
            self._stream.start()
        except BaseException:
            await self.close()
            raise
        if not await self._stream.wait_up(max(self.request_timeout_s, self.ws_heartbeat_timeout_s)):
            logger.warning("account {}: stream not up yet; starting anyway, StreamUp will follow when it is",
                           self.account_index)
        logger.info("account {} (key {}) started: {} markets, next nonce {}, books {}",
                    self.account_index, self.api_key_index, len(self._markets), self._sender.next_nonce,
                    list(book_symbols) or "none")

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
            self._stream = None
        if self._signer is not None:
            await self._signer.close()
            self._signer = None
        if self._sender is not None:
            await self._sender.close()
        self._sender = self._reader = None
        self._tx_api = None

    async def _check_key(self, signer: SignerClient) -> None:
        # check_client makes a blocking Go HTTP call (GET apikeys): run it in a thread, under the throttle.
        await self.throttle.acquire("apikeys")
        error = await asyncio.wait_for(asyncio.to_thread(signer.check_client), self.request_timeout_s + 5)
        if error:
            raise RuntimeError(
                f"account {self.account_index}: API key {self.api_key_index} check failed: {error}")

    async def _load_markets(self) -> None:
        markets = await self._require_reader().market_details()
        if not markets:
            raise RuntimeError("orderBookDetails returned no usable markets")
        self._markets = {m.symbol: m for m in markets}
        self._markets_by_id = {m.market_id: m for m in markets}

    # --- markets and events ---------------------------------------------------------------------------

    def market(self, symbol: str) -> MarketInfo:
        try:
            return self._markets[symbol]
        except KeyError:
            raise KeyError(f"unknown market symbol {symbol!r} (known: {sorted(self._markets)})") from None

    def market_by_id(self, market_id: int) -> MarketInfo:
        try:
            return self._markets_by_id[market_id]
        except KeyError:
            raise KeyError(f"unknown market id {market_id} (known: {sorted(self._markets_by_id)})") from None

    def subscribe(self) -> asyncio.Queue[Event]:
        """A new queue receiving every event from now on, in order (unbounded: fills are never dropped)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def _emit(self, event: Event) -> None:
        if isinstance(event, TxOutcome) and event.refused:
            self._after_refusal(event)
        if isinstance(event, TopOfBook):
            for movements in (self._movements, self._maker_movements):
                if event.market_id in movements:
                    movements[event.market_id].update(self._clock() * 1000, event.best_bid, event.best_ask)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def taker_move_ticks(self, market: MarketInfo, share: float) -> int | None:
        """How far (ticks) the mid of `market` moved over one taker speed bump of this account's tier plus the
        IOC's way to the exchange (`movement.ARRIVAL_MARGIN_MS`): the move `share` of the last minute's book
        changes stayed within (movement.py). None without a book stream for the market or a change in the
        last minute."""
        movement = self._movements.get(market.market_id)
        return movement.move_ticks(share, self._clock() * 1000) if movement is not None else None

    def seconds_since_heard(self) -> float:
        return self._stream.seconds_since_heard() if self._stream is not None else math.inf

    @property
    def nonce_resyncs(self) -> int:
        """How often the nonce was resynced from the exchange after an ambiguous or refused send."""
        return self._sender.resyncs if self._sender is not None else 0

    @property
    def rate_limit_backoffs(self) -> int:
        """How many 429 answers this account's reads and sends have waited out (a running total)."""
        return rate_limit_backoffs(self.throttle)

    def stream_stats(self) -> dict[str, float | int | bool]:
        """For health checks and metrics: up, sessions that came up, token renewals, moves to a new
        connection, book resyncs, WebSocket messages sent and 30009 answers (message budget), transactions
        sent on the socket and those left without an answer, staleness."""
        stream = self._stream
        return {"up": self.stream_up, "connects": stream.connects if stream else 0,
                "token_renewals": stream.token_renewals if stream else 0,
                "handovers": stream.handovers if stream else 0,
                "book_resyncs": stream.book_resyncs if stream else 0,
                "ws_messages_sent": self.ws_budget.sent, "ws_rate_limited": self.ws_budget.rate_limited_count,
                "ws_transactions": stream.transactions.sent if stream else 0,
                "ws_transactions_unanswered": stream.transactions.unanswered if stream else 0,
                "seconds_since_heard": self.seconds_since_heard()}

    @property
    def stream_up(self) -> bool:
        return self._stream is not None and self._stream.up

    async def probe_stream(self, timeout_s: float) -> bool:
        """Ping the account stream's connection and wait up to `timeout_s` for any frame: True when it
        answered (alive: its silence was a quiet market), False when it did not, or could not be asked."""
        stream = self._stream
        return stream is not None and stream.up and await stream.probe_account_link(timeout_s)

    def restart_stream(self, reason: str) -> bool:
        """The account stream missed what REST shows (`reason`): leave its connection and reconnect now.
        Transactions go over HTTP meanwhile; the reconnect makes reconciliation read what it missed."""
        return self._stream is not None and self._stream.restart_account_link(reason)

    # --- auth tokens ----------------------------------------------------------------------------------

    def _token_margin_s(self) -> float:
        # Renew with a fifth of the lifetime left (at most a minute), so a slow renewal never lets it lapse.
        return min(60.0, self.auth_token_ttl_s * 0.2)

    async def _auth_token(self, fresh: bool = False) -> tuple[str, float]:
        async with self._token_lock:
            cached = self._token
            if not fresh and cached is not None and cached[1] - time.time() > self._token_margin_s():
                return cached
            signer = self._require_signer()
            issued_s = math.ceil(time.time())  # the token lives at least the full ttl
            token, error = await asyncio.to_thread(
                signer.create_auth_token_with_expiry, self.auth_token_ttl_s, timestamp=issued_s,
                api_key_index=self.api_key_index)
            if error or not token:
                raise RuntimeError(f"auth token not created: {error}")
            self._token = (token, float(issued_s + self.auth_token_ttl_s))
            return self._token

    async def _rest_token(self, fresh: bool = False) -> str:
        return (await self._auth_token(fresh))[0]

    # --- orders ---------------------------------------------------------------------------------------

    async def place_post_only(self, market: MarketInfo, side: Side, size: Decimal, price: Decimal,
                              client_order_index: int, reduce_only: bool = False,
                              ready: Awaitable[object] | None = None) -> SendResult:
        expiry = self.resting_expiry_ms()
        return await self._create(market, side, size, price, client_order_index, reduce_only,
                                  ORDER_TYPE_LIMIT, TIF_POST_ONLY, expiry, "post-only", ready)

    async def place_post_only_at_departure(self, market: MarketInfo, side: Side, size: Decimal,
                                           price_at_send: PriceAtSend, client_order_index: int,
                                           reduce_only: bool = False,
                                           record: WriteAhead | None = None) -> SendResult:
        """A post-only order priced when it leaves: `price_at_send()` is called once the send's turn came and
        the throttle granted it, right before signing (None: give the order up, REJECTED "not sent").
        `record(price)` starts the write-ahead record of the price about to be sent; it commits while the
        order is signed and the post waits for it (see TxSender)."""
        check_coid(client_order_index)
        signer = self._require_signer()
        return await self._send_at_departure(
            f"create {describe_coid(client_order_index)} ({client_order_index}) {market.symbol} {side.value} "
            f"{size} post-only, priced at departure", price_at_send, record,
            lambda price: create_tx(signer, self.api_key_index, market, side, size, price, client_order_index,
                                    reduce_only, ORDER_TYPE_LIMIT, TIF_POST_ONLY, self.resting_expiry_ms(),
                                    "post-only"))

    async def modify_at_departure(self, market: MarketInfo, client_order_index: int, size: Decimal,
                                  price_at_send: PriceAtSend, record: WriteAhead | None = None) -> SendResult:
        """Re-price our resting order in place (`order_txs.modify_tx`), priced when it leaves and recorded
        as `place_post_only_at_departure`; `size`: its remaining size. Sent as every transaction is."""
        check_coid(client_order_index)
        signer = self._require_signer()
        return await self._send_at_departure(
            f"modify {describe_coid(client_order_index)} ({client_order_index}) {market.symbol}, priced at "
            "departure", price_at_send, record,
            lambda price: modify_tx(signer, self.api_key_index, market, client_order_index, size, price))

    async def _send_at_departure(self, what: str, price_at_send: PriceAtSend, record: WriteAhead | None,
                                 build: Callable[[Decimal], tuple[str, SignFn]]) -> SendResult:
        def prepare() -> Prepared | None:
            price = price_at_send()
            if price is None:
                return None
            description, sign = build(price)
            return Prepared(description, sign, record(price) if record is not None else None)

        return await self._require_sender().send_prepared(what, prepare)

    def resting_expiry_ms(self) -> int:
        """The OrderExpiry of a resting order signed now: unix ms, or the SDK's -1 (28 days)."""
        if self.resting_order_expiry_s is None:
            return EXPIRY_28_DAYS
        return self._wall_clock_ms() + self.resting_order_expiry_s * 1000

    async def place_ioc(self, market: MarketInfo, side: Side, size: Decimal, price: Decimal,
                        client_order_index: int, reduce_only: bool = False,
                        ready: Awaitable[object] | None = None) -> SendResult:
        return await self._create(market, side, size, price, client_order_index, reduce_only,
                                  ORDER_TYPE_LIMIT, TIF_IOC, EXPIRY_IOC, "ioc", ready)

    async def place_market(self, market: MarketInfo, side: Side, size: Decimal, worst_price: Decimal,
                           client_order_index: int, reduce_only: bool = False,
                           ready: Awaitable[object] | None = None) -> SendResult:
        """A market order; `worst_price` caps the slippage (the exchange fills no worse than it)."""
        return await self._create(market, side, size, worst_price, client_order_index, reduce_only,
                                  ORDER_TYPE_MARKET, TIF_IOC, EXPIRY_IOC, "market", ready)

    async def _create(self, market: MarketInfo, side: Side, size: Decimal, price: Decimal, coid: int,
                      reduce_only: bool, order_type: int, tif: int, expiry: int, label: str,
                      ready: Awaitable[object] | None = None) -> SendResult:
        """Sign and send a create; `ready` (the write-ahead record) is awaited in between (see TxSender)."""
        what, sign = create_tx(self._require_signer(), self.api_key_index, market, side, size, price, coid,
                               reduce_only, order_type, tif, expiry, label)
        return await self._require_sender().send(what, sign, ready)

    async def cancel(self, market: MarketInfo, client_order_index: int) -> SendResult:
        """Cancel by client order index (Lighter reads indexes below 2^48 as client order indexes)."""
        what, sign = cancel_tx(self._require_signer(), self.api_key_index, market, client_order_index)
        return await self._require_sender().send(what, sign)

    async def cancel_all(self) -> SendResult:
        what, sign = cancel_all_tx(self._require_signer(), self.api_key_index, self.account_index)
        return await self._require_sender().send(what, sign)

    # --- reads ----------------------------------------------------------------------------------------

    async def positions(self) -> dict[int, PositionSnapshot]:
        """Open positions from REST, keyed by market id (flat ones omitted). Raises VenueError."""
        return await self._require_reader().positions()

    async def positions_of(self, account_index: int) -> dict[int, PositionSnapshot]:
        """Another account's open positions (public REST read, no keys), keyed by market id, flat omitted.

        A reads B's position with it to check that A + B is flat. Raises VenueError.
        """
        return await self._require_reader().positions_of(account_index)

    async def open_orders(self, market: MarketInfo | None = None) -> list[OrderUpdate]:
        return await self._require_reader().open_orders(market.market_id if market is not None else None)

    async def orders_by_client_index(self, coids: Sequence[int]) -> dict[int, OrderUpdate]:
        """Orders (open or ended) found by client order index; absent keys were not found (yet)."""
        return await self._require_reader().orders_by_client_index(coids)

    async def trades_since(self, since_ms: int, market: MarketInfo | None = None) -> list[Fill]:
        """This account's fills with timestamp >= since_ms, oldest first."""
        return await self._require_reader().trades_since(since_ms, market.market_id if market else None)

    async def tx_outcome(self, tx_hash: str) -> TxOutcome | None:
        """What the sequencer did with one of this account's transactions (`GET /api/v1/tx`, tx_outcomes.py):
        None while the venue shows no outcome for it. Raises VenueError when the exchange does not answer."""
        if self._tx_api is None:
            raise RuntimeError(f"account {self.account_index} is not started")
        outcome = await read_tx(self._tx_api, tx_hash, self.account_index, throttle=self.throttle,
                                timeout_s=self.request_timeout_s)
        if outcome is not None and outcome.refused:
            self._after_refusal(outcome)
        return outcome

    def _after_refusal(self, outcome: TxOutcome) -> None:
        """The sequencer refused one of our transactions after the API accepted it: whether it used its nonce
        is not certain (the venue's docs say a refused maker order may not; a refused create was seen to), so
        the nonce is read again before the next send rather than learnt from an "invalid nonce" refusal."""
        if self._sender is not None:
            self._sender.mark_stale()
            self._sender.resync_soon()  # read now, so the next send needs no REST read
            logger.info("account {}: tx {} {}; nonce resynced before the next send", self.account_index,
                        outcome.tx_hash[:16], outcome.describe())

    async def top_of_book(self, market: MarketInfo, traded: Sequence[Traded] = ()) -> TopOfBook:
        """Best bid/ask for an IOC about to leave (the chase): the stream's book when its link was heard
        within `IOC_BOOK_HEARD_WITHIN_S`, without what `traded` consumed if it does not show it yet
        (`LocalBook.touch_after`), else one REST read."""
        book = (self._stream.fresh_book(market.market_id, IOC_BOOK_HEARD_WITHIN_S)
                if self._stream is not None else None)
        if book is not None:
            bid, ask = book.touch_after(True, traded), book.touch_after(False, traded)
            return TopOfBook(market.market_id, bid, ask, book.updated_ms)
        bids, asks = await self._require_reader().book_levels(market.market_id, 1)
        return TopOfBook(market.market_id, bids[0] if bids else None, asks[0] if asks else None,
                         int(time.time() * 1000))

    async def resting_prices(self, market: MarketInfo, account_index: int, side: Side
                             ) -> tuple[list[Decimal], Decimal | None]:
        """Another account's orders on `side` of the book, from the public listing (`resting_prices_of`)."""
        return await self._require_reader().resting_prices(market.market_id, account_index, side)

    def live_book_price(self, market: MarketInfo, side: Side, depth: int) -> Decimal | None:
        """Price of the `depth`-th level (1 = best) on `side`'s own book side (BUY: bids, SELL: asks), from
        the stream's book only, at once (no REST read): None without a fresh book."""
        book = self._fresh_book(market, depth)
        return book.level_price(is_bid=side is Side.BUY, depth=depth) if book is not None else None

    def live_maker_price(self, market: MarketInfo, side: Side, depth: int, share: float,
                         without: Level | None = None) -> Decimal | None:
        """`live_book_price` for a post-only order about to leave: on a tier with a maker speed bump, kept
        clear of the opposite touch by the move `share` of the last minute's maker bumps stayed within
        (`movement.clear_of_touch`), so that it still rests when the bump is over. `without` (price, size):
        our resting order left out of the book (`LocalBook.level_price`: where A would place it now)."""
        book = self._fresh_book(market, depth)
        price = book.level_price(is_bid=side is Side.BUY, depth=depth, without=without) if book else None
        movement = self._maker_movements.get(market.market_id)
        if price is None or book is None or movement is None:
            return price
        opposite = book.level_price(is_bid=side is not Side.BUY, depth=1)
        moved = movement.move_ticks(share, self._clock() * 1000)
        return clear_of_touch(price, opposite, side is Side.BUY, moved, market.tick)

    def _fresh_book(self, market: MarketInfo, depth: int) -> LocalBook | None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        return self._stream.fresh_book(market.market_id) if self._stream is not None else None

    # --- guards ---------------------------------------------------------------------------------------

    def _require_signer(self) -> SignerClient:
        if self._signer is None:
            raise RuntimeError("LighterAccount is not started")
        return self._signer

    def _require_sender(self) -> TxSender:
        if self._sender is None:
            raise RuntimeError("LighterAccount is not started")
        return self._sender

    def _require_reader(self) -> AccountReader:
        if self._reader is None:
            raise RuntimeError("LighterAccount is not started")
        return self._reader


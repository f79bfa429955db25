"""REST reads of one account's state: positions, orders, trades, and the public book as a fallback.

Each read goes through `call_rest` (throttle, timeout, 429 backoff) and raises `VenueError` when the exchange
cannot answer. Items that do not parse are logged and skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from lighter.api.account_api import AccountApi
from lighter.api.order_api import OrderApi
from loguru import logger

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.events import Fill, OrderUpdate, PositionSnapshot, Side
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.exchange.rest import VenueError, call_rest, model_dict
from hedge_strategy.exchange.throttle import RequestThrottle

CLIENT_INDEXES_PER_CALL = 20  # accountOrders limit
TRADES_PAGE = 100
MAX_TRADE_PAGES = 50  # 5,000 trades: far more than a reconnect gap can hide
BOOK_ORDERS_LIMIT = 250

AuthToken = Callable[..., Awaitable[str]]  # (fresh=False) -> the account's auth token; fresh forces a new one
# A refused token: HTTP 401 20013 "invalid auth: ..." (verified: tests/wire/rest/accountLimits, "invalid
# deadline"). The token in hand may be one the venue no longer takes (its reason is not always the deadline):
# the read is made once more with a new token instead of failing with the cached one until it expires.
AUTH_REFUSED_CODE = 20013


class AccountReader:
    def __init__(
        self,
        *,
        account_index: int,
        order_api: OrderApi,
        account_api: AccountApi,
        throttle: RequestThrottle,
        timeout_s: float,
        auth_token: AuthToken,
    ) -> None:
        self.account_index = account_index
        self._order_api = order_api
        self._account_api = account_api
        self._throttle = throttle
        self._timeout_s = timeout_s
        self._auth_token = auth_token

    async def _call(self, endpoint: str, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        raw = await call_rest(endpoint, call, throttle=self._throttle, timeout_s=self._timeout_s)
        return checked_answer(endpoint, model_dict(raw))

    async def _authorized(self, endpoint: str, call: Callable[[str], Awaitable[Any]]) -> dict[str, Any]:
        """`_call` of a read that needs the auth token (`call(token)`): refused as an auth error (20013), made
        once more with a new token."""
        token = await self._auth_token()
        try:
            return await self._call(endpoint, lambda: call(token))
        except VenueError as exc:
            if exc.code != AUTH_REFUSED_CODE:
                raise
            logger.warning("{}: the venue refused our auth token ({}); reading again with a new one",
                           endpoint, exc)
        fresh = await self._auth_token(fresh=True)
        return await self._call(endpoint, lambda: call(fresh))

    async def market_details(self) -> list[MarketInfo]:
        answer = await self._call("orderBookDetails", lambda: self._order_api.order_book_details(
            _request_timeout=self._timeout_s))
        return markets_of(answer)

    async def positions(self) -> dict[int, PositionSnapshot]:
        return await self.positions_of(self.account_index)

    async def positions_of(self, account_index: int) -> dict[int, PositionSnapshot]:
        """Open positions of any account (`GET /api/v1/account` is public: no auth token needed)."""
        answer = await self._call("account", lambda: self._account_api.account(
            by="index", value=str(account_index), _request_timeout=self._timeout_s))
        return open_positions_of(answer, account_index)

    async def open_orders(self, market_id: int | None) -> list[OrderUpdate]:
        answer = await self._authorized(
            "accountActiveOrders", lambda token: self._order_api.account_active_orders(
                authorization=token, account_index=self.account_index, market_id=market_id,
                _request_timeout=self._timeout_s))
        return orders_of(answer, self.account_index)

    async def orders_by_client_index(self, coids: Sequence[int]) -> dict[int, OrderUpdate]:
        wanted = list(dict.fromkeys(coids))
        found: dict[int, OrderUpdate] = {}
        for start in range(0, len(wanted), CLIENT_INDEXES_PER_CALL):
            chunk = ",".join(str(c) for c in wanted[start:start + CLIENT_INDEXES_PER_CALL])
            answer = await self._authorized(
                "accountOrders", lambda token, chunk=chunk: self._order_api.account_orders(
                    authorization=token, client_order_indexes=chunk, account_index=self.account_index,
                    _request_timeout=self._timeout_s))
            for update in orders_of(answer, self.account_index):
                if update.client_order_index in wanted:
                    found[update.client_order_index] = update
        return found

    async def trades_since(self, since_ms: int, market_id: int | None) -> list[Fill]:
        """This account's fills at or after `since_ms`, oldest first (newest-first pages, walked back)."""
        fills: dict[tuple[int, str], Fill] = {}
        cursor: str | None = None
        for _ in range(MAX_TRADE_PAGES):
            answer = await self._authorized("trades", lambda token, cursor=cursor: self._order_api.trades(
                sort_by="timestamp", sort_dir="desc", limit=TRADES_PAGE, authorization=token,
                account_index=self.account_index, market_id=market_id, var_from=since_ms, cursor=cursor,
                _request_timeout=self._timeout_s))
            page = fills_of(answer, self.account_index)
            for fill in page:
                if fill.ts_ms >= since_ms and (market_id is None or fill.market_id == market_id):
                    fills[(fill.trade_id, fill.side.value)] = fill
            oldest_ms = min((fill.ts_ms for fill in page), default=None)
            cursor = answer.get("next_cursor") or None
            if not answer.get("trades") or cursor is None or (oldest_ms is not None and oldest_ms < since_ms):
                break
        else:
            logger.warning("trades since {}: stopped after {} pages; older fills not read", since_ms,
                           MAX_TRADE_PAGES)
        return sorted(fills.values(), key=lambda f: (f.ts_ms, f.trade_id))

    async def book_levels(self, market_id: int, limit: int) -> tuple[list[Decimal], list[Decimal]]:
        """Distinct bid prices (best first) and ask prices (best first) from `orderBookOrders`."""
        answer = await self._call("orderBookOrders", lambda: self._order_api.order_book_orders(
            market_id=market_id, limit=max(1, min(BOOK_ORDERS_LIMIT, limit)),
            _request_timeout=self._timeout_s))
        return book_prices_of(answer)

    async def resting_prices(self, market_id: int, account_index: int, side: Side
                             ) -> tuple[list[Decimal], Decimal | None]:
        """One public `orderBookOrders` read: `account_index`'s order prices on `side` (best first), and the
        deepest price listed when the listing stopped at its limit (orders beyond it unseen), else None."""
        answer = await self._call("orderBookOrders", lambda: self._order_api.order_book_orders(
            market_id=market_id, limit=BOOK_ORDERS_LIMIT, _request_timeout=self._timeout_s))
        return resting_prices_of(answer, account_index, side, BOOK_ORDERS_LIMIT)


# --- answers -> typed values: pure functions, so the wire contract tests run the very code the reads run ---

def checked_answer(endpoint: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer, unless its `code` says the venue refused the read (then VenueError)."""
    code = answer.get("code")
    if code is not None and code != 200:
        raise VenueError(endpoint, f"code {code}: {answer.get('message', '')}", 200, code)
    return answer


def markets_of(answer: Mapping[str, Any]) -> list[MarketInfo]:
    """`orderBookDetails` → the perp markets it lists (a malformed entry is logged and skipped)."""
    markets: list[MarketInfo] = []
    for detail in answer.get("order_book_details") or []:
        try:
            markets.append(MarketInfo.from_detail(detail))
        except parsing.PARSE_ERRORS as exc:
            logger.warning("orderBookDetails: market entry skipped ({}: {})", type(exc).__name__, exc)
    return markets


def open_positions_of(answer: Mapping[str, Any], account_index: int) -> dict[int, PositionSnapshot]:
    """`account` → the account's non-flat positions by market id (a flat one is listed with size 0)."""
    accounts = answer.get("accounts") or []
    if not accounts:
        raise VenueError("account", f"account {account_index} not in the answer")
    result: dict[int, PositionSnapshot] = {}
    for snap in parsing.parse_items(
            parsing.as_dict(accounts[0]).get("positions") or [],
            lambda raw: parsing.position_snapshot(raw, account_index), "position"):
        if snap.size != 0:
            result[snap.market_id] = snap
    return result


def orders_of(answer: Mapping[str, Any], account_index: int) -> list[OrderUpdate]:
    """`accountOrders` / `accountActiveOrders` / `accountInactiveOrders` → the account's orders."""
    return [o for o in parsing.parse_items(
        answer.get("orders") or [], lambda raw: parsing.order_update(raw, account_index), "order")
        if o.account_index == account_index]


def fills_of(answer: Mapping[str, Any], account_index: int) -> list[Fill]:
    """`trades` → the account's fills on the page (both if it traded with itself)."""
    return [fill for batch in parsing.parse_items(
        answer.get("trades") or [], lambda raw: parsing.fills_for_account(raw, account_index), "trade")
        for fill in batch]


def book_prices_of(answer: Mapping[str, Any]) -> tuple[list[Decimal], list[Decimal]]:
    """`orderBookOrders` → distinct bid prices (best first) and ask prices (best first)."""
    return (_distinct_prices(answer.get("bids"), descending=True),
            _distinct_prices(answer.get("asks"), descending=False))


def resting_prices_of(answer: Mapping[str, Any], account_index: int, side: Side, limit: int
                      ) -> tuple[list[Decimal], Decimal | None]:
    """`orderBookOrders` → (the prices of `account_index`'s orders on `side`, best first; the deepest price
    listed when the side holds `limit` orders, else None). Each listed order names its owner (captured:
    tests/wire/rest/orderBookOrders). A malformed order makes the listing unusable (ValueError): an order of
    the account could hide in it."""
    listed = answer.get("bids" if side is Side.BUY else "asks") or []
    owned: list[Decimal] = []
    prices: list[Decimal] = []
    for raw in listed:
        try:
            order = parsing.as_dict(raw)
            price = parsing.to_decimal(order["price"])
            owner = parsing.to_int(order["owner_account_index"])
        except parsing.PARSE_ERRORS as exc:
            raise ValueError(f"orderBookOrders: unreadable order ({type(exc).__name__}: {exc})") from exc
        prices.append(price)
        if owner == account_index:
            owned.append(price)
    deepest = (min(prices) if side is Side.BUY else max(prices)) if len(prices) >= limit else None
    return sorted(owned, reverse=side is Side.BUY), deepest


def _distinct_prices(orders: Any, descending: bool) -> list[Decimal]:
    prices: set[Decimal] = set()
    for order in orders or []:
        try:
            prices.add(parsing.to_decimal(parsing.as_dict(order)["price"]))
        except parsing.PARSE_ERRORS as exc:
            logger.warning("orderBookOrders: level skipped ({}: {})", type(exc).__name__, exc)
    return sorted(prices, reverse=descending)

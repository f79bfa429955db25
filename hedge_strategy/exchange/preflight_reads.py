"""Read-only access to the venue for `hedgectl preflight`: every REST answer exactly as received (for the
checks and for `--record`), the adapter's own API key check and auth tokens, and what the answers say
about the venue (its chain, the accounts' tiers, markets, balances).

Nothing here signs or sends a transaction: `PreflightAccount` never creates the adapter's sender, so it has
no nonce and no path to `sendTx`.

The REST calls go through lighter-sdk's generated API classes (the same URLs, query and `authorization`
header as the bot's reads), in their `*_without_preload_content` form, so the body is read as the venue
sent it, before the SDK's models reshape it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import lighter
from lighter import SignerClient
from lighter.api.account_api import AccountApi
from lighter.api.order_api import OrderApi
from lighter.api.root_api import RootApi
from lighter.endpoint_profiles import ENDPOINT_PROFILES
from lighter.exceptions import ApiException
from lighter.nonce_manager import NonceManagerType

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.adapter import LighterAccount
from hedge_strategy.exchange.events import OrderUpdate, PositionSnapshot
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.exchange.rest import TRANSPORT_ERRORS
from hedge_strategy.exchange.throttle import RequestThrottle
from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted

STATUS_ENDPOINT = "status"  # `GET /` has no last path segment; named after the SDK's RootApi.status
BOOK_ORDERS_FOR_TOP = 1
IMF_UNIT = Decimal("0.0001")  # market margin fractions are integers in 1e-4 (500 = 5 %) [inferred, see below]

# `account_type` of the `account` answer: 0 = standard is confirmed by captured venue traffic (a mainnet
# standard account); 1 = premium is inferred (the only other tier), never seen in a capture.
ACCOUNT_TYPE_TIERS: dict[int, tuple[str, bool]] = {0: ("standard", True), 1: ("premium", False)}


@dataclass(frozen=True)
class Observed:
    """One payload as the venue sent it: a REST body or a WebSocket frame (for `--record`)."""

    kind: str  # "rest" | "ws"
    name: str  # REST: the endpoint's last path segment; ws: the channel without argument, or "control"
    payload: Any  # the parsed JSON, or the raw text when it is not JSON
    http_status: int | None = None  # REST answers outside 2xx only


Observer = Callable[[Observed], None]


@dataclass(frozen=True)
class RestAnswer:
    endpoint: str
    http_status: int | None  # None: no HTTP answer at all (refused connection, timeout)
    payload: Any
    error: str | None  # why the answer is not usable; None when it is
    sent_s: float  # wall clock when the request left and when its answer was read
    received_s: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def body(self) -> dict[str, Any]:
        return self.payload if isinstance(self.payload, dict) else {}

    @property
    def elapsed_ms(self) -> float:
        return (self.received_s - self.sent_s) * 1000


class CountingThrottle(RequestThrottle):
    """The adapter's client-side throttle, also counting what passed through it, for the rate-limit check."""

    def __init__(self, tier: str) -> None:
        super().__init__(tier)
        self.requests: Counter[str] = Counter()
        self.weight_used = 0
        self.rate_limited = 0  # HTTP 429 answers seen

    async def acquire(self, endpoint: str) -> float:
        self.requests[endpoint] += 1
        self.weight_used += self.weight(endpoint)
        return await super().acquire(endpoint)

    @property
    def budget_per_minute(self) -> int:
        """Standard: requests per minute (unweighted); premium: weight per minute."""
        return self.per_minute

    @property
    def used(self) -> int:
        """What counts against `budget_per_minute`: requests (standard) or their weight (premium)."""
        return sum(self.requests.values()) if self.tier == "standard" else self.weight_used


class VenueReads:
    """REST reads with their bodies kept as received. Never raises for an unusable answer: it says why."""

    def __init__(self, api_client: lighter.ApiClient, throttle: CountingThrottle, timeout_s: float,
                 observe: Observer) -> None:
        self._client = api_client
        self._order_api = OrderApi(api_client)
        self._account_api = AccountApi(api_client)
        self._root_api = RootApi(api_client)
        self._throttle = throttle
        self._timeout_s = timeout_s
        self._observe = observe

    @classmethod
    def open(cls, url: str, throttle: CountingThrottle, timeout_s: float, observe: Observer) -> VenueReads:
        """Reads on a client of their own (as SignerClient makes one); `close()` them."""
        return cls(lighter.ApiClient(configuration=lighter.Configuration(host=url.rstrip("/"))), throttle,
                   timeout_s, observe)

    async def close(self) -> None:
        await self._client.close()

    async def status(self) -> RestAnswer:
        return await self._get(STATUS_ENDPOINT, lambda: self._root_api.status_without_preload_content(
            _request_timeout=self._timeout_s))

    async def order_book_details(self) -> RestAnswer:
        return await self._get("orderBookDetails", lambda: (
            self._order_api.order_book_details_without_preload_content(_request_timeout=self._timeout_s)))

    async def order_book_orders(self, market_id: int, limit: int = BOOK_ORDERS_FOR_TOP) -> RestAnswer:
        return await self._get("orderBookOrders", lambda: (
            self._order_api.order_book_orders_without_preload_content(
                market_id=market_id, limit=limit, _request_timeout=self._timeout_s)))

    async def account(self, account_index: int) -> RestAnswer:
        return await self._get("account", lambda: self._account_api.account_without_preload_content(
            by="index", value=str(account_index), _request_timeout=self._timeout_s))

    async def account_limits(self, account_index: int, token: str) -> RestAnswer:
        return await self._get("accountLimits", lambda: (
            self._account_api.account_limits_without_preload_content(
                account_index=account_index, authorization=token, _request_timeout=self._timeout_s)))

    async def active_orders(self, account_index: int, token: str) -> RestAnswer:
        """Every resting order of the account, in all markets (needs the account's auth token)."""
        return await self._get("accountActiveOrders", lambda: (
            self._order_api.account_active_orders_without_preload_content(
                authorization=token, account_index=account_index, _request_timeout=self._timeout_s)))

    async def _get(self, endpoint: str, call: Callable[[], Awaitable[Any]]) -> RestAnswer:
        await self._throttle.acquire(endpoint)
        sent = time.time()
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await call()  # the aiohttp response, body not read yet
                raw = await response.read()
        except (ApiException, *TRANSPORT_ERRORS) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}".strip()
            return RestAnswer(endpoint, None, None, " ".join(why.split()), sent, time.time())
        received = time.time()
        status = int(response.status)
        text = raw.decode("utf-8", errors="replace")
        try:
            payload: Any = loads_untrusted(text, f"{endpoint} body")
        except UntrustedJSONError:
            payload = text
        self._observe(Observed("rest", endpoint, payload, None if 200 <= status < 300 else status))
        if status == 429:
            self._throttle.rate_limited += 1
        return RestAnswer(endpoint, status, payload, answer_problem(status, payload), sent, received)


def answer_problem(status: int, payload: Any) -> str | None:
    """Why a REST answer is not usable (HTTP status, Lighter code, message), or None when it is."""
    code = payload.get("code") if isinstance(payload, dict) else None
    if status == 200 and isinstance(payload, dict) and code in (None, 200):
        return None
    message = payload.get("message") if isinstance(payload, dict) else str(payload)[:120]
    parts = [f"HTTP {status}"] + ([f"code {code}"] if code not in (None, 200) else [])
    return " ".join(parts) + (f": {message}" if message else "")


class PreflightAccount(LighterAccount):
    """One account with the adapter's key check and auth tokens, and nothing that could trade."""

    async def open_read_only(self) -> str | None:
        """Create the signer and check the API key against the venue (the SDK's `check_client`, as the
        bot's start does). Returns None when the key is valid, else why not."""
        try:
            self._signer = SignerClient(self.url, self.account_index, {self.api_key_index: self._secret},
                                        nonce_management_type=NonceManagerType.NONE, chain_id=self.chain_id)
        except Exception as exc:  # the signer refuses a malformed key with a plain Exception
            return f"the signer refused the key: {' '.join(str(exc).split())}"
        try:
            await self._check_key(self._signer)
        except Exception as exc:
            return " ".join(str(exc).split()) or type(exc).__name__
        return None

    @property
    def api_client(self) -> lighter.ApiClient:
        return self._require_signer().api_client

    async def auth_token(self, fresh: bool = False) -> tuple[str, float]:
        """(token, unix expiry seconds): the adapter's own token source, `fresh` forcing a new one."""
        return await self._auth_token(fresh)


# --- what the answers say ------------------------------------------------------------------------------


def known_chain_id(url: str) -> tuple[str, int] | None:
    """(network name, chain id) when `url`'s host is one of the SDK's endpoint profiles, else None."""
    host = (urlsplit(url).hostname or "").lower()
    for profile in ENDPOINT_PROFILES.values():
        if host and host == (urlsplit(profile.api_url).hostname or "").lower():
            return profile.name, profile.chain_id
    return None


@dataclass(frozen=True)
class VenueStatus:
    network_id: int | None
    server_time_ms: int | None  # the venue's clock; `GET /` answers whole seconds
    resolution_ms: int  # how coarse `server_time_ms` is


def venue_status(body: Mapping[str, Any]) -> VenueStatus:
    network = body.get("network_id")
    stamp = body.get("timestamp")
    time_ms, resolution = timestamp_ms(stamp)
    return VenueStatus(network if isinstance(network, int) else None, time_ms, resolution)


def timestamp_ms(value: Any) -> tuple[int | None, int]:
    """(ms, resolution in ms) of a venue timestamp in seconds or ms, by the adapter's one rule
    (`parsing.timestamp_ms`: below 10^11 it is seconds)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None, 0
    return parsing.timestamp_ms(value), (1000 if value < parsing.SECONDS_BELOW else 1)


@dataclass(frozen=True)
class AccountFacts:
    account_index: int
    account_type: int | None
    available_balance: Decimal | None
    positions: list[PositionSnapshot]  # non-zero only
    margin_fractions: dict[int, Decimal]  # market id -> the account's initial margin fraction (0.05 = 5 %)
    problems: list[str]  # parts of the answer that could not be read

    @property
    def tier(self) -> tuple[str, bool] | None:
        """(tier, confirmed?) from `account_type`, None when the type is unknown."""
        return ACCOUNT_TYPE_TIERS.get(self.account_type) if self.account_type is not None else None


def account_facts(body: Mapping[str, Any], account_index: int) -> AccountFacts:
    """The first account of an `account` answer (`DetailedAccounts`), read with the adapter's parsers."""
    accounts = body.get("accounts")
    raw = accounts[0] if isinstance(accounts, list) and accounts and isinstance(accounts[0], dict) else None
    if raw is None:
        return AccountFacts(account_index, None, None, [], {}, ["the answer holds no account"])
    problems: list[str] = []
    account_type = raw.get("account_type")
    try:
        available: Decimal | None = parsing.to_decimal(raw.get("available_balance"))
    except parsing.PARSE_ERRORS as exc:
        available = None
        problems.append(f"available_balance unreadable ({exc})")
    positions: list[PositionSnapshot] = []
    fractions: dict[int, Decimal] = {}
    for item in raw.get("positions") or []:
        try:
            snap = parsing.position_snapshot(item, account_index)
            fraction = parsing.to_decimal(parsing.as_dict(item).get("initial_margin_fraction"), Decimal(0))
        except parsing.PARSE_ERRORS as exc:
            problems.append(f"a position is unreadable ({type(exc).__name__}: {exc})")
            continue
        if fraction > 0:
            fractions[snap.market_id] = fraction / 100  # a percentage string, "10.00" = 10 %
        if snap.size != 0:
            positions.append(snap)
    return AccountFacts(account_index, account_type if isinstance(account_type, int) else None,
                        available, positions, fractions, problems)


def limits_tier(body: Mapping[str, Any]) -> str | None:
    """`user_tier` of an `accountLimits` answer ("standard" / "premium"), as the venue spells it."""
    tier = body.get("user_tier")
    return tier.lower() if isinstance(tier, str) and tier else None


@dataclass(frozen=True)
class MarketFacts:
    info: MarketInfo
    status: str
    default_margin_fraction: Decimal | None  # e.g. 0.05; None when the answer does not say
    reference_price: Decimal | None  # mark price or last trade price from the details


def find_market(body: Mapping[str, Any], symbol: str) -> tuple[MarketFacts | None, list[str]]:
    """The market `symbol` of an `orderBookDetails` answer, and the symbols it lists."""
    details = body.get("order_book_details")
    symbols: list[str] = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        symbols.append(str(detail.get("symbol")))
        if detail.get("symbol") == symbol:
            return _market_facts(detail), symbols
    return None, symbols


def _market_facts(detail: Mapping[str, Any]) -> MarketFacts:
    # The 1e-4 unit of the margin fractions is inferred: a mainnet capture shows ETH at default 500 and
    # minimum 200, i.e. 20x by default and 50x at most, which is what the venue advertises.
    fraction = detail.get("default_initial_margin_fraction")
    reference = next((detail[k] for k in ("mark_price", "last_trade_price") if detail.get(k)), None)
    try:
        price = parsing.to_decimal(reference) if reference is not None else None
    except parsing.PARSE_ERRORS:
        price = None
    return MarketFacts(
        info=MarketInfo.from_detail(detail),
        status=str(detail.get("status", "")),
        default_margin_fraction=fraction * IMF_UNIT if isinstance(fraction, int) and fraction > 0 else None,
        reference_price=price if price is not None and price > 0 else None,
    )


def book_top(body: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(best bid, best ask) of an `orderBookOrders` answer."""

    def first_price(side: str) -> Decimal | None:
        orders = body.get(side)
        if not isinstance(orders, list) or not orders:
            return None
        try:
            return parsing.to_decimal(parsing.as_dict(orders[0])["price"])
        except parsing.PARSE_ERRORS:
            return None

    return first_price("bids"), first_price("asks")


def resting_orders(body: Mapping[str, Any], account_index: int) -> tuple[list[OrderUpdate], list[str]]:
    """The orders of an `accountActiveOrders` answer, and the ones that could not be read."""
    orders: list[OrderUpdate] = []
    problems: list[str] = []
    raw = body.get("orders")
    for item in raw if isinstance(raw, list) else []:
        try:
            orders.append(parsing.order_update(item, account_index))
        except parsing.PARSE_ERRORS as exc:
            problems.append(f"an order is unreadable ({type(exc).__name__}: {exc})")
    return orders, problems

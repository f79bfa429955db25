"""Lighter REST routes (`/`, `/info`, `/api/v1/...`), answering with the lighter-sdk 1.1.8 models."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .auth import AuthError, check_token, parse_token
from .errors import INVALID_PARAM, INVALID_TX, TX_NOT_FOUND, SimError
from .tx_history import enriched
from .txs import now_us, parse_batch, parse_tx_type, tx_account

if TYPE_CHECKING:
    from .server import SimServer

ALL_KEYS = 255  # the SDK's "any api key" index
# Verified wording (corpus rest/accountActiveOrders, testnet 2026-08-01): neither form of the token was sent.
NO_TOKEN_MESSAGE = "invalid param : auth query param and Authorization header are empty"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ParamError(SimError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(INVALID_PARAM, f"invalid param : {name}: {problem}")


def ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


def q_cursor(request: web.Request) -> str | None:
    """A paging cursor: the id the previous page ended at (digits), or None for the first page."""
    raw = request.query.get("cursor") or None
    if raw is not None and not raw.isdigit():
        raise ParamError("cursor", f"must be the next_cursor of a previous page, got {raw!r}")
    return raw


def q_int(
    request: web.Request,
    name: str,
    *,
    required: bool = True,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise ParamError(name, "required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(name, f"must be an integer, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ParamError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def q_req_int(
    request: web.Request, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = q_int(request, name, minimum=minimum, maximum=maximum)
    assert value is not None  # required=True never returns None
    return value


def q_market(request: web.Request, *, required: bool) -> int | None:
    market = q_int(request, "market_id", required=required, minimum=0, maximum=255)
    return None if market == ALL_KEYS and not required else market


class LighterRoutes:
    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.engine = server.engine

    def register(self, app: web.Application) -> None:
        get = {
            "/": self.status,
            "/info": self.info,
            "/api/v1/nextNonce": self.next_nonce,
            "/api/v1/apikeys": self.apikeys,
            "/api/v1/account": self.account,
            "/api/v1/orderBookDetails": self.order_book_details,
            "/api/v1/orderBooks": self.order_books,
            "/api/v1/orderBookOrders": self.order_book_orders,
            "/api/v1/accountActiveOrders": self.account_active_orders,
            "/api/v1/accountInactiveOrders": self.account_inactive_orders,
            "/api/v1/accountOrders": self.account_orders,
            "/api/v1/accountLimits": self.account_limits,
            "/api/v1/recentTrades": self.recent_trades,
            "/api/v1/trades": self.trades,
            "/api/v1/tx": self.tx,
        }
        for path, handler in get.items():
            app.router.add_get(path, handler, allow_head=False)
        app.router.add_post("/api/v1/sendTx", self.send_tx)
        app.router.add_post("/api/v1/sendTxBatch", self.send_tx_batch)

    # --- public reads ---------------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.Response:
        return ok(self.engine.status_json())

    async def info(self, request: web.Request) -> web.Response:
        return ok({"contract_address": "0x0000000000000000000000000000000000000000"})

    async def next_nonce(self, request: web.Request) -> web.Response:
        account = q_req_int(request, "account_index", minimum=0)
        key = q_req_int(request, "api_key_index", minimum=0, maximum=254)
        return ok({"code": 200, "nonce": self.engine.next_nonce(account, key)})

    async def apikeys(self, request: web.Request) -> web.Response:
        account = q_req_int(request, "account_index", minimum=0)
        key = q_int(request, "api_key_index", required=False, minimum=0, maximum=ALL_KEYS)
        keys = self.engine.api_keys_json(account, None if key == ALL_KEYS else key)
        return ok({"code": 200, "api_keys": keys})

    async def account(self, request: web.Request) -> web.Response:
        by = request.query.get("by", "")
        value = request.query.get("value", "")
        if by not in ("index", "l1_address"):
            raise ParamError("by", f"must be index or l1_address, got {by!r}")
        if not value:
            raise ParamError("value", "required")
        if by == "index" and not value.isdigit():
            raise ParamError("value", f"must be an account index, got {value!r}")
        return ok(self.engine.account_json(by, value))

    async def order_book_details(self, request: web.Request) -> web.Response:
        return ok(self.engine.order_book_details_json(q_market(request, required=False)))

    async def order_books(self, request: web.Request) -> web.Response:
        return ok(self.engine.order_books_json(q_market(request, required=False)))

    async def order_book_orders(self, request: web.Request) -> web.Response:
        market = q_req_int(request, "market_id", minimum=0, maximum=254)
        limit = q_req_int(request, "limit", minimum=1, maximum=250)
        return ok(self.engine.order_book_orders_json(market, limit))

    async def recent_trades(self, request: web.Request) -> web.Response:
        market = q_req_int(request, "market_id", minimum=0, maximum=254)
        limit = q_req_int(request, "limit", minimum=1, maximum=100)
        return ok(self.engine.recent_trades_json(market, limit))

    async def trades(self, request: web.Request) -> web.Response:
        sort_dir = request.query.get("sort_dir", "desc") or "desc"
        if sort_dir not in ("asc", "desc"):
            raise ParamError("sort_dir", f"must be asc or desc, got {sort_dir!r}")
        sort_by = request.query.get("sort_by", "timestamp") or "timestamp"
        if sort_by not in ("block_height", "timestamp", "trade_id"):
            raise ParamError("sort_by", f"must be block_height, timestamp or trade_id, got {sort_by!r}")
        account = q_int(request, "account_index", required=False, minimum=0)
        if account is not None and _token(request):
            self._authorize(request, account)  # a token that comes along must be good (either form)
        return ok(
            self.engine.trades_json(
                account_index=account,
                market_id=q_market(request, required=False),
                order_index=q_int(request, "order_index", required=False, minimum=0),
                from_ms=q_int(request, "from", required=False, minimum=0),
                limit=q_req_int(request, "limit", minimum=1, maximum=100),
                sort_dir=sort_dir,
                cursor=q_cursor(request),
            )
        )

    async def tx(self, request: web.Request) -> web.Response:
        """A transaction the sequencer settled, by its hash (public, as lighter-sdk's `tx` takes no token)."""
        by = request.query.get("by", "")
        value = request.query.get("value", "")
        if by != "hash":
            raise ParamError("by", f"must be hash (the sim keeps no sequence index lookup), got {by!r}")
        if not value:
            raise ParamError("value", "required")
        settled = self.server.txs.get(value)
        if settled is None:
            raise SimError(TX_NOT_FOUND, "transaction not found")
        return ok(enriched(settled))

    # --- reads that need an auth token ----------------------------------------------------------------

    def _authorize(self, request: web.Request, account: int) -> None:
        """The venue takes the token as the `authorization` header or as the `auth` query parameter."""
        token = _token(request)
        if not token:
            raise SimError(INVALID_PARAM, NO_TOKEN_MESSAGE)
        try:
            check_token(token, account, self.server.key_registered)
        except AuthError as exc:
            raise SimError(exc.code, str(exc)) from None

    async def account_limits(self, request: web.Request) -> web.Response:
        account = q_req_int(request, "account_index", minimum=0)
        self._authorize(request, account)
        return ok(self.engine.account_limits_json(account))

    async def account_active_orders(self, request: web.Request) -> web.Response:
        account = q_req_int(request, "account_index", minimum=0)
        market = q_market(request, required=False)
        self._authorize(request, account)
        return ok(self.engine.active_orders_json(account, market))

    async def account_inactive_orders(self, request: web.Request) -> web.Response:
        account = q_req_int(request, "account_index", minimum=0)
        limit = q_req_int(request, "limit", minimum=1, maximum=100)
        market = q_market(request, required=False)
        self._authorize(request, account)
        return ok(
            self.engine.inactive_orders_json(account, limit, market_id=market, cursor=q_cursor(request))
        )

    async def account_orders(self, request: web.Request) -> web.Response:
        raw = request.query.get("client_order_indexes", "")
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts:
            raise ParamError("client_order_indexes", "required, e.g. 123,456")
        if len(parts) > 20 or not all(p.isdigit() for p in parts):
            raise ParamError("client_order_indexes", "must be up to 20 comma-separated integers")
        account = q_int(request, "account_index", required=False, minimum=0)
        if account is None:
            token = _token(request)
            if not token:
                raise SimError(INVALID_PARAM, NO_TOKEN_MESSAGE)
            try:
                account = parse_token(token).account_index
            except AuthError as exc:
                raise SimError(exc.code, str(exc)) from None
        self._authorize(request, account)
        return ok(self.engine.orders_by_client_index_json(account, [int(p) for p in parts]))

    # --- transactions ---------------------------------------------------------------------------------

    async def send_tx(self, request: web.Request) -> web.Response:
        started, arrival = time.perf_counter(), now_us()
        form = await request.post()
        tx_type = parse_tx_type(form.get("tx_type"))
        tx_info = form.get("tx_info")
        if not isinstance(tx_info, str) or not tx_info.startswith("{"):
            raise SimError(INVALID_TX, "tx_info must be a JSON object string")
        response, record = self.server.gateway.submit(tx_type, tx_info, arrival, started)
        await self._maybe_blackhole(request, record)
        return ok(response)

    async def send_tx_batch(self, request: web.Request) -> web.Response:
        started, arrival = time.perf_counter(), now_us()
        form = await request.post()
        tx_types, tx_infos = parse_batch(form.get("tx_types"), form.get("tx_infos"))
        response, records = self.server.gateway.submit_batch(tx_types, tx_infos, arrival, started)
        if records:
            await self._maybe_blackhole(request, records[0])
        return ok(response)

    async def _maybe_blackhole(self, request: web.Request, record: Any) -> None:
        """The ambiguous outcome: the tx is accepted and executes, but the answer never comes."""
        if not self.server.gateway.blackholed(record):
            return
        # Held until the client gives up (aiohttp then cancels this handler) or the sim shuts down.
        await self.server.shutting_down.wait()


def _token(request: web.Request) -> str | None:
    return request.headers.get("authorization") or request.query.get("auth") or None


def rate_limit_target(server: SimServer, request: web.Request, form: Any) -> tuple[str, str]:
    """(bucket key, tier) a request is charged to: the account it names, or the client IP."""
    account: int | None = None
    path = request.path
    if path == "/api/v1/sendTx" and form is not None:
        account = tx_account(form.get("tx_info"))
    elif path == "/api/v1/sendTxBatch" and form is not None:
        try:
            _, infos = parse_batch(form.get("tx_types"), form.get("tx_infos"))
            account = tx_account(infos[0])
        except SimError:
            account = None
    else:
        raw = request.query.get("account_index")
        if raw is None and request.query.get("by") == "index":
            raw = request.query.get("value")
        account = int(raw) if raw is not None and raw.isdigit() else None
    if account is not None and server.engine.has_account(account):
        return server.limiter.account_key(account), server.engine.tier_of(account)
    return f"ip:{request.remote}", "premium"

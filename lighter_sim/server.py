"""The simulator process: engine + market flow + REST + WebSocket + admin, wired on one aiohttp app."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from .admin import AdminRoutes
from .config import SimConfig
from .engine import Engine
from .errors import SimError
from .faults import INJECTED_CODE, INJECTED_MESSAGE, Faults
from .keygen import read_public_keys, write_public_keys
from .ratelimit import RATE_LIMIT_CODE, RateLimiter
from .rest import LighterRoutes, rate_limit_target
from .scheduler import Ticker
from .signatures import SignatureCheck
from .tx_history import TxHistory
from .txs import MALFORMED, TxGateway, now_us, parse_batch, parse_tx_type, tx_account
from .ws import WsHub

log = logging.getLogger("sim.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AccountEntry:
    tier: str
    collateral: Decimal
    keys: dict[int, str] = field(default_factory=dict)


def error_response(status: int, code: int, message: str, retry_after_s: float | None = None) -> web.Response:
    headers = {"Retry-After": f"{retry_after_s:g}"} if retry_after_s is not None else None
    return web.json_response({"code": code, "message": message}, status=status, headers=headers)


class SimServer:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.log = log
        self.engine = Engine(
            [market.spec() for market in config.markets],
            config.fees.by_tier(),
            chain_id=config.chain_id,
            check_signature=SignatureCheck(config.chain_id, config.verify_signatures),
        )
        self.flow: Any = None
        if config.flow.enabled:
            from .flow import MarketFlow  # only needed with flow on

            self.flow = MarketFlow(self.engine, config.flow, config.seed)
        self.faults = Faults(seed=config.seed)
        limits = config.rate_limits
        self.limiter = RateLimiter(limits.standard_per_minute, limits.premium_weight_per_minute,
                                   shared=limits.shared)
        self.gateway = TxGateway(config, self.engine, self.faults)
        self.hub = WsHub(
            self.engine,
            ping_interval_s=config.websocket.ping_interval_s,
            pong_timeout_s=config.websocket.pong_timeout_s,
            silenced=self.faults.ws_silenced,
            send_tx=self.ws_send_tx,
            faults=self.faults.ws,
            key_registered=self.key_registered,
            seed=config.seed,
        )
        self.engine.add_listener(self.hub.on_event)
        self.txs = TxHistory()  # settled transactions: GET /api/v1/tx
        self.engine.add_listener(self.txs.on_event)
        self.registry: dict[int, AccountEntry] = {}
        self.ticker = Ticker(config.flow.tick_interval_ms, self._tick,
                             self.flow.next_due_ms if self.flow is not None else None)
        self._runner: web.AppRunner | None = None
        self.shutting_down = asyncio.Event()  # releases requests held open by the blackhole fault
        self._register_configured_accounts()

    # --- accounts -------------------------------------------------------------------------------------

    def _register_configured_accounts(self) -> None:
        stored = read_public_keys(self.config.state_dir)
        for seed in self.config.accounts:
            self.register_account(
                seed.account_index,
                seed.tier,
                seed.collateral,
                stored.get(seed.account_index, {}),
                persist=False,
            )
        for index, keys in sorted(stored.items()):
            if index not in self.registry and index > 2:
                log.info(
                    "account %s has keys in %s/api_keys.json but is not in sim.accounts; "
                    "registering it as premium with 100000 USDC",
                    index,
                    self.config.state_dir,
                )
                self.register_account(index, "premium", Decimal("100000"), keys, persist=False)
        for index, entry in sorted(self.registry.items()):
            if not entry.keys:
                log.warning("account %s has no API key yet: run `python -m lighter_sim keygen`", index)

    def register_account(
        self, index: int, tier: str, collateral: Decimal, keys: dict[int, str], *, persist: bool
    ) -> None:
        entry = self.registry.get(index)
        merged = {**(entry.keys if entry else {}), **keys}
        self.engine.upsert_account(index, tier, collateral, merged)
        self.registry[index] = AccountEntry(tier, collateral, merged)
        if persist and keys:
            stored = read_public_keys(self.config.state_dir)
            stored.setdefault(index, {}).update(keys)
            write_public_keys(self.config.state_dir, stored)
        log.info(
            "account %s registered: tier %s, collateral %s, api keys %s",
            index,
            tier,
            collateral,
            sorted(merged) or "none",
        )

    def key_registered(self, account_index: int, api_key_index: int) -> bool:
        entry = self.registry.get(account_index)
        return entry is not None and api_key_index in entry.keys

    # --- state ----------------------------------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        state = self.engine.state_json()
        state["faults"] = self.faults.to_json()
        state["ws_connections"] = len(self.hub.connections)
        state["ws_subscriptions"] = self.hub.subscriber_counts()
        state["pending_executions"] = self.gateway.speed_bumps.pending()
        state["server_tx_log"] = self.gateway.log_json()
        return state

    async def reset(self) -> int:
        """Engine back to its initial state (accounts, keys stay); pending executions and limits dropped."""
        self.gateway.clear()
        self.txs.clear()
        self.limiter.reset()
        self.engine.reset()
        log.info("sim reset: books, orders, positions, trades, nonces and the tx log cleared")
        return 0

    def _tick(self, now_ms: int) -> None:
        if self.flow is not None:
            self.flow.advance_to(now_ms)
        self.engine.tick(now_ms)

    # --- WebSocket transactions -----------------------------------------------------------------------

    async def ws_send_tx(self, data: dict[str, Any], client_key: str, batch: bool) -> dict[str, Any] | None:
        """The answer to a `jsonapi/sendtx(batch)`; None when it must never come (blackhole_next_sendtx)."""
        started, arrival = time.perf_counter(), now_us()
        try:
            if batch:
                tx_types, tx_infos = parse_batch(data.get("tx_types"), data.get("tx_infos"))
                account = tx_account(tx_infos[0])
            else:
                tx_type = parse_tx_type(data.get("tx_type"))
                tx_info = data.get("tx_info")
                # The object is the form verified on the venue (the captured ack answered it; Lighter's
                # example and ccxt send it); the signer's JSON text as a string is accepted too [inferred].
                if isinstance(tx_info, dict):
                    tx_info = json.dumps(tx_info)
                if not isinstance(tx_info, str) or not tx_info.startswith("{"):
                    raise SimError(MALFORMED, "tx_info must be a JSON object string")
                account = tx_account(tx_info)
            if self.config.rate_limits.enabled:
                key, tier = client_key, "premium"
                if account is not None and self.engine.has_account(account):
                    key, tier = self.limiter.account_key(account), self.engine.tier_of(account)
                if not self.limiter.allow(key, tier, "sendTx"):
                    return {"code": RATE_LIMIT_CODE, "message": "too many requests"}
            if batch:
                response, records = self.gateway.submit_batch(tx_types, tx_infos, arrival, started)
            else:
                response, record = self.gateway.submit(tx_type, tx_info, arrival, started)
                records = [record]
            return None if records and self.gateway.blackholed(records[0]) else response
        except SimError as exc:
            return {"code": exc.code, "message": exc.message}

    # --- HTTP plumbing --------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer is a JSON object: business errors 400 {code, message}, unknown route 404, bug 500."""
        try:
            return await handler(request)
        except SimError as exc:
            return error_response(
                exc.http_status if 400 <= exc.http_status < 600 else 400, exc.code, exc.message
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, exc.status, f"{exc.reason}: {request.method} {request.path}")
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("unhandled error in %s %s; answering 500", request.method, request.path)
            return error_response(500, 500, "internal simulator error")

    @web.middleware
    async def _venue(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Lighter routes only: injected HTTP errors, rate limits, then injected latency on the answer."""
        path = request.path
        if path.startswith("/sim/") or path == "/stream":
            return await handler(request)
        response: web.StreamResponse
        injected = self.faults.take_http_error(path)
        if injected is not None:
            status, retry_after_s = injected
            log.info("injected HTTP %s for %s %s", status, request.method, path)
            if status == 429:
                response = error_response(429, RATE_LIMIT_CODE, "too many requests", retry_after_s)
            else:
                response = error_response(status, INJECTED_CODE, INJECTED_MESSAGE, retry_after_s)
        elif self.config.rate_limits.enabled and not await self._within_limits(request):
            response = error_response(429, RATE_LIMIT_CODE, "too many requests")
        else:
            response = await handler(request)
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        return response

    async def _within_limits(self, request: web.Request) -> bool:
        form = await request.post() if request.method == "POST" else None
        key, tier = rate_limit_target(self, request, form)
        if self.limiter.allow(key, tier, path_route(request.path)):
            return True
        log.info("rate limit: %s (%s tier) over its budget; %s answered 429", key, tier, request.path)
        return False

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._venue], client_max_size=1 << 20)
        LighterRoutes(self).register(app)
        AdminRoutes(self).register(app)
        app.router.add_get("/stream", self.hub.handle)
        return app

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (port 0 picks one); returns the bound port."""
        # handler_cancellation: a client giving up on a request (timeout, blackhole) frees its handler.
        self._runner = web.AppRunner(
            self.build_app(), access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, shutdown_timeout=2.0, reuse_address=True)
        await site.start()
        self.ticker.start()
        server = site._server
        sockets: list[socket.socket] = list(getattr(server, "sockets", None) or [])
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        self.shutting_down.set()
        await self.ticker.stop()
        closed = await self.hub.close_all(1001, "server shutdown")
        self.gateway.speed_bumps.cancel_all()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("sim stopped (%d websockets closed)", closed)


def path_route(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "status"

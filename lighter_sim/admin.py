"""Admin routes under `/sim/` (off the Lighter namespace, never rate-limited): accounts, faults, forced
trades, price moves, inspection and reset."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import TIERS
from .errors import SimError
from .faults import FaultError

if TYPE_CHECKING:
    from .server import SimServer

BAD_REQUEST = 20001
_PUBKEY = re.compile(r"^(0x)?[0-9a-fA-F]{80}$")


def _bad(message: str) -> SimError:
    return SimError(BAD_REQUEST, message)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _bad("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    return body


def _int_field(body: dict[str, Any], name: str, *, minimum: int = 0) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return value


MAX_ADMIN_NUMBER = Decimal(10) ** 12  # far above any real size or price; keeps the scaled ints sane


def _decimal_field(body: dict[str, Any], name: str, *, positive: bool = True) -> Decimal:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(f"{name}: must be a decimal string, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _bad(f"{name}: must be a decimal string, got {value!r}") from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise _bad(f"{name}: must be {'> 0' if positive else '>= 0'}, got {value!r}")
    if number >= MAX_ADMIN_NUMBER:
        raise _bad(f"{name}: must be below {MAX_ADMIN_NUMBER:,}, got {value!r}")
    return number


class AdminRoutes:
    def __init__(self, server: SimServer) -> None:
        self.server = server

    def register(self, app: web.Application) -> None:
        app.router.add_post("/sim/accounts", self.accounts)
        app.router.add_post("/sim/faults", self.set_faults)
        app.router.add_delete("/sim/faults", self.clear_faults)
        app.router.add_get("/sim/faults", self.get_faults)
        app.router.add_post("/sim/trade", self.trade)
        app.router.add_post("/sim/price", self.price)
        app.router.add_get("/sim/state", self.state)
        app.router.add_get("/sim/txlog", self.txlog)
        app.router.add_post("/sim/reset", self.reset)

    async def accounts(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        index = _int_field(body, "account_index", minimum=3)  # 1 and 2 are the sim's own liquidity accounts
        known = self.server.registry.get(index)
        tier = body.get("tier", known.tier if known else "premium")
        if tier not in TIERS:
            raise _bad(f"tier: must be one of {TIERS}, got {tier!r}")
        collateral = (
            _decimal_field(body, "collateral", positive=False)
            if "collateral" in body
            else known.collateral
            if known
            else Decimal("100000")
        )
        raw_keys = body.get("api_keys", {})
        if not isinstance(raw_keys, dict):
            raise _bad('api_keys: must be an object {"<api_key_index>": "<public key hex>"}')
        keys: dict[int, str] = {}
        for key, pub in raw_keys.items():
            if not str(key).isdigit() or not 0 <= int(key) <= 254:
                raise _bad(f"api_keys: key index must be 0..254, got {key!r}")
            if not isinstance(pub, str) or not _PUBKEY.match(pub):
                raise _bad(f"api_keys.{key}: must be 80 hex chars (a lighter public key), got {pub!r}")
            keys[int(key)] = pub[2:] if pub.startswith("0x") else pub
        self.server.register_account(index, tier, collateral, keys, persist=True)
        return web.json_response(
            {
                "code": 200,
                "message": "",
                "account_index": index,
                "tier": tier,
                "collateral": str(collateral),
                "api_key_indexes": sorted(self.server.registry[index].keys),
            }
        )

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            drop, code = self.server.faults.apply(body)
        except FaultError as exc:
            raise _bad(str(exc)) from None
        dropped = await self.server.hub.close_all(code, "fault injection") if drop else 0
        done = self.server.hub.run_faults()  # a shutdown notice, an injected frame
        self.server.log.info("faults set: %s; websockets dropped: %d", json.dumps(body)[:500], dropped)
        return web.json_response(
            {
                "code": 200,
                "message": "",
                "faults": self.server.faults.to_json(),
                "dropped_websockets": dropped,
                **done,
            }
        )

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.server.faults.clear()
        self.server.log.info("faults cleared")
        return web.json_response({"code": 200, "message": "", "faults": self.server.faults.to_json()})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"code": 200, "message": "", "faults": self.server.faults.to_json()})

    async def trade(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        market = _int_field(body, "market_id")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise _bad(f"side: must be buy or sell (the taker's side), got {side!r}")
        size = _decimal_field(body, "size")
        price = _decimal_field(body, "price") if body.get("price") is not None else None
        trades = self.server.engine.force_trade(market, side, size, price)
        self.server.log.info(
            "forced %s of %s on market %s up to %s: %d trades",
            side,
            size,
            market,
            price or "any price",
            len(trades),
        )
        return web.json_response({"code": 200, "message": "", "trades": trades})

    async def price(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        market = _int_field(body, "market_id")
        price = _decimal_field(body, "price")
        self.server.engine.set_mid(market, price)
        self.server.log.info("mid of market %s moved to %s", market, price)
        return web.json_response(
            {"code": 200, "message": "", "market_id": market, "mid": str(self.server.engine.mid(market))}
        )

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(self.server.state_json())

    async def txlog(self, request: web.Request) -> web.Response:
        raw_account = request.query.get("account_index")
        raw_since = request.query.get("since_us", "0")
        if (raw_account is not None and not raw_account.isdigit()) or not raw_since.isdigit():
            raise _bad("account_index and since_us must be integers")
        account = int(raw_account) if raw_account is not None else None
        return web.json_response(
            {"code": 200, "message": "", "tx_log": self.server.gateway.log_json(account, int(raw_since))}
        )

    async def reset(self, request: web.Request) -> web.Response:
        dropped = await self.server.reset()
        return web.json_response({"code": 200, "message": "", "dropped_websockets": dropped})

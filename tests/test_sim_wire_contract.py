"""The simulator's WebSocket frames against the venue's, as recorded in the wire corpus (tests/wire/).

The real simulator is driven once (the real lighter-sdk signs and places orders, fills happen between two
premium accounts) and one frame of each channel and type it sends is collected. Each is compared with the
corpus frames of the same channel and type: the same keys, the same value types (recursively through the
order, trade and position objects), fields the venue leaves out when zero left out too, timestamps in the
same unit, and the same channel and type naming. Where the corpus holds an older and a newer form of a
frame, the newer is the reference; REFERENCES names the file of each.

Checks that are not about shape, each from the corpus README's "Facts the corpus proves":
- order `side` is "" (fact 9); a fee field is the rate in millionths, not an amount (fact 5, inferred).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import lighter
import pytest

from lighter_sim.config import PremiumFees
from tests.fixtures.sim import SimProcess, launch_sim
from tests.fixtures.wire import CORPUS_DIR, read_file

BTC = 1
LOT = 20  # 0.00020 BTC
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
IOC = lighter.SignerClient.ORDER_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL
WAIT_S = 5.0


@dataclass(frozen=True)
class Reference:
    """Which corpus frames a sim frame is compared with, and why those."""

    files: tuple[str, ...]  # relative to tests/wire/
    match: dict[str, Any]  # payload fields that select the frames (e.g. the type), or {"error.code": 30003}
    channel: str | None  # the venue's channel pattern (\d+ for ids); None for control frames
    note: str = ""


ORDER_BOOK_2026 = ("ws/order_book/hftbacktest_mainnet-crv-2026-07-29.jsonl",
                   "ws/order_book/hftbacktest_mainnet-eth-2026-07-28.jsonl")
CONTROL_2026 = ("ws/control/hftbacktest_mainnet-2026-07-28.jsonl",)

REFERENCES: dict[str, Reference] = {
    "subscribed/order_book": Reference(
        ORDER_BOOK_2026, {"type": "subscribed/order_book"}, r"order_book:\d+",
        "mainnet Jul 2026 (nonce/begin_nonce), newer than the Oct 2025 offset-only form"),
    "update/order_book": Reference(
        ORDER_BOOK_2026, {"type": "update/order_book"}, r"order_book:\d+",
        "mainnet Jul 2026 (nonce/begin_nonce), newer than the Oct 2025 offset-only form"),
    "subscribed/trade": Reference(
        ("ws/trade/hftbacktest_mainnet-crv-2026-07-29.jsonl", "ws/trade/ccxt_mainnet-2025-11-20.jsonl"),
        {"type": "subscribed/trade"}, r"trade:\d+",
        "mainnet Jul 2026 and Nov 2025: recent trades in the snapshot"),
    "update/trade": Reference(
        ("ws/trade/hftbacktest_mainnet-crv-2026-07-29.jsonl",
         "ws/trade/hftbacktest_mainnet-eth-2026-07-28.jsonl"),
        {"type": "update/trade"}, r"trade:\d+", "mainnet Jul 2026, both client order indexes named"),
    "subscribed/account_all": Reference(
        ("ws/account_all/qubx_mainnet-225671-2025-10-12.jsonl",), {"type": "subscribed/account_all"},
        r"account_all:\d+", "the only capture (mainnet Oct 2025)"),
    "update/account_all trades": Reference(
        ("ws/account_all/qubx_mainnet-225671-2025-10-12.jsonl",), {"type": "update/account_all"},
        r"account_all:\d+", "the only capture (mainnet Oct 2025); trades and positions in separate frames"),
    "update/account_all positions": Reference(
        ("ws/account_all/qubx_mainnet-225671-2025-10-12.jsonl",), {"type": "update/account_all"},
        r"account_all:\d+", "the only capture (mainnet Oct 2025)"),
    "subscribed/account_all_orders": Reference(
        ("ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl",),
        {"type": "subscribed/account_all_orders"}, r"account_all_orders:\d+",
        "testnet Jul 2026, newer than mainnet Oct 2025 (no integrator fields, order_flags, transaction_time)",
    ),
    "update/account_all_orders": Reference(
        ("ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl",),
        {"type": "update/account_all_orders"}, r"account_all_orders:\d+",
        "testnet Jul 2026, newer than mainnet Oct 2025"),
    "subscribed/account_all_trades": Reference(
        ("ws/account_all_trades/hftbacktest_testnet-516-2026-07-30.jsonl",),
        {"type": "subscribed/account_all_trades"}, r"account_all_trades:\d+", "testnet Jul 2026"),
    "update/account_all_trades": Reference(
        ("ws/account_all_trades/nautilus_update.jsonl",), {"type": "update/account_all_trades"},
        r"account_all_trades:\d+", "docs only (no captured account fill); trade objects: see TRADE_OBJECTS"),
    "subscribed/account_all_positions": Reference(
        ("ws/account_all_positions/hftbacktest_testnet-516-2026-07-30.jsonl",),
        {"type": "subscribed/account_all_positions"}, r"account_all_positions:\d+", "testnet Jul 2026"),
    "update/account_all_positions": Reference(
        ("ws/account_all_positions/hftbacktest_testnet-516-2026-07-30.jsonl",),
        {"type": "update/account_all_positions"}, r"account_all_positions:\d+",
        "testnet Jul 2026, newer than the docs-following Nautilus fixture (last_funding_*)"),
    "subscribed/account_tx": Reference(
        ("ws/account_tx/qubx_mainnet-225671-2025-10-12.jsonl",), {"type": "subscribed/account_tx"},
        r"account_tx:\d+", "the only capture (mainnet Oct 2025): no txs in the snapshot"),
    "update/account_tx": Reference(
        ("ws/account_tx/qubx_mainnet-225671-2025-10-12.jsonl",), {"type": "update/account_tx"},
        r"account_tx:\d+", "the only capture (mainnet Oct 2025); event_info's content is the sim's own"),
    "update/account_orders": Reference(
        ("ws/account_orders/nautilus_update.jsonl",), {"type": "update/account_orders"},
        r"account_orders:\d+",
        "docs only; the channel follows the docs' `account_orders:{MARKET_INDEX}`, not the fixture's",
    ),
    "connected": Reference(CONTROL_2026, {"type": "connected"}, None, "mainnet Jul 2026"),
    "pong": Reference(CONTROL_2026, {"type": "pong"}, None, "mainnet Jul 2026"),
    "ping": Reference(("ws/control/ccxt_code-comments.jsonl",), {"type": "ping"}, None, "quoted by ccxt"),
    "unsubscribed": Reference(CONTROL_2026, {"type": "unsubscribed"}, None, "mainnet Jul 2026"),
    "shutdown": Reference(("ws/control/constructed_shutdown.jsonl",), {"type": "shutdown"}, None,
                          "constructed from lighter-sdk's WsClient (no capture)"),
    "error 30003": Reference(CONTROL_2026, {"error.code": 30003}, None, "mainnet Jul 2026"),
    "error 30005": Reference(CONTROL_2026, {"error.code": 30005}, None, "mainnet Jul 2026"),
    "error 30009": Reference(("ws/control/hftbacktest_mainnet-2026-08-rate-limit.jsonl",),
                             {"error.code": 30009}, None, "mainnet Aug 2026"),
    "error 20001": Reference(("ws/control/hftbacktest_testnet-auth-required.jsonl",),
                             {"error.code": 20001}, None, "testnet Jul 2026"),
    "error 20013": Reference(("ws/control/qubx_error-expired-token.jsonl",), {"error.code": 20013}, None,
                             "mainnet Oct 2025"),
    "typed error": Reference(("ws/control/nautilus_test-frames.jsonl",), {"type": "error"}, None,
                             "constructed by Nautilus' tests: the only instance of this form"),
    "jsonapi/sendtx accepted": Reference(("ws/sendtx/ccxt_ack-2026-08.jsonl",), {"code": 200}, None,
                                         "mainnet Aug 2026"),
    "jsonapi/sendtx refused": Reference(("ws/sendtx/nautilus_test-frames.jsonl",), {"type": "jsonapi/sendtx"},
                                        None, "constructed by Nautilus' tests (no captured refusal)"),
}

# Orders, trades and positions, in whatever frame, are compared with the newest captured objects of their
# kind: orders and positions from testnet Jul 2026, trades from the public trade channel, mainnet Jul 2026
# (the same object; the only account_all_trades update in the corpus is docs-made, account_all's is of 2025).
OBJECT_REFERENCES = {
    "orders": ("ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl",),
    "positions": ("ws/account_all_positions/hftbacktest_testnet-516-2026-07-30.jsonl",),
    "trades": ("ws/trade/hftbacktest_mainnet-crv-2026-07-29.jsonl",
               "ws/trade/hftbacktest_mainnet-eth-2026-07-28.jsonl"),
}
MARKET_MAPS = {"orders", "trades", "positions", "funding_histories"}  # objects keyed by market index
# Left out when zero / false (README fact 5: "a fee field is left out when it is zero").
OMITTED_WHEN_EMPTY = {"taker_fee": "number", "maker_fee": "number",
                      "taker_position_sign_changed": "bool", "maker_position_sign_changed": "bool"}
TIME_FIELDS = {"timestamp", "created_at", "updated_at", "transaction_time", "last_updated_at", "order_expiry",
               "predicted_execution_time_ms"}


# --- comparison ---------------------------------------------------------------------------------------------


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    names = {str: "string", dict: "object", list: "list", type(None): "null"}
    return names.get(type(value), repr(type(value)))


def time_unit(value: Any) -> str | None:
    """s / ms / us by magnitude (epoch times of 2001-2286), None for 0 or not a number."""
    if kind_of(value) != "number" or not value:
        return None
    return "s" if value < 1e11 else "ms" if value < 1e14 else "us"


def shape_problems(sim: Any, venue: list[Any], path: str = "$") -> list[str]:
    """How `sim` differs from the venue's examples of the same place: keys, types, time units."""
    kinds = {kind_of(v) for v in venue}
    if kind_of(sim) not in kinds:
        return [f"{path}: {kind_of(sim)} {json.dumps(sim)[:60]}, venue sends {sorted(kinds)}"]
    if isinstance(sim, dict):
        examples = [v for v in venue if isinstance(v, dict)]
        name = path.rsplit(".", 1)[-1]
        if name in MARKET_MAPS:
            problems = [f"{path}: key {k!r} is not a market index" for k in sim if not k.isdigit()]
            inner = venue_objects(name) or [item for e in examples for item in e.values()]
            for key, value in sim.items():
                problems += shape_problems(value, inner, f"{path}.{key}") if inner else []
            return problems
        return _struct_problems(sim, examples, path)
    if isinstance(sim, list):
        items = [item for v in venue if isinstance(v, list) for item in v]
        if not items:
            return []
        return [p for i, item in enumerate(sim) for p in shape_problems(item, items, f"{path}[{i}]")]
    key = path.rsplit(".", 1)[-1]
    if key in TIME_FIELDS and time_unit(sim) is not None:
        units = {time_unit(v) for v in venue} - {None}
        if units and time_unit(sim) not in units:
            return [f"{path}: {sim} is in {time_unit(sim)}, the venue sends {sorted(units)}"]
    return []


def _struct_problems(sim: dict[str, Any], examples: list[dict[str, Any]], path: str) -> list[str]:
    every = set.union(*(set(e) for e in examples))
    required = set.intersection(*(set(e) for e in examples)) - set(OMITTED_WHEN_EMPTY)
    missing = sorted(required - set(sim))
    problems = [f"{path}: field {k!r} missing (the venue always sends it)" for k in missing]
    for key, value in sim.items():
        where = f"{path}.{key}"
        if key in OMITTED_WHEN_EMPTY:
            if not value:
                problems.append(f"{where}: {value!r} sent; the venue leaves it out when zero/false")
            elif kind_of(value) != OMITTED_WHEN_EMPTY[key]:
                problems.append(f"{where}: {kind_of(value)}, the venue sends {OMITTED_WHEN_EMPTY[key]}")
            continue
        if key not in every:
            problems.append(f"{where}: field not sent by the venue")
            continue
        problems += shape_problems(value, [e[key] for e in examples if key in e], where)
    return problems


# --- the corpus ---------------------------------------------------------------------------------------------


def _field(payload: dict[str, Any], dotted: str) -> Any:
    value: Any = payload
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def venue_frames(ref: Reference) -> list[dict[str, Any]]:
    frames = [rec.payload for name in ref.files for rec in read_file(CORPUS_DIR / name)]
    chosen = [f for f in frames if all(_field(f, k) == v for k, v in ref.match.items())]
    assert chosen, f"no corpus frame in {ref.files} matches {ref.match}"
    return chosen


def venue_objects(kind: str) -> list[Any]:
    """The newest captured values of a market map (`orders`: lists of orders, `positions`: positions, ...)."""
    files = OBJECT_REFERENCES.get(kind, ())
    maps = [rec.payload.get(kind) for name in files for rec in read_file(CORPUS_DIR / name)]
    values = [v for m in maps if isinstance(m, dict) for v in m.values()]
    lists = [m for m in maps if isinstance(m, list)]  # the trade channel sends a plain list of trades
    return values + lists


# --- the simulator, driven once -----------------------------------------------------------------------------


class Recorder:
    """One raw WebSocket connection; keeps every frame (parsed) for `take`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_json(frame)

    async def take(self, accept: Any) -> dict[str, Any]:
        """The first frame (seen or coming) for which `accept(frame)` is true; it is removed."""
        for index, frame in enumerate(self.frames):
            if accept(frame):
                return self.frames.pop(index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while True:
            frame = json.loads(await self.ws.receive_str(timeout=max(0.01, deadline - loop.time())))
            if accept(frame):
                return frame
            self.frames.append(frame)


def typed(frame_type: str, **fields: Any) -> Any:
    return lambda f: f.get("type") == frame_type and all(f.get(k) == v for k, v in fields.items())


def nested(code: int) -> Any:
    return lambda f: isinstance(f.get("error"), dict) and f["error"].get("code") == code


async def place(client: Any, coid: int, price: int, ask: bool, size: int = LOT, tif: int = POST_ONLY) -> None:
    expiry = {"order_expiry": 0} if tif == IOC else {}  # an IOC order has no expiry
    _, resp, err = await client.create_order(BTC, coid, size, price, ask, LIMIT, tif, **expiry)
    assert err is None and resp.code == 200, (err, resp)


async def drive(sim: SimProcess) -> dict[str, dict[str, Any]]:
    """Every frame kind the sim sends, one example each, plus the second fill of account 101."""
    maker, taker = await sim.signer(101), await sim.signer(102)
    token = sim.auth_token(maker)
    got: dict[str, dict[str, Any]] = {}
    # Before subscribing: a fill (position, statistics) and a resting order (snapshots with content).
    await place(maker, 11000000000001, 949000, ask=False)
    await place(taker, 21000000000001, 949000, ask=True, tif=IOC)
    await place(maker, 11000000000002, 948000, ask=False, size=3 * LOT)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url) as ws:
        rec = Recorder(ws)
        got["connected"] = await rec.take(typed("connected"))
        await rec.send({"type": "subscribe", "channel": "order_book/1"})
        got["subscribed/order_book"] = await rec.take(typed("subscribed/order_book"))
        await rec.send({"type": "subscribe", "channel": "trade/1"})  # public: no token
        got["subscribed/trade"] = await rec.take(typed("subscribed/trade"))
        await rec.send({"type": "subscribe", "channel": "account_all/101"})
        got["subscribed/account_all"] = await rec.take(typed("subscribed/account_all"))
        for channel in ("account_all_orders/101", "account_all_trades/101", "account_all_positions/101",
                        "account_orders/1/101", "account_tx/101"):
            await rec.send({"type": "subscribe", "channel": channel, "auth": token})
            kind = channel.split("/")[0]
            got[f"subscribed/{kind}"] = await rec.take(typed(f"subscribed/{kind}"))

        await place(taker, 21000000000002, 948000, ask=True, size=3 * LOT, tif=IOC)  # fills 101's 3 lots
        for frame_type in ("update/order_book", "update/trade", "update/account_all_orders",
                           "update/account_orders",
                           "update/account_all_trades", "update/account_all_positions"):
            got[frame_type] = await rec.take(typed(frame_type))
        got["update/account_all trades"] = await rec.take(lambda f: f.get("type") == "update/account_all"
                                                          and bool(f.get("trades")))
        got["update/account_all positions"] = await rec.take(lambda f: f.get("type") == "update/account_all"
                                                             and bool(f.get("positions")))

        await place(maker, 11000000000003, 940000, ask=False)  # a transaction of 101's own
        got["update/account_tx"] = await rec.take(typed("update/account_tx"))

        await rec.send({"type": "ping"})
        got["pong"] = await rec.take(typed("pong"))
        got["ping"] = await rec.take(typed("ping"))  # the server's own (ping_interval_s is short here)
        await rec.send({"type": "pong"})
        await rec.send({"type": "subscribe", "channel": "order_book/1"})
        got["error 30003"] = await rec.take(nested(30003))
        await rec.send({"type": "subscribe", "channel": "candles/1"})
        got["error 30005"] = await rec.take(nested(30005))
        await rec.send({"type": "subscribe", "channel": "account_all_orders/102"})
        got["error 20001"] = await rec.take(nested(20001))
        await rec.send({"type": "subscribe", "channel": "account_all_orders/102", "auth": token})
        got["error 20013"] = await rec.take(nested(20013))
        await ws.send_str("not json")
        got["typed error"] = await rec.take(typed("error"))
        await rec.send({"type": "unsubscribe", "channel": "order_book/1"})
        got["unsubscribed"] = await rec.take(typed("unsubscribed"))

        nonce = (await sim.get("/api/v1/nextNonce", {"account_index": 102, "api_key_index": 3}))["nonce"]
        _, tx_info, _, err = taker.sign_create_order(
            BTC, 21000000000003, LOT, 960000, 1, LIMIT, POST_ONLY, nonce=nonce, api_key_index=3
        )
        assert err is None
        await rec.send({"type": "jsonapi/sendtx", "data": {"id": "c1", "tx_type": 14, "tx_info": tx_info}})
        got["jsonapi/sendtx accepted"] = await rec.take(typed("jsonapi/sendtx", code=200))
        await rec.send({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx_info}})  # replayed
        got["jsonapi/sendtx refused"] = await rec.take(lambda f: f.get("type") == "jsonapi/sendtx"
                                                       and f.get("code") != 200)
        for _ in range(250):  # past 200 client messages a minute
            await rec.send({"type": "ping"})
        got["error 30009"] = await rec.take(nested(30009))
        await sim.faults(shutdown={"close_in_ms": 100})
        got["shutdown"] = await rec.take(typed("shutdown"))
    return got


@pytest.fixture(scope="module")
def sim_frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    async def run(workdir: Path) -> dict[str, dict[str, Any]]:
        sim = await launch_sim(workdir, {"websocket": {"ping_interval_s": 0.5, "pong_timeout_s": 30}})
        try:
            return await drive(sim)
        finally:
            await sim.close()

    return asyncio.run(run(tmp_path_factory.mktemp("wire-contract")))


# --- the checks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(REFERENCES))
def test_the_sims_frame_has_the_venues_shape(label: str, sim_frames: dict[str, dict[str, Any]]) -> None:
    ref = REFERENCES[label]
    frame, venue = sim_frames[label], venue_frames(ref)
    problems = shape_problems(frame, venue)
    if ref.channel is not None:
        if not re.fullmatch(ref.channel, str(frame.get("channel"))):
            problems.append(f"$.channel: {frame.get('channel')!r}, the venue's is like {ref.channel!r}")
        if frame.get("type") not in {v.get("type") for v in venue}:
            types = sorted({v["type"] for v in venue})
            problems.append(f"$.type: {frame.get('type')!r}, the venue sends {types}")
    assert not problems, f"{label} (reference: {ref.note}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("label", ["subscribed/account_all_orders", "update/account_all_orders",
                                   "update/account_orders"])
def test_orders_carry_no_side_the_side_is_is_ask(label: str, sim_frames: dict[str, dict[str, Any]]) -> None:
    orders = [o for listed in sim_frames[label]["orders"].values() for o in listed]
    assert orders and all(o["side"] == "" for o in orders), [o["side"] for o in orders]


def test_the_trade_channel_names_both_accounts_and_client_order_indexes(
        sim_frames: dict[str, dict[str, Any]]) -> None:
    """The snapshot carries the fill made before subscribing (the market's latest trade); the update the one
    that followed, each naming both parties as the venue's public trades do."""
    (before,) = sim_frames["subscribed/trade"]["trades"]
    (after,) = sim_frames["update/trade"]["trades"]
    assert (before["bid_account_id"], before["bid_client_id"], before["ask_account_id"],
            before["ask_client_id"], before["is_maker_ask"]) == (
        101, 11000000000001, 102, 21000000000001, False)
    assert (after["bid_account_id"], after["bid_client_id"], after["ask_client_id"], after["size"]) == (
        101, 11000000000002, 21000000000002, "0.00060")


def test_fees_are_the_tiers_rates_in_millionths(sim_frames: dict[str, dict[str, Any]]) -> None:
    """Both accounts are premium: each side's fee field is its configured rate x 1e6, not an amount."""
    rates = PremiumFees()  # the defaults: the fixture's sim configures no fees
    trade = sim_frames["update/account_all_trades"]["trades"]["1"][0]
    expected = {f"{side}_fee": round(getattr(rates, side) * 10**6) for side in ("maker", "taker")}
    assert expected == {"maker_fee": 28, "taker_fee": 196}  # the captured trades' values
    assert {k: trade.get(k) for k in expected} == expected, trade

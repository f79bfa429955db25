"""The pair sections of `hedgectl status`: the exchange (positions, net, resting orders), the last hedges,
the journals and stream health.

Positions and resting orders come from the exchange, never from the journals: the journals say
what this system did, the exchange says what is. When the exchange cannot be read the section says why and
`status` exits 5 after printing everything Redis and the journals know.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hedge_strategy.bus import Bus, HedgeOutcome
from hedge_strategy.config import ROLES
from hedge_strategy.ops.common import format_ms
from hedge_strategy.ops.journals import account_journal_paths, order_counts
from hedge_strategy.ops.status_sections import ROLE_NAMES, StatusContext, StatusSection
from hedge_strategy.ops.venue import (
    Connected,
    connect_accounts,
    describe_error,
    net_by_market,
    order_json,
    position_json,
)

LAST_HEDGES = 5

# ----- exchange: positions, net, resting orders -------------------------------------------------------


async def collect_exchange(ctx: StatusContext) -> dict[str, Any]:
    accounts = {role: {"account_index": ctx.config.accounts[role].account_index} for role in ROLES}
    report: dict[str, Any] = {"reachable": False, "url": ctx.config.exchange.url, "accounts": accounts}
    async with connect_accounts(ctx.config) as connected:
        reader = connected.any()
        if reader is None:
            report["error"] = _no_connection(connected)
            return report
        try:
            for role in ROLES:
                await _read_account(connected, role, accounts[role])
        except Exception as exc:  # the exchange went away mid-read: say so, keep what was read
            report["error"] = describe_error(exc)
            return report
    positions = {role: accounts[role]["positions"] for role in ROLES}
    net = net_by_market(positions)
    tolerance = ctx.config.strategy.flat_tolerance
    report.update(
        reachable=True,
        net={market: str(size) for market, size in sorted(net.items())},
        flat=all(abs(size) <= tolerance for size in net.values()),
        flat_tolerance=str(tolerance),
    )
    return report


async def _read_account(connected: Connected, role: str, into: dict[str, Any]) -> None:
    own = connected.accounts.get(role)
    reader = own or connected.any()
    assert reader is not None
    # Positions are public: any connected account reads them. Resting orders need the account's own key.
    held = await reader.positions_of(into["account_index"])
    ordered = sorted(held.values(), key=lambda p: p.market_id)
    into["positions"] = [position_json(reader, snap) for snap in ordered]
    if own is None:
        into["open_orders"] = None
        into["open_orders_error"] = connected.missing_secret.get(role) or connected.failed.get(role, "")
    else:
        orders = await own.open_orders()
        into["open_orders"] = [order_json(own, o) for o in sorted(orders, key=lambda o: o.client_order_index)]


def _no_connection(connected: Connected) -> str:
    why_not = {**connected.missing_secret, **connected.failed}
    reasons = [f"{role.upper()}: {why}" for role, why in why_not.items()]
    return "no account could connect (" + "; ".join(reasons) + ")"


def render_exchange(data: dict[str, Any]) -> RenderableType:
    if not data["reachable"]:
        return Text(f"exchange {data['url']}: UNREACHABLE or unreadable: {data.get('error', '?')}",
                    style="bold red")
    table = Table()
    for column in ("account", "market", "position", "entry", "uPnL", "resting orders"):
        table.add_column(column)
    for role, acct in data["accounts"].items():
        name = f"{ROLE_NAMES[role]} #{acct['account_index']}"
        orders = _orders_text(acct)
        if not acct["positions"]:
            table.add_row(name, "-", "flat", "", "", orders)
        for i, pos in enumerate(acct["positions"]):
            table.add_row(name if i == 0 else "", pos["market"], pos["size"], pos["avg_entry_price"],
                          pos["unrealized_pnl"], orders if i == 0 else "")
    net = ", ".join(f"{m} {s}" for m, s in data["net"].items()) or "0"
    verdict = Text(f"net A + B: {net}  ({'flat' if data['flat'] else 'NOT FLAT'}, tolerance "
                   f"{data['flat_tolerance']})", style="green" if data["flat"] else "bold red")
    return Group(Text(f"exchange {data['url']} (positions and orders as the exchange reports them)"), table,
                 verdict)


def _orders_text(acct: dict[str, Any]) -> str:
    orders = acct.get("open_orders")
    if orders is None:
        return f"unknown ({acct.get('open_orders_error', '')})"
    if not orders:
        return "none"
    return "; ".join(f"{o['label']} {o['market']} {o['side']} {o['remaining_size']} @ {o['price']}"
                     for o in orders)


# ----- last hedges (outcomes stream) --------------------------------------------------------------------


async def collect_hedges(ctx: StatusContext) -> dict[str, Any]:
    entries = await ctx.bus.redis.xrevrange(ctx.bus.keys.outcomes, count=LAST_HEDGES)
    hedges = []
    for _entry_id, fields in entries:
        raw = fields.get(b"data", fields.get("data"))
        outcome = ctx.bus.parse_outcome(raw, "outcome stream entry") if raw is not None else None
        if outcome is not None:
            hedges.append(hedge_json(outcome))
    total = await ctx.bus.redis.xlen(ctx.bus.keys.outcomes)
    return {"total": int(total), "last": hedges}


def hedge_json(outcome: HedgeOutcome) -> dict[str, Any]:
    done_ms = outcome.filled_ts_ms or outcome.publish_ts_ms
    return {
        "request_ids": list(outcome.request_ids),
        "status": outcome.status,
        "market": outcome.market,
        "side": outcome.side,
        "requested_size": str(outcome.requested_size),
        "filled_size": str(outcome.filled_size),
        "avg_price": None if outcome.avg_price is None else str(outcome.avg_price),
        "attempts": outcome.attempts,
        "reason": outcome.reason,
        "at": format_ms(done_ms),
        # B's measure: the request's publish to the first hedge order sent
        "latency_ms": outcome.latency_ms,
        "received_to_filled_ms": (outcome.filled_ts_ms - outcome.received_ts_ms
                                  if outcome.filled_ts_ms else None),
    }


def render_hedges(data: dict[str, Any]) -> RenderableType:
    if not data["last"]:
        return Text("last hedges: none in the outcomes stream")
    table = Table()
    for column in ("at", "requests", "status", "B side", "filled", "avg price", "tries", "latency",
                   "recv→filled"):
        table.add_column(column)
    for h in data["last"]:
        status = Text(h["status"], style="green" if h["status"] == "filled" else "bold red")
        latency = "-" if h["latency_ms"] is None else f"{h['latency_ms']:.0f} ms"
        total = "-" if h["received_to_filled_ms"] is None else f"{h['received_to_filled_ms']} ms"
        table.add_row(h["at"], ", ".join(h["request_ids"]), status, h["side"],
                      f"{h['filled_size']}/{h['requested_size']}", h["avg_price"] or "-", str(h["attempts"]),
                      latency, total)
        if h["reason"]:
            table.add_row("", Text(f"reason: {h['reason']}", style="red"), "", "", "", "", "", "", "")
    return Group(Text(f"last hedges (of {data['total']} outcomes; latency = request published → hedge sent)"),
                 table)


# ----- journals -------------------------------------------------------------------------------------------


async def collect_journals(ctx: StatusContext) -> dict[str, Any]:
    journals: dict[str, Any] = {}
    for role in ROLES:
        trading, operator = account_journal_paths(ctx.config, ctx.config.accounts[role].account_index)
        journals[role] = {"trading": order_counts(trading), "operator": order_counts(operator)}
    return journals


def render_journals(data: dict[str, Any]) -> RenderableType:
    table = Table()
    for column in ("account", "journal", "orders", "by state", "fills", "last fill"):
        table.add_column(column)
    for role, kinds in data.items():
        for kind, counts in kinds.items():
            if not counts["exists"]:
                table.add_row(ROLE_NAMES[role], kind, "-", "no file yet", "", "")
                continue
            states = ", ".join(f"{s} {n}" for s, n in sorted(counts["orders_by_state"].items()))
            last = format_ms(counts["last_fill_ms"]) if counts["last_fill_ms"] else "-"
            table.add_row(ROLE_NAMES[role], kind, str(counts["orders"]), states or "-", str(counts["fills"]),
                          last)
    return Group(Text("journals (what this system recorded)"), table)


# ----- stream health --------------------------------------------------------------------------------------


async def collect_streams(ctx: StatusContext) -> dict[str, Any]:
    exchange: dict[str, Any] = {}
    for role in ROLES:
        beat = await ctx.bus.heartbeat(role)
        exchange[role] = _stream_health(beat)
    return {"exchange": exchange, "bus": await _bus_health(ctx)}


def _stream_health(beat: dict[str, Any] | None) -> Any:
    """What a process says about its exchange WebSocket in its heartbeat, or "unknown"."""
    if beat is None:
        return "unknown"
    for key in ("stream", "stream_up", "ws", "ws_up"):
        if key in beat:
            return beat[key]
    return "unknown"


async def _bus_health(ctx: StatusContext) -> dict[str, Any]:
    keys = ctx.bus.keys
    redis = ctx.bus.redis
    health: dict[str, Any] = {
        "requests": int(await redis.xlen(keys.requests)),
        "dead_letters": int(await redis.xlen(keys.dead_letters)),
        "pending": await ctx.bus.pending_count(),
        "undelivered": await count_undelivered(ctx.bus),
    }
    return health


async def count_undelivered(bus: Bus) -> int | None:
    """Requests in the stream no consumer of B's group has read yet (None: no group yet)."""
    try:
        groups = await bus.redis.xinfo_groups(bus.keys.requests)
    except ResponseError:  # no stream yet
        return None
    for group in groups:
        name = group.get("name", group.get(b"name"))
        if name in ("hedgers", b"hedgers"):
            lag = group.get("lag", group.get(b"lag"))
            return int(lag) if lag is not None else None
    return None


def render_streams(data: dict[str, Any]) -> RenderableType:
    parts = [f"{role.upper()} exchange stream: {_health_text(value)}"
             for role, value in data["exchange"].items()]
    bus = data["bus"]
    undelivered = "n/a (no consumer group yet)" if bus["undelivered"] is None else str(bus["undelivered"])
    parts.append(f"hedge requests: {bus['requests']} in the stream, {undelivered} not yet read by B, "
                 f"{bus['pending']} read and not yet answered; dead letters: {bus['dead_letters']}")
    return Text("stream health\n  " + "\n  ".join(parts))


def _health_text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return "up" if value else "DOWN"
    return str(value)


def _exchange_failed(data: dict[str, Any]) -> bool:
    return not data["reachable"]


EXCHANGE_SECTION = StatusSection("exchange", collect_exchange, render_exchange, _exchange_failed)
PAIR_SECTIONS: list[StatusSection] = [
    StatusSection("hedges", collect_hedges, render_hedges),
    StatusSection("journals", collect_journals, render_journals),
    StatusSection("streams", collect_streams, render_streams),
]

"""`hedgectl report [--since DURATION|ISO] [--json] [--plot FILE.png]`: what the pair did, from its records.

Sources: the journals of both accounts (fills: volume, fees, realized PnL, cycles; see `report_calc` for
the definitions) and the bus's request and outcome streams (hedge latency by stage, slippage). Works with A
and B stopped. `--since` takes a duration back from now (`90s`, `30m`, `12h`, `7d`) or an ISO time.

Exit 0; 1 when Redis is unreachable (the journal figures are still printed, latency and slippage are not);
2 for a bad `--since`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hedge_strategy.bus import Bus, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.config import ROLES, Config
from hedge_strategy.ops import report_calc as calc
from hedge_strategy.ops.common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    add_config_argument,
    format_ms,
    load_config_or_exit,
    open_bus,
    report_redis_unreachable,
)
from hedge_strategy.ops.journals import account_journal_paths, read_fills

PNL_METHOD = "FIFO per market, gross of fees (net = realized - fees)"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report", help="cycles, volume, fees, realized PnL, hedge latency by stage, slippage",
        description="Report from the journals and the outcome stream. Works whether or not A and B run.",
    )
    add_config_argument(report)
    report.add_argument("--since", help="only what happened since: a duration back from now (30m, 12h, 7d) "
                                        "or an ISO time (2025-01-01T00:00:00+00:00)")
    report.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    report.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="also write cumulative volume and PnL over time and the latency histogram")
    report.set_defaults(handler=cmd_report)


def parse_since(text: str | None, now: int) -> int:
    """`--since` as epoch milliseconds (0 when absent); ValueError when it is neither form."""
    if not text:
        return 0
    match = _DURATION.match(text.strip().lower())
    if match:
        return now - int(float(match.group(1)) * _UNIT_S[match.group(2)] * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration (90s, 30m, 12h, 7d) or an ISO time") \
            from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is local time
    return int(moment.astimezone(UTC).timestamp() * 1000)


def cmd_report(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    try:
        since_ms = parse_since(args.since, now_ms())
    except ValueError as exc:
        print(f"argument error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    messages, redis_error = asyncio.run(read_bus(config))
    if redis_error is not None:
        report_redis_unreachable(config, redis_error)
    report, figures, latencies = build_report(config, since_ms, messages)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        render_report(report)
    if args.plot is not None:
        from hedge_strategy.ops.plot import write_plot  # matplotlib loads only when a plot is asked for

        write_plot(args.plot, figures, latencies)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_FAILURE if redis_error is not None else EXIT_OK


BusMessages = tuple[list[HedgeOutcome], dict[str, HedgeRequest]] | None


async def read_bus(config: Config) -> tuple[BusMessages, BaseException | None]:
    bus = open_bus(config)
    try:
        return (await read_outcomes(bus), await read_requests(bus)), None
    except (RedisError, OSError) as exc:
        return None, exc
    finally:
        await bus.aclose()


async def read_outcomes(bus: Bus) -> list[HedgeOutcome]:
    outcomes = []
    for _entry_id, fields in await bus.redis.xrange(bus.keys.outcomes):
        raw = fields.get(b"data", fields.get("data"))
        outcome = bus.parse_outcome(raw, "outcome stream entry") if raw is not None else None
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


async def read_requests(bus: Bus) -> dict[str, HedgeRequest]:
    """Every request in the stream by id (a republished request keeps its first publication)."""
    requests: dict[str, HedgeRequest] = {}
    for _entry_id, fields in await bus.redis.xrange(bus.keys.requests):
        raw = fields.get(b"data", fields.get("data"))
        try:
            request = HedgeRequest.from_json(raw)
        except ValueError:
            continue  # malformed entries are B's dead letters, not this report's business
        requests.setdefault(request.request_id, request)
    return requests


def build_report(
    config: Config, since_ms: int, messages: BusMessages
) -> tuple[dict[str, Any], dict[str, calc.AccountFigures], dict[str, list[float]]]:
    figures: dict[str, calc.AccountFigures] = {}
    fills_of: dict[str, list[Any]] = {}
    for role in ROLES:
        index = config.accounts[role].account_index
        fills_of[role] = read_fills(account_journal_paths(config, index), since_ms)
        figures[role] = calc.account_figures(role, index, fills_of[role])
    symbols = market_symbols(config, messages)
    report: dict[str, Any] = {
        "pair": config.pair,
        "since_ms": since_ms,
        "since": format_ms(since_ms) if since_ms else "the beginning of the journals",
        "pnl_method": PNL_METHOD,
        "cycles_completed": calc.count_cycles(fills_of["a"]),
        "accounts": {role.upper(): figures[role].to_json(symbols) for role in ROLES},
    }
    realized = sum((f.realized_pnl for f in figures.values()), calc.ZERO)
    fees = sum((f.fees for f in figures.values()), calc.ZERO)
    report["combined"] = {"realized_pnl": str(realized), "fees": str(fees), "net_pnl": str(realized - fees)}
    latencies: dict[str, list[float]] = {stage: [] for stage in calc.STAGES}
    if messages is None:
        report["hedges"] = report["latency_ms"] = report["slippage_bps"] = "unavailable (Redis unreachable)"
        return report, figures, latencies
    outcomes, requests = messages
    latencies = calc.stage_latencies(outcomes, requests, since_ms)
    recent = [o for o in outcomes if (o.filled_ts_ms or o.publish_ts_ms) >= since_ms]
    report["hedges"] = {"outcomes": len(recent), "filled": sum(o.filled for o in recent),
                        "failed": sum(not o.filled for o in recent)}
    report["latency_ms"] = {"from": "A's fill time on the exchange", "method": "linear interpolation",
                            "stages": calc.latency_summary(latencies)}
    report["slippage_bps"] = calc.slippage_summary(calc.hedge_slippage(outcomes, requests, since_ms))
    return report, figures, latencies


def market_symbols(config: Config, messages: BusMessages) -> dict[int, str]:
    """Market id -> symbol, from the hedge requests (which name both) and the simulator's market list."""
    symbols: dict[int, str] = {}
    for market in config.sim.get("markets") or []:
        if isinstance(market, dict) and "market_id" in market and "symbol" in market:
            symbols[int(market["market_id"])] = str(market["symbol"])
    if messages is not None:
        for request in messages[1].values():
            symbols[request.market_id] = request.market
    return symbols


def render_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(Text(f"pair {report['pair']}: report since {report['since']}", style="bold"))
    console.print(f"cycles completed (A open → close): {report['cycles_completed']}")
    table = Table()
    for column in ("account", "fills", "volume (base)", "volume (quote)", "fees", "realized PnL", "net PnL",
                   "open"):
        table.add_column(column)
    for role, acct in report["accounts"].items():
        table.add_row(f"{role} #{acct['account_index']}", str(acct["fills"]), _pairs(acct["volume_base"]),
                      acct["volume_quote"], acct["fees"], acct["realized_pnl"], acct["net_pnl"],
                      _pairs(acct["open_position"]) or "flat")
    c = report["combined"]
    table.add_row("A + B", "", "", "", c["fees"], c["realized_pnl"], c["net_pnl"], "")
    console.print(table)
    console.print(f"PnL: {report['pnl_method']}")
    if isinstance(report["latency_ms"], str):
        console.print(Text(f"hedge latency and slippage: {report['latency_ms']}", style="red"))
        return
    hedges = report["hedges"]
    console.print(f"hedges: {hedges['outcomes']} outcomes, {hedges['filled']} filled, "
                  f"{hedges['failed']} failed")
    latency = Table(title="hedge latency, ms from A's fill on the exchange")
    for column in ("stage", "count", "p50", "p90", "p99"):
        latency.add_column(column)
    for stage, s in report["latency_ms"]["stages"].items():
        latency.add_row(stage, str(s["count"]), *(("-" if s[p] is None else f"{s[p]:.1f}") for p in
                                                    ("p50", "p90", "p99")))
    console.print(latency)
    slip = report["slippage_bps"]
    if slip["count"]:
        console.print(f"slippage of the hedges against A's fill price (positive = cost): {slip['count']} "
                      f"hedges, mean {slip['mean_bps']} bps, worst {slip['max_bps']} bps")
    else:
        console.print("slippage: no filled hedge of A's fills in the period")


def _pairs(values: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items())

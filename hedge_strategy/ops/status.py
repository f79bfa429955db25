"""`hedgectl status [--json] [--redis-only]`: one look at the pair, whether or not A and B are running.

The report is a list of sections, each collecting its part (JSON-ready data) and rendering it for the
terminal: the pause state and the heartbeats (Redis), the positions of A and B, their net and the resting
orders (the exchange), the last hedges with their latency (the outcomes stream), the journal counts, the
stream health, and the processes `start_hedge.sh` started on this machine (`status_sections`,
`status_pair`).

Exit codes: 0, or 5 when the exchange could not be read (everything else is still printed), or 1 when Redis
is unreachable (nothing to show then). `--redis-only` skips the exchange (no secrets needed, exit 0).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.text import Text

from hedge_strategy.bus import Bus, now_ms
from hedge_strategy.ops.common import (
    EXIT_EXCHANGE,
    EXIT_OK,
    add_config_argument,
    load_config_or_exit,
    run_with_bus,
    safe_url,
)
from hedge_strategy.ops.status_pair import EXCHANGE_SECTION, PAIR_SECTIONS
from hedge_strategy.ops.status_sections import REDIS_SECTIONS, StatusContext, StatusSection

PAUSE, HEARTBEATS, PROCESSES = REDIS_SECTIONS


def sections(with_exchange: bool = True) -> list[StatusSection]:
    """The sections of one report, in screen order."""
    exchange = [EXCHANGE_SECTION] if with_exchange else []
    return [PAUSE, HEARTBEATS, *exchange, *PAIR_SECTIONS, PROCESSES]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="pause, heartbeats, positions and orders from the exchange, last hedges, journals",
        description="Show the pair's state on one screen. Works whether or not A and B are running. Exit 5 "
                    "(after printing the rest) when the exchange cannot be read.",
    )
    add_config_argument(status)
    status.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    status.add_argument(
        "--redis-only", action="store_true",
        help="skip the exchange (positions, resting orders): no API secrets needed, no exchange calls",
    )
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    chosen = sections(with_exchange=not args.redis_only)

    async def show(bus: Bus) -> int:
        report = await collect_status(StatusContext(config=config, bus=bus, now_ms=now_ms()), chosen)
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            render_status(report, chosen)
        return EXIT_EXCHANGE if any(s.failed(report[s.name]) for s in chosen) else EXIT_OK

    return run_with_bus(config, show)


async def collect_status(ctx: StatusContext, chosen: list[StatusSection] | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "pair": ctx.config.pair,
        "redis": safe_url(ctx.config.redis.url),
        "time_ms": ctx.now_ms,
    }
    for section in chosen or sections():
        report[section.name] = await section.collect(ctx)
    return report


def render_status(
    report: dict[str, Any], chosen: list[StatusSection] | None = None, console: Console | None = None
) -> None:
    console = console or Console(highlight=False)
    console.print(Text(f"pair {report['pair']}  ·  redis {report['redis']}", style="bold"))
    for section in chosen or sections():
        console.print(section.render(report[section.name]))

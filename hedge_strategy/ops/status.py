"""`hedgectl status [--json] [--redis-only]`: one look at the pair, whether or not A and B are running.

The report is a list of sections, each collecting its part (JSON-ready data) and rendering it for the
terminal: the pause state and the heartbeats (Redis), the positions of A and B, their net and the resting
orders (the exchange), the last hedges with their latency (the outcomes stream), the journal counts, the
stream health, and the processes `start_hedge.sh` started on this machine (`status_sections`,
`status_pair`).

Exit codes: 0, or 5 when the exchange could not be read (everything else is still printed), or 1 when Redis
is unreachable (nothing to show then) or when a section failed for another reason (a corrupt journal, a
value nobody expected): that section shows `{"section_error": ...}` and stderr names it; the others are
still shown. `--redis-only` skips the exchange (no secrets needed, exit 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.text import Text

from hedge_strategy.bus import Bus, now_ms
from hedge_strategy.bus.connect import describe_redis
from hedge_strategy.logs import mask_secrets
from hedge_strategy.ops.common import (
    EXIT_EXCHANGE,
    EXIT_FAILURE,
    EXIT_OK,
    add_config_argument,
    load_config_or_exit,
    run_with_bus,
)
from hedge_strategy.ops.status_pair import EXCHANGE_SECTION, PAIR_SECTIONS
from hedge_strategy.ops.status_sections import REDIS_SECTIONS, StatusContext, StatusSection

PAUSE, HOLD_B, HEARTBEATS, PROCESSES = REDIS_SECTIONS
SECTION_ERROR = "section_error"  # the key a failed section's data holds instead of its fields


def sections(with_exchange: bool = True) -> list[StatusSection]:
    """The sections of one report, in screen order."""
    exchange = [EXCHANGE_SECTION] if with_exchange else []
    return [PAUSE, HOLD_B, HEARTBEATS, *exchange, *PAIR_SECTIONS, PROCESSES]


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
            broken = [s.name for s in chosen if section_error(report[s.name]) is not None]
        else:
            broken = render_status(report, chosen)
        if broken:
            print(f"status: section(s) {', '.join(broken)} could not be shown (said in place); the others "
                  "are complete", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_EXCHANGE if any(s.failed(report[s.name]) for s in chosen) else EXIT_OK

    return run_with_bus(config, show)


async def collect_status(ctx: StatusContext, chosen: list[StatusSection] | None = None) -> dict[str, Any]:
    """Every section's data by name. A section that fails holds `{"section_error": why}` instead; only an
    unreachable Redis (nothing to show at all) is raised."""
    report: dict[str, Any] = {
        "pair": ctx.config.pair,
        "redis": describe_redis(ctx.config.redis),
        "time_ms": ctx.now_ms,
    }
    for section in chosen or sections():
        try:
            report[section.name] = await section.collect(ctx)
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except Exception as exc:  # one section's surprise must not hide the others, nor be blamed on Redis
            why = describe_section_error(exc)
            logger.opt(exception=True).debug("status section {} failed: {}", section.name, why)
            report[section.name] = {SECTION_ERROR: why}
    return report


def render_status(
    report: dict[str, Any], chosen: list[StatusSection] | None = None, console: Console | None = None
) -> list[str]:
    """Print the report; returns the names of the sections that could not be shown (each says why)."""
    # Piped or captured (a script, a log, a test): no wrapping at an assumed width, one line per fact.
    console = console or Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    console.print(Text(f"pair {report['pair']}  ·  redis {report['redis']}", style="bold"))
    broken: list[str] = []
    for section in chosen or sections():
        data = report[section.name]
        why = section_error(data)
        if why is None:
            try:
                console.print(section.render(data))
                continue
            except Exception as exc:
                why = describe_section_error(exc)
        broken.append(section.name)
        console.print(Text(f"{section.name}: could not be shown: {why}", style="bold red"))
    return broken


def section_error(data: Any) -> str | None:
    """Why a section failed, when its collected data says it did."""
    return data.get(SECTION_ERROR) if isinstance(data, dict) else None


def describe_section_error(exc: BaseException) -> str:
    """`Type: message` on one line, through the secret masker (it is printed, not logged)."""
    return mask_secrets(f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": "))

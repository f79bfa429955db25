"""`hedgectl status [--json]`: one look at the pair, whether or not A and B are running.

The report is a list of sections (`SECTIONS`), each collecting its part (JSON-ready data) and rendering it
for the terminal. Today: the pause state, A's and B's heartbeats, and the processes `start_hedge.sh` started
on this machine. More sections (positions from the exchange, resting orders, last hedges, journals, stream
health) slot in by appending a `StatusSection` from their own module.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hedge_strategy.bus import Bus, now_ms
from hedge_strategy.config import ROLES, Config
from hedge_strategy.ops.common import (
    EXIT_OK,
    add_config_argument,
    format_age,
    format_ms,
    load_config_or_exit,
    run_dir,
    run_with_bus,
    safe_url,
)
from hedge_strategy.ops.runfiles import COMPONENTS, component_state

ROLE_NAMES = {"a": "A (maker)", "b": "B (hedger)"}
# What heartbeat bodies always carry; the rest is what the process chose to report.
_HEARTBEAT_BOOKKEEPING = ("role", "ts_ms")


@dataclass(frozen=True)
class StatusContext:
    config: Config
    bus: Bus
    now_ms: int


@dataclass(frozen=True)
class StatusSection:
    name: str  # the key of this section in `status --json`
    collect: Callable[[StatusContext], Awaitable[Any]]
    render: Callable[[Any], RenderableType]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="pause state, heartbeats of A and B, local processes",
        description="Show the pair's state. Works whether or not A and B are running.",
    )
    add_config_argument(status)
    status.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)

    async def show(bus: Bus) -> int:
        report = await collect_status(StatusContext(config=config, bus=bus, now_ms=now_ms()))
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            render_status(report)
        return EXIT_OK

    return run_with_bus(config, show)


async def collect_status(ctx: StatusContext) -> dict[str, Any]:
    report: dict[str, Any] = {
        "pair": ctx.config.pair,
        "redis": safe_url(ctx.config.redis.url),
        "time_ms": ctx.now_ms,
    }
    for section in SECTIONS:
        report[section.name] = await section.collect(ctx)
    return report


def render_status(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(Text(f"pair {report['pair']}  ·  redis {report['redis']}", style="bold"))
    for section in SECTIONS:
        console.print(section.render(report[section.name]))


# ----- pause --------------------------------------------------------------------------------------------


async def collect_pause(ctx: StatusContext) -> dict[str, Any]:
    state = await ctx.bus.get_pause()
    if state is None:
        return {"paused": False}
    return {
        "paused": True,
        "reason": state.reason,
        "by": state.by,
        "since_ms": state.since_ms,
        "since": format_ms(state.since_ms),
        "for_s": max(0.0, (ctx.now_ms - state.since_ms) / 1000) if state.since_ms else None,
    }


def render_pause(pause: dict[str, Any]) -> RenderableType:
    if not pause["paused"]:
        return Text("trading: allowed (not paused)", style="green")
    held = f", for {format_age(pause['for_s'])}" if pause.get("for_s") is not None else ""
    return Text(
        f"trading: PAUSED since {pause['since']}{held} by {pause['by']}: {pause['reason']}\n"
        "  resume with: hedgectl resume",
        style="bold red",
    )


# ----- heartbeats ----------------------------------------------------------------------------------------


async def collect_heartbeats(ctx: StatusContext) -> dict[str, Any]:
    beats: dict[str, Any] = {}
    for role in ROLES:
        body = await ctx.bus.heartbeat(role)
        if body is None:
            beats[role] = {"alive": False}
            continue
        ts_ms = body.get("ts_ms")
        age_s = (ctx.now_ms - ts_ms) / 1000 if isinstance(ts_ms, int) else None
        info = {k: v for k, v in body.items() if k not in _HEARTBEAT_BOOKKEEPING}
        beats[role] = {"alive": True, "ts_ms": ts_ms, "age_s": age_s, "info": info}
    return beats


def render_heartbeats(beats: dict[str, Any]) -> RenderableType:
    table = Table()
    table.add_column("process")
    table.add_column("heartbeat")
    table.add_column("last beat")
    table.add_column("reported")
    for role, beat in beats.items():
        name = ROLE_NAMES.get(role, role)
        if not beat["alive"]:
            # Not necessarily dead: a process that writes no heartbeat (or runs elsewhere) looks the same.
            table.add_row(name, Text("none", style="red"), "expired or never written", "")
            continue
        age = "" if beat["age_s"] is None else f"{format_age(max(0.0, beat['age_s']))} ago"
        info = " ".join(f"{k}={v}" for k, v in beat["info"].items())
        table.add_row(name, Text("live", style="green"), age, info)
    return Group(Text("heartbeats (from Redis)"), table)


# ----- local processes -------------------------------------------------------------------------------------


async def collect_processes(ctx: StatusContext) -> dict[str, Any]:
    directory = run_dir()
    return {
        "run_dir": str(directory),
        **{name: component_state(name, directory).to_json() for name in COMPONENTS},
    }


def render_processes(processes: dict[str, Any]) -> RenderableType:
    # Only what start_hedge.sh started on this machine; A and B may run elsewhere (see the heartbeats).
    table = Table()
    table.add_column("process")
    table.add_column("pid")
    table.add_column("running")
    for name in COMPONENTS:
        state = processes[name]
        if state["pid"] is None:
            table.add_row(name, "-", "no pid file")
        else:
            running = Text("yes", style="green") if state["running"] else Text("no (stale)", style="red")
            table.add_row(name, str(state["pid"]), running)
    return Group(Text(f"local processes (pid files in {processes['run_dir']})"), table)


SECTIONS: list[StatusSection] = [
    StatusSection("pause", collect_pause, render_pause),
    StatusSection("heartbeats", collect_heartbeats, render_heartbeats),
    StatusSection("processes", collect_processes, render_processes),
]

"""The Redis and local sections of `hedgectl status`: pause state, heartbeats, processes on this machine.

A section collects JSON-ready data (`collect(ctx)`) and renders it for the terminal (`render(data)`);
`hedge_strategy.ops.status` lists them. The exchange, hedge, journal and stream sections live in
`status_pair`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hedge_strategy.bus import Bus, PauseState
from hedge_strategy.bus.messages import MAX_TS_MS
from hedge_strategy.config import ROLES, Config
from hedge_strategy.ops.common import format_age, format_ms, run_dir
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
    # True when the collected data means the status is incomplete (exit code 5): the exchange unreachable.
    failed: Callable[[Any], bool] = lambda _data: False


# ----- pause --------------------------------------------------------------------------------------------


async def collect_pause(ctx: StatusContext) -> dict[str, Any]:
    return {"paused": False, **_flag(ctx, await ctx.bus.get_pause(), "paused")}


async def collect_hold(ctx: StatusContext) -> dict[str, Any]:
    """B's hold (`hedgectl clear` holds B while it closes), shown next to the pause."""
    return {"held": False, **_flag(ctx, await ctx.bus.hedger_hold(), "held")}


def _flag(ctx: StatusContext, state: PauseState | None, word: str) -> dict[str, Any]:
    if state is None:
        return {}
    return {
        word: True,
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


def render_hold(hold: dict[str, Any]) -> RenderableType:
    if not hold["held"]:
        return Text("B: not held (reads hedge requests)", style="green")
    age = f", for {format_age(hold['for_s'])}" if hold.get("for_s") is not None else ""
    return Text(f"B: HELD since {hold['since']}{age} by {hold['by']}: {hold['reason']} (no hedges until "
                "released)", style="bold red")


# ----- heartbeats ----------------------------------------------------------------------------------------


async def collect_heartbeats(ctx: StatusContext) -> dict[str, Any]:
    beats: dict[str, Any] = {}
    for role in ROLES:
        body = await ctx.bus.heartbeat(role)
        if body is None:
            beats[role] = {"alive": False}
            continue
        ts_ms = body.get("ts_ms")
        # A heartbeat body is free-form JSON: only a plausible time gives an age (10**400 would overflow).
        plausible = isinstance(ts_ms, int) and not isinstance(ts_ms, bool) and 0 < ts_ms <= MAX_TS_MS
        age_s = (ctx.now_ms - ts_ms) / 1000 if plausible else None
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
        age = "?" if beat["age_s"] is None else f"{format_age(max(0.0, beat['age_s']))} ago"
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


REDIS_SECTIONS: list[StatusSection] = [
    StatusSection("pause", collect_pause, render_pause),
    StatusSection("hold_b", collect_hold, render_hold),
    StatusSection("heartbeats", collect_heartbeats, render_heartbeats),
    StatusSection("processes", collect_processes, render_processes),
]

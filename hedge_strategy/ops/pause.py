"""`hedgectl pause [--reason TEXT]` and `hedgectl resume`: set and clear the pair's pause state in Redis.

The pause lives in Redis (`hedge:{pair}:pause`), so it survives restarts of A and B and works whether or not
they are running: A checks it at every cycle and places nothing while it is set.
"""

from __future__ import annotations

import argparse

from hedge_strategy.bus import Bus, PauseState
from hedge_strategy.ops.common import (
    EXIT_CONFIG,
    EXIT_OK,
    add_config_argument,
    format_ms,
    load_config_or_exit,
    run_with_bus,
)

PAUSED_BY = "ctl"
DEFAULT_REASON = "paused by the operator (hedgectl pause)"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pause = commands.add_parser(
        "pause", help="stop A from placing new orders (kept in Redis until resume)",
        description="Pause the pair: A places no new order until `hedgectl resume`. A pending hedge still "
                    "completes. Replaces the reason of an earlier pause.",
    )
    add_config_argument(pause)
    pause.add_argument("--reason", default=DEFAULT_REASON, help="why (shown by status and in A's log)")
    pause.set_defaults(handler=cmd_pause)

    resume = commands.add_parser("resume", help="clear the pause: A trades again at its next cycle")
    add_config_argument(resume)
    resume.set_defaults(handler=cmd_resume)


def describe(state: PauseState) -> str:
    return f"since {format_ms(state.since_ms)} by {state.by}: {state.reason}"


def cmd_pause(args: argparse.Namespace) -> int:
    reason = " ".join(str(args.reason).split())
    if not reason:
        print("argument error: --reason must not be empty")
        return EXIT_CONFIG
    config = load_config_or_exit(args.config)

    async def pause(bus: Bus) -> int:
        previous = await bus.get_pause()
        state = await bus.set_pause(reason, by=PAUSED_BY)
        print(f"pair {config.pair} paused {describe(state)}")
        if previous is not None:
            print(f"  (replaces the earlier pause {describe(previous)})")
        print("  A places no new order until `hedgectl resume`; a hedge in progress still completes")
        return EXIT_OK

    return run_with_bus(config, pause)


def cmd_resume(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)

    async def resume(bus: Bus) -> int:
        cleared = await bus.clear_pause()
        if cleared is None:
            print(f"pair {config.pair} was not paused; nothing to do")
        else:
            print(f"pair {config.pair} resumed (was paused {describe(cleared)})")
            print("  A trades again at its next cycle, once A + B is flat and B's heartbeat is present")
        return EXIT_OK

    return run_with_bus(config, resume)

"""Bounded waits for `start_hedge.sh`: `hedgectl wait-redis` and `hedgectl wait-heartbeat ROLE`.

Each checks about every 0.2 s until its condition holds (exit 0), the timeout passes (exit 3), or the process
named by `--pid` exits first (exit 4: no point waiting 60 s for a process that died in its first second).
Bounded polling is fine here: a one-shot CLI, not the trading path.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from hedge_strategy.bus import Bus
from hedge_strategy.bus.connect import describe_redis, open_redis
from hedge_strategy.config import ROLES
from hedge_strategy.ops.common import (
    EXIT_OK,
    EXIT_PROCESS_EXITED,
    EXIT_TIMEOUT,
    REDIS_CONNECT_TIMEOUT_S,
    add_config_argument,
    format_age,
    load_config_or_exit,
    run_with_bus,
)
from hedge_strategy.ops.runfiles import process_matches

CHECK_INTERVAL_S = 0.2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    redis_wait = commands.add_parser(
        "wait-redis", help="wait until the configured Redis answers PING (exit 3 on timeout)",
    )
    add_config_argument(redis_wait)
    _add_wait_arguments(redis_wait, default_timeout=10.0)
    redis_wait.set_defaults(handler=cmd_wait_redis)

    beat_wait = commands.add_parser(
        "wait-heartbeat", help="wait until A's or B's heartbeat is present (exit 3 on timeout)",
    )
    add_config_argument(beat_wait)
    beat_wait.add_argument("role", choices=ROLES, help="whose heartbeat")
    _add_wait_arguments(beat_wait, default_timeout=60.0)
    beat_wait.add_argument(
        "--since-ms", type=int, default=0,
        help="only a heartbeat written at or after this epoch time (ms) counts: a process just started "
             "must not be taken for alive on the strength of its killed predecessor's beat",
    )
    beat_wait.set_defaults(handler=cmd_wait_heartbeat)


def _add_wait_arguments(parser: argparse.ArgumentParser, default_timeout: float) -> None:
    parser.add_argument(
        "--timeout", type=float, default=default_timeout,
        help="seconds to wait; 0 checks once (default: %(default)s)",
    )
    parser.add_argument(
        "--pid", type=int,
        help="stop waiting (exit 4) when this process exits; a heartbeat naming another pid does not count",
    )


def cmd_wait_redis(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    where = describe_redis(config.redis)

    async def wait() -> int:
        # Direct or through Sentinel, as the bots connect; no retries: each check is one PING.
        connection = open_redis(config.redis, socket_timeout_s=2.0, connect_timeout_s=REDIS_CONNECT_TIMEOUT_S,
                                retries=0)
        client = connection.client
        last_error = ""

        async def answers() -> bool:
            nonlocal last_error
            try:
                return bool(await client.ping())
            except (RedisError, OSError) as exc:  # not listening yet, or refusing us (auth, loading)
                last_error = " ".join(str(exc).split())
                return False

        try:
            code = await wait_until(answers, args.timeout, args.pid, f"Redis at {where}")
        finally:
            await connection.aclose()
        if code == EXIT_TIMEOUT and last_error:
            print(f"  last error: {last_error}", file=sys.stderr)
        return code

    return asyncio.run(wait())


def cmd_wait_heartbeat(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    role: str = args.role

    async def wait(bus: Bus) -> int:
        async def beating() -> bool:
            body = await bus.heartbeat(role)
            if body is None:
                return False
            ts_ms = body.get("ts_ms")
            if args.since_ms and not (isinstance(ts_ms, int) and ts_ms >= args.since_ms):
                return False
            # A heartbeat that reports its pid must come from the process we watch, not a predecessor.
            reported = body.get("pid")
            return args.pid is None or not isinstance(reported, int) or reported == args.pid

        return await wait_until(beating, args.timeout, args.pid, f"{role.upper()}'s heartbeat")

    return run_with_bus(config, wait)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout_s: float, pid: int | None, what: str
) -> int:
    """Check `condition` every CHECK_INTERVAL_S until it holds, `timeout_s` passes, or `pid` exits."""
    started = time.monotonic()
    deadline = started + max(0.0, timeout_s)
    while True:
        if await condition():
            print(f"{what}: present after {format_age(time.monotonic() - started)}")
            return EXIT_OK
        if pid is not None and not process_matches(pid, ""):
            print(f"{what}: process {pid} exited before it was present", file=sys.stderr)
            return EXIT_PROCESS_EXITED
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"{what}: not present after {timeout_s:g} s", file=sys.stderr)
            return EXIT_TIMEOUT
        await asyncio.sleep(min(CHECK_INTERVAL_S, left))

"""What every `hedgectl` subcommand shares: exit codes, config loading, a Redis bus with bounded timeouts.

Exit codes (documented in the README, relied on by `start_hedge.sh`):

| code | meaning |
|---|---|
| 0 | done |
| 1 | Redis unreachable (or another runtime failure the message explains) |
| 2 | bad configuration (the message names the key) or bad arguments |
| 3 | a wait timed out (`wait-heartbeat`, `wait-redis`) |
| 4 | the process a wait was watching (`--pid`) exited first |
| 5 | the exchange could not be reached or read (`status` still prints what Redis knows) |
| 6 | `clear` finished but an account is not flat or still has resting orders (the report says which) |
| 7 | `preflight` found a check that failed or could not run (its FAIL / SKIP lines say what to do) |
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hedge_strategy.bus import Bus
from hedge_strategy.bus.connect import describe_redis, open_redis
from hedge_strategy.bus.connect import safe_url as safe_url
from hedge_strategy.config import Config, ConfigError, load_config
from hedge_strategy.logs import mask_secrets

if TYPE_CHECKING:
    from loguru import Record

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_TIMEOUT = 3
EXIT_PROCESS_EXITED = 4
EXIT_EXCHANGE = 5
EXIT_NOT_FLAT = 6
EXIT_PREFLIGHT = 7

DEFAULT_CONFIG = Path("config.yaml")
# A CLI must answer promptly even when the Redis host swallows packets: bound connect and each reply.
REDIS_CONNECT_TIMEOUT_S = 3.0
REDIS_SOCKET_TIMEOUT_S = 5.0
REDIS_RETRIES = 1


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="config file (default: %(default)s)"
    )


def setup_cli_logging() -> None:
    """Library warnings (for example an unreadable heartbeat value) go to stderr, one short line each.

    Through the bots' masker (`logs.mask_secrets`), tracebacks included: a warning may quote a value read
    from Redis or the exchange, and that value may be a key or an auth token.
    """
    logger.remove()
    logger.configure(patcher=_mask_cli_record)
    logger.add(sys.stderr, level="WARNING", format=_cli_format, colorize=False, backtrace=False,
               diagnose=False)


def _mask_cli_record(record: Record) -> None:
    record["message"] = mask_secrets(record["message"])


def _cli_format(record: Record) -> str:
    exception = record["exception"]
    if exception is None or exception.type is None:
        return "{level}: {message}\n"
    text = "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))
    record["extra"]["masked_exception"] = mask_secrets(text)  # through a field: braces stay literal
    return "{level}: {message}\n{extra[masked_exception]}"


def load_config_or_exit(path: Path) -> Config:
    """The validated config at `path`; on a problem, print it (naming the key) and exit with status 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print("configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def open_bus(config: Config) -> Bus:
    """A bus on its own Redis client (raw bytes, like the bots') with a CLI's short waits; `aclose()` it.

    Direct or through Sentinel, as configured (`bus.connect`); one retry, so an unreachable Redis is reported
    within seconds.
    """
    connection = open_redis(config.redis, socket_timeout_s=REDIS_SOCKET_TIMEOUT_S,
                            connect_timeout_s=REDIS_CONNECT_TIMEOUT_S, retries=REDIS_RETRIES)
    return Bus.on(connection, config.pair)


def run_with_bus(config: Config, action: Callable[[Bus], Awaitable[int]]) -> int:
    """Run `action(bus)` on a fresh event loop; an unreachable Redis becomes exit code 1 with a clear line."""

    async def runner() -> int:
        bus = open_bus(config)
        try:
            return await action(bus)
        finally:
            await bus.aclose()

    try:
        return asyncio.run(runner())
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        report_redis_unreachable(config, exc)
        return EXIT_FAILURE


def report_redis_unreachable(config: Config, exc: BaseException) -> None:
    why = " ".join(str(exc).split()) or type(exc).__name__
    print(
        f"Redis unreachable at {describe_redis(config.redis)} ({why}); "
        "is redis-server running? ./start_hedge.sh starts a local one",
        file=sys.stderr,
    )


def run_dir() -> Path:
    """Where start_hedge.sh keeps its pid files: `$HEDGE_RUN_DIR`, else `run/` in the working directory."""
    return Path(os.environ.get("HEDGE_RUN_DIR") or "run")


UNFORMATTABLE = "?"  # what a formatter shows for a value it cannot render (a stored value can be anything)


def format_ms(ts_ms: int) -> str:
    """An epoch-milliseconds timestamp as local ISO time to the second, e.g. `2025-01-01T12:00:00+01:00`.

    `unknown` for 0 or less, `?` for anything else it cannot render (a year past 9999, not a number).
    """
    try:
        if ts_ms <= 0:
            return "unknown"
        return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone().isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError, TypeError):
        return UNFORMATTABLE


def format_age(seconds: float) -> str:
    """A duration for humans: `4.2 s`, `3 min 5 s`, `2 h 10 min`; `?` for what is not a finite number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return UNFORMATTABLE
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"

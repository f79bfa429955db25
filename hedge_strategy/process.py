"""The life of an A or B process (`main_entry`; tests run roles in-process with `run_role`): arguments,
config, logging, the role's loop until SIGTERM/SIGINT (a second one cancels what is in hand), the exit code:
0 after an orderly stop, 2 for a configuration problem (naming the key), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from hedge_strategy.config import Config, ConfigError, apply_overrides, exit_on_config_error, load_config
from hedge_strategy.config_error import ROLE_NAMES
from hedge_strategy.logs import log_path, setup_logging

# The runtime, the event sinks and the role's code bring the exchange adapter and lighter-sdk (seconds of
# imports): they are imported once the config has passed, so a configuration problem is reported at once.
if TYPE_CHECKING:
    from hedge_strategy.observe import EventSink
    from hedge_strategy.runtime import Runtime

EXIT_OK, EXIT_CRASH = 0, 1  # a configuration problem exits 2 (`exit_on_config_error`)


def parse_args(role: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """`main_A.py --market BTC --quantity 0.0002 --depth 1 --config config.yaml`; B: market, config."""
    parser = argparse.ArgumentParser(
        prog=f"main_{ROLE_NAMES[role]}.py",
        description="Account A: post-only maker" if role == "a" else "Account B: hedger of A's fills",
    )
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="config file (config.yaml)")
    parser.add_argument("--market", help="market symbol (overrides strategy.market)")
    parser.add_argument("--events-file", type=Path,
                        help="append structured events to this file, one JSON object per line (for programs "
                             "that follow the process; the log is unchanged)")
    if role == "a":
        parser.add_argument("--quantity", help="base size of each maker order (overrides strategy.quantity)")
        parser.add_argument("--depth", type=int,
                            help="book level of the maker price (overrides strategy.depth)")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> Config:
    """The validated config with the command-line overrides; exits 2 naming the key when anything is wrong."""
    try:
        config = load_config(args.config)
        quantity: Decimal | str | None = getattr(args, "quantity", None)
        return apply_overrides(config, market=args.market, quantity=quantity,
                               depth=getattr(args, "depth", None))
    except ConfigError as error:
        exit_on_config_error(error)


RoleMain = Callable[["Runtime"], Awaitable[None]]


def load_role_main(name: str) -> RoleMain:
    """`"package.module:function"`, imported."""
    module, _, function = name.partition(":")
    role_main: RoleMain = getattr(importlib.import_module(module), function)
    return role_main


def run_process(role: str, argv: Sequence[str] | None, role_main: RoleMain | str) -> int:
    """The life of a process: args, config (exit 2), logging, the role's loop until a signal, exit code.
    `role_main` may be named ("hedge_strategy.maker:run_maker"): it is imported after the config passed."""
    args = parse_args(role, argv)
    config = load_settings(args)
    from hedge_strategy.observe import open_event_sink

    setup_logging(ROLE_NAMES[role], config.logging)
    logger.info("{} starting (pid {}): config {}, pair {}, market {}, log {}", ROLE_NAMES[role],
                os.getpid(), args.config, config.pair, config.strategy.market, log_path(ROLE_NAMES[role],
                                                                                 config.logging))
    try:
        events = open_event_sink(args.events_file)  # each line is flushed as written: nothing to close
    except OSError as exc:
        exit_on_config_error(ConfigError(f"--events-file: cannot open {args.events_file}: {exc.strerror}"))
    if isinstance(role_main, str):
        role_main = load_role_main(role_main)
    try:
        return asyncio.run(_run(config, role, role_main, events))
    except ConfigError as error:
        logger.error("{} cannot start: {}", ROLE_NAMES[role], error)
        exit_on_config_error(error)
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return EXIT_OK


async def _run(config: Config, role: str, role_main: RoleMain, events: EventSink) -> int:
    stop = asyncio.Event()
    _install_signal_handlers(stop, asyncio.current_task(), ROLE_NAMES[role])
    return await run_role(config, role, role_main, stop, events)


async def run_role(config: Config, role: str, role_main: RoleMain, stop: asyncio.Event,
                   events: EventSink | None = None) -> int:
    """Open the runtime, run the role until `stop` is set, close it; returns the exit code.

    Raises ConfigError when the secret or the market is wrong (the caller exits 2).
    """
    from hedge_strategy.observe import NO_EVENTS
    from hedge_strategy.runtime import open_runtime

    name = ROLE_NAMES[role]
    events = NO_EVENTS if events is None else events
    try:
        runtime = await open_runtime(config, role, events)
    except ConfigError:
        raise
    except Exception as exc:
        logger.opt(exception=exc).error("{} cannot start: {!r}; exiting", name, exc)
        return EXIT_CRASH
    runtime.stop = stop
    code = EXIT_OK
    try:
        await role_main(runtime)
    except asyncio.CancelledError:
        logger.warning("{}: cancelled, stopping without waiting further", name)
    except Exception as exc:
        logger.opt(exception=exc).error("{} crashed: {!r}; closing the journal and exiting", name, exc)
        code = EXIT_CRASH
    finally:
        await asyncio.shield(runtime.close())
    logger.info("{} stopped (exit {})", name, code)
    return code


def _install_signal_handlers(stop: asyncio.Event, main_task: asyncio.Task[Any] | None, name: str) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        label = signal.Signals(signum).name
        if not stop.is_set():
            logger.info("{}: {} received: orderly shutdown (send it again to stop at once)", name, label)
            stop.set()
        elif main_task is not None:
            logger.warning("{}: {} received again: cancelling what is in hand", name, label)
            main_task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def main_entry(role: str, role_main: RoleMain | str) -> None:
    sys.exit(run_process(role, sys.argv[1:], role_main))

"""`hedgectl` (also `python -m hedge_strategy.ctl`): operate a running or stopped A/B pair.

    hedgectl pause [--reason TEXT]        stop A from placing new orders (kept in Redis)
    hedgectl resume                       clear the pause
    hedgectl status [--json] [--redis-only]  heartbeats, pause, positions/orders (exchange), hedges, journals
    hedgectl clear [--retry-wait S]       pause A, cancel everything, close every position (2 rounds), report
    hedgectl report [--since D] [--json] [--plot FILE.png]   volume, fees, PnL, hedge latency, slippage
    hedgectl preflight [--seconds 60] [--record FILE.jsonl]  check venue and accounts before going live
    hedgectl launch-env                   config facts for start_hedge.sh, as KEY=value lines
    hedgectl wait-redis [--timeout S]     wait until Redis answers (start_hedge.sh)
    hedgectl wait-heartbeat a|b [--timeout S] [--pid PID] [--since-ms MS]

Every command takes `--config` (default `config.yaml`). Exit codes: 0 ok, 1 Redis unreachable, 2 bad config
(naming the key) or arguments, 3 a wait timed out, 4 the watched process exited, 5 the exchange unreachable,
6 `clear` left a position or an order, 7 `preflight` found a failing check (see `ops.common`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from hedge_strategy.ops.common import EXIT_CONFIG, setup_cli_logging

# command -> the module under hedge_strategy.ops that registers it. Only the module of the command being run
# is imported: `start_hedge.sh` runs `launch-env`, `wait-redis` and `wait-heartbeat` on every (re)start, and
# importing `status`, `clear` or `preflight` (lighter-sdk, seconds on a busy machine) would delay bringing a
# killed A or B back by that much each time. Help and a mistyped command import them all.
COMMAND_HOMES: dict[str, str] = {
    "status": "status", "pause": "pause", "resume": "pause", "clear": "clear", "report": "report",
    "preflight": "preflight", "launch-env": "launch", "wait-redis": "waits", "wait-heartbeat": "waits",
}
COMMAND_MODULE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(COMMAND_HOMES.values()))


def command_modules(names: Sequence[str] = COMMAND_MODULE_NAMES) -> list[ModuleType]:
    return [importlib.import_module(f"hedge_strategy.ops.{name}") for name in names]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse exits 2 as well; say so in the same words as a config problem does.
        self.print_usage(sys.stderr)
        print(f"argument error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser with every command, or only the one `argv` starts with (hedgectl has no options of its own
    before the command but -h)."""
    named = argv[0] if argv and argv[0] in COMMAND_HOMES else None
    parser = _Parser(
        prog="hedgectl",
        description="Operate the lighter-hedge A/B pair (works whether or not A and B are running).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for module in command_modules((COMMAND_HOMES[named],) if named else COMMAND_MODULE_NAMES):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words).parse_args(words)
    setup_cli_logging()
    try:
        return int(args.handler(args))
    except SystemExit as exc:  # a handler's early exit (bad config: 2) becomes the return value
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

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
from typing import NoReturn

from hedge_strategy.ops.common import EXIT_CONFIG, setup_cli_logging

# Each command and the module (in hedge_strategy.ops) that registers it, in the order `--help` lists them.
# A command line naming a command imports that module alone: start_hedge.sh runs launch-env and the waits
# several times per start, and they need neither the exchange adapter nor lighter-sdk (seconds of imports).
COMMAND_MODULES: dict[str, str] = {
    "status": "status", "pause": "pause", "resume": "pause", "clear": "clear", "report": "report",
    "preflight": "preflight", "launch-env": "launch", "wait-redis": "waits", "wait-heartbeat": "waits",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse exits 2 as well; say so in the same words as a config problem does.
        self.print_usage(sys.stderr)
        print(f"argument error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of `command` alone when it is one of ours, else of every command (help, a typo)."""
    parser = _Parser(
        prog="hedgectl",
        description="Operate the lighter-hedge A/B pair (works whether or not A and B are running).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    for name in dict.fromkeys(wanted):
        importlib.import_module(f"hedge_strategy.ops.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
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

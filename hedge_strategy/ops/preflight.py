"""`hedgectl preflight [--seconds 60] [--record FILE.jsonl] [--accept-warnings]`: check a venue and both
accounts before the first order, read-only (it never signs or sends a transaction: no order, no cancel).

It runs against whatever exchange the config names, mainnet or the simulator, and prints one line per check
(PASS, WARN, FAIL, or SKIP when a check it depends on failed), with what to do for each FAIL and WARN:

    rest, chain id, market, api key A/B, tier A/B, quantity, collateral A/B, leftovers A/B
                                                                        (`preflight_checks`, REST)
    websocket, channels A/B, frames, book continuity, ping/pong, token refresh  (`preflight_stream`, for
    --seconds, every channel the bot uses subscribed at once), rate limits, clock skew (the whole run)

Exit 0 only when every check passes, 7 otherwise (a FAIL, a SKIP, or a WARN), 2 for a bad config or argument.
`--accept-warnings` lets WARN lines pass (exit 0 when nothing fails or is skipped): for an operator who has
read each WARN and accepts it, e.g. no book update during a short watch on a quiet market.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hedge_strategy.config import Config
from hedge_strategy.exchange.preflight_reads import CountingThrottle, Observed, VenueReads
from hedge_strategy.logs import mask_secrets
from hedge_strategy.ops.common import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PREFLIGHT,
    add_config_argument,
    load_config_or_exit,
)
from hedge_strategy.ops.preflight_checks import Check, Venue, Verdict, rest_checks
from hedge_strategy.ops.preflight_record import Recorder
from hedge_strategy.ops.preflight_stream import (
    check_clock_skew,
    check_rate_limits,
    stream_checks,
    watch_channels,
)

DEFAULT_SECONDS = 60.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    preflight = commands.add_parser(
        "preflight", help="check the venue and both accounts before going live (read-only)",
        description="Check the exchange the config names and both accounts, read-only (no order, no cancel): "
                    "one PASS/WARN/FAIL line per check. Exit 0 only when every check passes (WARN too, "
                    "with --accept-warnings), 7 otherwise.",
    )
    add_config_argument(preflight)
    preflight.add_argument("--seconds", type=_positive_seconds, default=DEFAULT_SECONDS,
                           help="how long to watch the bot's WebSocket channels (default: %(default)g)")
    preflight.add_argument("--record", type=Path, metavar="FILE.jsonl",
                           help="write every frame and REST body seen, secrets masked, in the corpus format")
    preflight.add_argument("--accept-warnings", action="store_true",
                           help="exit 0 when checks only WARN (nothing fails or is skipped); without it any "
                                "WARN exits 7")
    preflight.set_defaults(handler=cmd_preflight)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 3600], got {text!r}")
    return value


def cmd_preflight(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    recorder: Recorder | None = None
    if args.record is not None:
        try:
            recorder = Recorder(args.record)
        except OSError as exc:
            print(f"argument error: --record {args.record}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        checks = asyncio.run(run_preflight(config, args.seconds, recorder, _print))
    finally:
        if recorder is not None:
            recorder.close()
    failed = any(c.verdict in (Verdict.FAIL, Verdict.SKIP) for c in checks)
    warned = any(c.verdict is Verdict.WARN for c in checks)
    counts = ", ".join(f"{sum(c.verdict is v for c in checks)} {v.value}" for v in Verdict
                       if any(c.verdict is v for c in checks))
    recorded = f"; {recorder.records} payloads recorded in {recorder.path}" if recorder else ""
    if failed:
        verdict, advice = "FAILED", ""
    elif warned and not args.accept_warnings:
        verdict, advice = "NOT passed (warnings)", "; read each WARN, then run again with --accept-warnings"
    else:
        verdict, advice = "passed" + (", warnings accepted," if warned else ""), ""
    _print(f"preflight {verdict} against {config.exchange.url}: {counts}{recorded}{advice}")
    return EXIT_PREFLIGHT if failed or (warned and not args.accept_warnings) else EXIT_OK


def _print(line: str) -> None:
    print(mask_secrets(line), flush=True)


async def run_preflight(config: Config, seconds: float, recorder: Recorder | None,
                        say: Callable[[str], None]) -> list[Check]:
    """Every check in order, each `say`-ed as soon as it is known; returns them all."""
    checks: list[Check] = []

    def emit(check: Check) -> None:
        checks.append(check)
        say(check.line())

    observe: Callable[[Observed], None] = recorder if recorder is not None else (lambda _observed: None)
    throttle = CountingThrottle(config.exchange.tier)
    reads = VenueReads.open(config.exchange.url, throttle, config.exchange.request_timeout_s, observe)
    venue = Venue(config, reads, throttle)
    if recorder is not None:
        venue.on_key, venue.on_token = recorder.mask_key, recorder.mask_token
    started = time.monotonic()
    try:
        await rest_checks(venue, emit)
        if venue.status is None or not venue.status.ok:
            emit(Check("the rest", Verdict.SKIP, "every other check needs the REST API"))
            return checks
        reports = await watch_channels(venue, seconds, observe, say)
        stream_checks(venue, reports, emit)
        emit(check_rate_limits(venue, reports, time.monotonic() - started))
        emit(check_clock_skew(venue, reports))
    finally:
        await venue.close()
        await reads.close()
    return checks

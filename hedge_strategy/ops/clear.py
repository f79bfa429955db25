"""`hedgectl clear`: close everything on both accounts, with a second round for what failed (a close refused
for a passing cause, a rate limit or a thin book, often goes through a moment later).

    hedgectl clear [--retry-wait 2] [--idle-timeout 30] [--json]

1. pause A and hold B (Redis), so nothing reopens; A stays paused afterwards (resume with `hedgectl resume`);
2. connect A and B (both API secrets needed: environment or secrets file);
3. wait (bounded, `--idle-timeout`) until B's heartbeat says it is held and not busy (or B is not running);
4. cancel every resting order of both (cancel-all, then re-read until none is left);
5. supersede every hedge request still waiting (unread, or read and unanswered): each is answered
   `failed` ("superseded by hedgectl clear (positions closed)") and acknowledged, so B never hedges it
   (`clear_hedger`);
6. read the positions from the exchange (never from a journal: a restart, a manual trade or a liquidation
   makes local records wrong) and close each with reduce-only IOCs that chase the
   price (`closer`); wait `--retry-wait` seconds and run a second round for the failures only (positions
   re-read first: one closed meanwhile counts as closed);
7. re-read both accounts from the exchange; supersede what a fill racing the cancels published meanwhile;
   release B (it has nothing left to reopen); print the report and append it to `<logging.dir>/actions.jsonl`.

Exit 0 only when both accounts are flat with nothing resting; 6 otherwise (the report says what is left);
1 Redis unreachable (nothing done: A could not be paused nor B held); 2 a missing secret or bad config; 5 the
exchange unreachable (a read rate-limited past its retries first starts the clear over, up to 3 times, 5 s
apart). B is released whatever the exit (an interrupted clear leaves no B held forever).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import Bus, PauseState
from hedge_strategy.config import ROLES, Config, ConfigError
from hedge_strategy.exchange import PositionSnapshot, VenueError
from hedge_strategy.ops.clear_hedger import hold_b, release_b, supersede_pending, wait_b_held
from hedge_strategy.ops.clear_report import ClearReport, append_action, render_report, result_entry
from hedge_strategy.ops.closer import CloseResult, OperatorAccount
from hedge_strategy.ops.common import (
    EXIT_CONFIG,
    EXIT_EXCHANGE,
    EXIT_FAILURE,
    EXIT_NOT_FLAT,
    EXIT_OK,
    add_config_argument,
    load_config_or_exit,
    open_bus,
    report_redis_unreachable,
)
from hedge_strategy.ops.venue import describe_error

PAUSED_BY = "ctl"
# A read refused with 429 past its own retries (`exchange.rest.MAX_429_RETRIES`) starts the clear over this
# many times in all, RATE_LIMIT_RERUN_WAIT_S apart: an operator's close-all should outlast a rate limit.
RATE_LIMIT_RERUNS = 4
RATE_LIMIT_RERUN_WAIT_S = 5.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clear = commands.add_parser(
        "clear", help="close every position and cancel every order of A and B (A is left paused)",
        description="Pause A, cancel every resting order of A and B, close every position with reduce-only "
                    "IOC orders (a second round for failures), report, and log to "
                    "<logging.dir>/actions.jsonl. Exit 0 only when both accounts end flat with nothing "
                    "resting.",
    )
    add_config_argument(clear)
    clear.add_argument("--retry-wait", type=float, default=2.0,
                       help="seconds between the first round and the retry of its failures (default: 2)")
    clear.add_argument("--idle-timeout", type=float, default=30.0,
                       help="how long to wait for B to finish the hedges in hand (default: 30)")
    clear.add_argument("--json", action="store_true", help="print the report as one JSON object")
    clear.set_defaults(handler=cmd_clear)


def cmd_clear(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    if args.retry_wait < 0 or args.idle_timeout < 0:
        print("argument error: --retry-wait and --idle-timeout must be >= 0", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(run_clear(config, args.retry_wait, args.idle_timeout, as_json=args.json))


async def run_clear(config: Config, retry_wait_s: float, idle_timeout_s: float, as_json: bool = False) -> int:
    bus = open_bus(config)
    try:
        try:
            previous = await bus.get_pause()
            await bus.set_pause("close-all in progress (hedgectl clear)", by=PAUSED_BY)
            hold = await hold_b(bus)
        except (RedisError, OSError) as exc:
            report_redis_unreachable(config, exc)
            print("nothing done: A cannot be paused nor B held, so they could reopen what clear closes",
                  file=sys.stderr)
            return EXIT_FAILURE
        if previous is not None:
            logger.warning("clear: the pair was already paused by {}: {}", previous.by, previous.reason)
        try:
            accounts = await _connect(config)
            if isinstance(accounts, int):
                return accounts
            try:
                report = await _clear_through_rate_limits(config, bus, accounts, retry_wait_s, idle_timeout_s,
                                                          hold)
            except Exception as exc:  # the exchange (or Redis) failed mid-way: what was done is in the logs
                print(f"clear interrupted: {describe_error(exc)}; A stays paused; run `hedgectl status` to "
                      "see what is left, then clear again", file=sys.stderr)
                return EXIT_EXCHANGE
            finally:
                for account in accounts.values():
                    await account.close()
            report.pause = await _leave_paused(bus, report)
        finally:
            released = await _release(bus)
        report.b_hold = released
    finally:
        await bus.aclose()
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        render_report(report)
    path = append_action(Path(config.logging.dir), report.log_line(config.pair))
    print(f"report appended to {path}", file=sys.stderr)
    return EXIT_OK if report.success else EXIT_NOT_FLAT


async def _clear_through_rate_limits(config: Config, bus: Bus, accounts: dict[str, OperatorAccount],
                                     retry_wait_s: float, idle_timeout_s: float,
                                     hold: PauseState) -> ClearReport:
    """`clear_accounts`, started over when a read was rate-limited past its own retries (a 429 burst outlasts
    a read's ~6 s of backoff): every step re-reads the exchange, so a second pass does only what is left.
    Anything else, or the last pass's rate limit, goes to the caller."""
    for rerun in range(1, RATE_LIMIT_RERUNS + 1):
        try:
            return await clear_accounts(config, bus, accounts, retry_wait_s, idle_timeout_s, hold)
        except VenueError as exc:
            if exc.status != 429 or rerun == RATE_LIMIT_RERUNS:
                raise
            logger.warning("clear: {} (rate limited past its retries); starting over from the exchange's "
                           "state in {:g} s ({} of {})", exc, RATE_LIMIT_RERUN_WAIT_S, rerun,
                           RATE_LIMIT_RERUNS - 1)
            await asyncio.sleep(RATE_LIMIT_RERUN_WAIT_S)  # let the venue's window refill before reading again
    raise AssertionError("unreachable")  # the loop returns or raises


async def _connect(config: Config) -> dict[str, OperatorAccount] | int:
    """Both accounts, or the exit code saying why not (2 a missing secret, 5 the exchange)."""
    accounts: dict[str, OperatorAccount] = {}
    try:
        for role in ROLES:
            accounts[role] = await OperatorAccount.open(config, role)
        return accounts
    except ConfigError as exc:
        print("clear needs the API secrets of both accounts:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        code = EXIT_CONFIG
    except Exception as exc:
        print(f"exchange {config.exchange.url} unreachable or refused: {describe_error(exc)}",
              file=sys.stderr)
        code = EXIT_EXCHANGE
    for account in accounts.values():
        await account.close()
    print("nothing was cancelled or closed; A stays paused (hedgectl resume to undo)", file=sys.stderr)
    return code


async def clear_accounts(config: Config, bus: Bus, accounts: dict[str, OperatorAccount], retry_wait_s: float,
                         idle_timeout_s: float, hold: PauseState) -> ClearReport:
    """Everything after the pause and the hold; the caller releases B."""
    report = ClearReport()
    report.b_idle, b_settled = await wait_b_held(bus, hold, idle_timeout_s)
    for role, account in accounts.items():
        cancel = await account.cancel_everything()
        report.cancels[role.upper()] = {"ok": cancel.ok, "message": cancel.message, "code": cancel.code,
                                        "left": [o.client_order_index for o in cancel.left]}
    # Nothing rests any more, so nothing new can fill: what waits now is all B would ever be asked.
    report.superseded = await supersede_pending(bus, include_in_hand=b_settled)
    targets = [(account, pos) for account in accounts.values() for pos in await account.positions()]
    report.total_positions = len(targets)
    logger.info("clear: {} position(s) to close; first round", len(targets))
    failed: list[tuple[OperatorAccount, PositionSnapshot]] = []
    for account, position in targets:
        result = await account.close_position(position)
        report.results.append(_entry(account, position, result, attempt=1))
        if result.closed:
            report.first_round_closed += 1
        else:
            failed.append((account, position))
    if failed:
        logger.warning("clear: first round done, {} failed; second round in {:g} s", len(failed),
                       retry_wait_s)
        await asyncio.sleep(retry_wait_s)  # a pause between rounds lets a passing cause pass
        await _second_round(report, failed)
    report.final_check = await final_check(config, accounts)
    # A fill that raced the cancels may have been announced by A only now: never for B to hedge either.
    report.superseded += await supersede_pending(bus, include_in_hand=b_settled)
    logger.info("clear: {} waiting hedge request(s) superseded", report.superseded)
    return report


async def _second_round(report: ClearReport, failed: list[tuple[OperatorAccount, PositionSnapshot]]) -> None:
    report.retry_count = len(failed)
    for account, before in failed:
        # The exchange decides what is left, not the first round's result: it may have closed part of it.
        now = {p.market_id: p for p in await account.positions()}.get(before.market_id)
        if now is None:
            result = CloseResult(closed=True, message="flat on the exchange when retried")
            report.results.append(_entry(account, before, result, attempt=2))
        else:
            result = await account.close_position(now)
            report.results.append(_entry(account, now, result, attempt=2))
        report.retry_success += int(result.closed)
    logger.info("clear: second round done: {}/{} closed", report.retry_success, report.retry_count)


def _entry(
    account: OperatorAccount, position: PositionSnapshot, result: CloseResult, attempt: int
) -> dict[str, Any]:
    symbol = account.market(position.market_id).symbol
    return result_entry(account.role, account.account.account_index, symbol, position, result, attempt)


async def final_check(config: Config, accounts: dict[str, OperatorAccount]) -> dict[str, Any]:
    """Both accounts re-read from the exchange: positions left, orders resting, and whether that is flat."""
    try:
        return await _read_final(config, accounts)
    except Exception as exc:
        return {"flat": False, "resting": None, "summary": f"exchange not readable ({describe_error(exc)})"}


async def _read_final(config: Config, accounts: dict[str, OperatorAccount]) -> dict[str, Any]:
    tolerance = config.strategy.flat_tolerance
    positions: dict[str, list[str]] = {}
    orders: dict[str, list[int]] = {}
    for role, account in accounts.items():
        held = await account.positions()
        positions[role.upper()] = [f"{account.market(p.market_id).symbol} {p.size}" for p in held
                                   if abs(p.size) > tolerance]
        orders[role.upper()] = [o.client_order_index for o in await account.open_orders()]
    left = [f"{role} {p}" for role, held in positions.items() for p in held]
    resting = sum(len(o) for o in orders.values())
    summary = "flat, nothing resting" if not left and not resting else (
        f"positions left: {', '.join(left) or 'none'}; resting orders: {resting}")
    return {"flat": not left, "resting": resting, "positions": positions, "orders": orders,
            "summary": summary}


async def _release(bus: Bus) -> str:
    try:
        return await release_b(bus)
    except (RedisError, OSError) as exc:
        logger.error("clear: B's hold could not be released ({}); B reads nothing until `{}` is deleted",
                     describe_error(exc), bus.keys.hold_b)
        return f"B's hold could not be released ({describe_error(exc)}): delete {bus.keys.hold_b}"


async def _leave_paused(bus: Bus, report: ClearReport) -> str:
    reason = f"after hedgectl clear: {report.message()}"
    try:
        await bus.set_pause(reason, by=PAUSED_BY)
    except (RedisError, OSError) as exc:
        return f"A should stay paused but the pause could not be updated ({describe_error(exc)})"
    return "A stays paused; resume with: hedgectl resume"

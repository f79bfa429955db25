"""Chaos rehearsal: a seeded schedule of faults against a running pair, judged by the simulator's records.

    .venv/bin/python bench/chaos.py --minutes 8 --seed 1 [--reuse-venv] [--keep] [--quantity 0.0002]

1. Like `bench/cycles.py`: `git clone` of the committed HEAD into a temp dir, its own `.venv` (or this
   checkout's with `--reuse-venv`), `config.bench.yaml` = the shipped config on free ports, then
   `./start_hedge.sh --market BTC --quantity Q --depth 1` with `HEDGE_RUN_DIR` in the temp dir. Nothing of
   this checkout's `var/`, `logs/` or `run/` is touched.
2. After A's first fill, faults for `--minutes`, one at a time, in rounds of every kind (each round's order
   drawn from `--seed`; see `chaos_faults.py`): kill -9 of A, of B, of both, of B while its hedge order is
   in flight; SIGTERM of A or B; Redis killed (no persistence: it comes back empty) and Redis hung (SIGSTOP
   10 s); WebSocket drop and 25 s silence; a burst of 40 HTTP 429; rejected, unanswered and sequencer-dropped
   sendTx; a reject storm on B that fails a hedge. Each process is brought back as an operator would
   (`./start_hedge.sh`), and a pause is resumed (`hedgectl resume`) after a 3 s look.
   Between faults the harness waits until A + B is flat in the sim (at most 60 s) plus a few seconds.
3. Then it waits for the pair to settle (at most 90 s), stops A and B (`./stop_hedge.sh --keep-infra`), reads
   `GET /sim/state` and judges the run by the simulator's records only (`chaos_ledger.py`): lost fills,
   over-hedges (double), trades between A and B (wash), exposure episodes, cycles. A process ending without
   being killed by the harness is a death (its pid watched every 0.25 s).

"Flat after a fault" is the longest stretch during which A + B stayed away from 0, among the stretches
charged to the fault (those that overlap its active span, from its start until the harness had the pair
back; a stretch overlapping no fault's span is charged to the last fault before it), counted from the
fault's start (or the stretch's start, when later), with the time the pair was paused excluded. Targets
(issue 9): no lost, double or wash trade; flat within 10 s after each fault; every pause cleared by
`hedgectl resume`; no process dying on its own. The exit code is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_faults import FAULTS, Ctx, FaultRun, Operator, Pause, bring_back, schedule
from chaos_ledger import Episode, Ledger, build, signed_position
from chaos_pair import A_ACCOUNT, B_ACCOUNT, MARKET_ID, Pair, Watchdog, now_ms
from hedge_latency import machine, run_in_temp_dir

FLAT_TOLERANCE = Decimal("0.00001")  # strategy.flat_tolerance of the shipped config
FLAT_TARGET_S = 10.0
SETTLE_MAX_S = 60.0
FINAL_SETTLE_S = 90.0
WARM_UP_S = 120.0


@dataclass
class FaultResult:
    run: FaultRun
    window_end_ms: int
    fills: int
    flat_after_s: float | None  # None: no exposure episode charged to this fault
    never_flat: bool
    paused_s: float
    episodes: list[Episode]  # the exposure episodes charged to this fault (`owners`)


# ----- waiting on the sim's positions -----------------------------------------------------------------------


async def net_position(pair: Pair) -> tuple[Decimal, int]:
    """A + B on the market, and A's fill count, from the simulator."""
    state = await pair.sim.state()
    net = signed_position(state, A_ACCOUNT, MARKET_ID) + signed_position(state, B_ACCOUNT, MARKET_ID)
    return net, len(state["accounts"][str(A_ACCOUNT)]["fills"])


async def settle(ctx: Ctx, run: FaultRun | None, min_s: float, max_s: float) -> bool:
    """Wait until A + B is flat, no pause is open and A, B and Redis run (bringing back a dead process),
    for at least `min_s`; False when that did not happen within `max_s`."""
    started = time.monotonic()
    while True:
        net, _ = await net_position(ctx.pair)
        up = all(ctx.pair.pid(n) is not None for n in ("a", "b", "redis"))
        if not up and ctx.operator.current is None and run is not None:
            await bring_back(ctx, run)
        quiet = abs(net) <= FLAT_TOLERANCE and ctx.operator.current is None and up
        elapsed = time.monotonic() - started
        if quiet and elapsed >= min_s:
            return True
        if elapsed >= max_s:
            if run is not None:
                run.notes.append(f"not settled {max_s:g} s after the fault (A + B {net}"
                                 + (", paused" if ctx.operator.current else "") + ")")
            return False
        await asyncio.sleep(1.0)


async def warm_up(ctx: Ctx) -> None:
    deadline = time.monotonic() + WARM_UP_S
    while (await net_position(ctx.pair))[1] == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"A had no fill within {WARM_UP_S:g} s of start_hedge.sh: nothing to rehearse")
        await asyncio.sleep(1.0)
    await settle(ctx, None, 2.0, SETTLE_MAX_S)


# ----- the run ----------------------------------------------------------------------------------------------


async def rehearse(ctx: Ctx, args: argparse.Namespace) -> list[FaultRun]:
    runs: list[FaultRun] = []
    gaps = random.Random(args.seed * 7919 + 1)
    began = time.monotonic()
    for number, kind in enumerate(schedule(args.seed, args.only), 1):
        if time.monotonic() - began >= args.minutes * 60:
            break
        if ctx.watchdog.sim_died():
            raise SystemExit("the simulator died: its records are gone, the run cannot be judged")
        run = FaultRun(number, kind, now_ms())
        print(f"[{time.monotonic() - began:6.1f} s] fault {number}: {kind}", file=sys.stderr)
        try:
            await FAULTS[kind](ctx, run)
        except (aiohttp.ClientError, RuntimeError, TimeoutError, OSError) as exc:
            # The sim's admin routes failing mid-fault: said in the table and the failures, the run goes on.
            run.notes.append(f"HARNESS ERROR: {exc!r}"[:200])
        await bring_back(ctx, run)
        run.end_ms = now_ms()
        print(f"    {run.detail}" + "".join(f"\n    {note}" for note in run.notes), file=sys.stderr)
        runs.append(run)
        await settle(ctx, run, gaps.uniform(3.0, 8.0), SETTLE_MAX_S)
    return runs


async def run(args: argparse.Namespace, workdir: Path) -> int:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pair, head, venv_s = await Pair.prepare(workdir, args.reuse_venv, args.quantity, session)
        print(f"cloned {head} into {pair.root}; virtualenv {venv_s:.0f} s", file=sys.stderr)
        watchdog, operator = Watchdog(pair), Operator(pair)
        ctx = Ctx(pair, watchdog, operator, random.Random(args.seed))
        tasks: list[asyncio.Task[None]] = []
        try:
            code, out, _ = await pair.start()
            print(out.rstrip(), file=sys.stderr)
            if code != 0:
                raise SystemExit(f"start_hedge.sh exited {code}")
            tasks = [asyncio.create_task(watchdog.run()), asyncio.create_task(operator.run())]
            await warm_up(ctx)
            started_ms = now_ms()
            runs = await rehearse(ctx, args)
            print("faults over: letting the pair settle, then stopping A and B", file=sys.stderr)
            await settle(ctx, runs[-1] if runs else None, 5.0, FINAL_SETTLE_S)
            _, stop_out, _ = await pair.stop("--keep-infra")
            final_ms = now_ms()
            state = await pair.sim.state()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(pair.stop())
            await pair.redis.aclose()
    (workdir / "sim_state.json").write_text(json.dumps(state))
    ledger = build(state, MARKET_ID, A_ACCOUNT, B_ACCOUNT, FLAT_TOLERANCE)
    results = judge(runs, ledger, operator.pauses, final_ms)
    failures = failure_lines(ledger, results, operator, watchdog, started_ms)
    print_report(args, head, results, ledger, started_ms, stop_out, failures)
    print(summary_line(args, results, ledger, operator.pauses, watchdog, failures))
    return 1 if failures else 0


# ----- judging ----------------------------------------------------------------------------------------------


def owners(episode: Episode, runs: list[FaultRun], final_ms: int) -> list[int]:
    """The faults an exposure episode is charged to: those active (from their start until the pair was back)
    while it lasted; else the last fault before it began (a lingering effect); [] before the first fault."""
    end = episode.end_ms if episode.end_ms is not None else final_ms
    active = [i for i, run in enumerate(runs) if episode.start_ms <= run.end_ms and end >= run.start_ms]
    if active:
        return active
    before = [i for i, run in enumerate(runs) if run.start_ms <= episode.start_ms]
    return before[-1:]


def judge(runs: list[FaultRun], ledger: Ledger, pauses: list[Pause], final_ms: int) -> list[FaultResult]:
    paused = [(p.since_ms, p.over_ms or final_ms) for p in pauses]
    charged: dict[int, list[Episode]] = {}
    for episode in ledger.episodes:
        for i in owners(episode, runs, final_ms):
            charged.setdefault(i, []).append(episode)
    results = []
    for i, run in enumerate(runs):
        window_end = runs[i + 1].start_ms if i + 1 < len(runs) else final_ms
        fills = sum(1 for f in ledger.a_fills if run.start_ms <= f.ts_ms < window_end)
        worst: float | None = None
        never = False
        for episode in charged.get(i, []):
            end = episode.end_ms if episode.end_ms is not None else final_ms
            start = max(episode.start_ms, run.start_ms)
            length = (end - start - overlap_ms(start, end, paused)) / 1000
            worst = max(worst or 0.0, length)
            never = never or episode.end_ms is None
        in_pause = sum(overlap_ms(run.start_ms, window_end, [p]) for p in paused) / 1000
        results.append(FaultResult(run, window_end, fills, worst, never, in_pause, charged.get(i, [])))
    return results


def overlap_ms(start: int, end: int, spans: list[tuple[int, int]]) -> int:
    return sum(max(0, min(end, b) - max(start, a)) for a, b in spans)


def failure_lines(ledger: Ledger, results: list[FaultResult], operator: Operator, watchdog: Watchdog,
                  t0_ms: int) -> list[str]:
    def at(ms: int) -> str:
        return f"t+{(ms - t0_ms) / 1000:.1f} s ({_window(results, ms)})"

    lines = [f"LOST: A's fill trade {n.trade_id} at {at(n.ts_ms)}, {n.size} (B to "
             f"{'sell' if n.b_side < 0 else 'buy'}): {n.left} never hedged" for n in ledger.lost]
    lines += [f"DOUBLE: B's trade {o.trade_id} at {at(o.ts_ms)} ({o.label}) traded {o.size} beyond every "
              "open need of A" for o in ledger.over_hedges if o.size > FLAT_TOLERANCE]
    lines += [f"WASH: trade {w.trade_id} at {at(w.ts_ms)}: A and B on both sides, {w.size}"
              for w in ledger.washes]
    lines += [f"DIED: {d.name.upper()} (pid {d.pid}) at {at(d.at_ms)} without being killed"
              + (f"; its output ends: {d.tail[-300:]!r}" if d.tail else "") for d in watchdog.deaths]
    for r in results:
        if r.never_flat or (r.flat_after_s is not None and r.flat_after_s > FLAT_TARGET_S):
            how = "never flat again" if r.never_flat else f"flat again only after {r.flat_after_s:.1f} s"
            lines.append(f"SLOW: fault {r.run.number} {r.run.kind}: {how} (pauses excluded); "
                         + _episode_text(r, t0_ms))
    if operator.gave_up:
        lines.append(f"PAUSE NOT CLEARED by `hedgectl resume` ({operator.repeats} times): {operator.gave_up}")
    if ledger.a_position + ledger.b_position != 0:
        lines.append(f"NOT FLAT at the end: A {ledger.a_position} + B {ledger.b_position}")
    lines += [f"RECORDS: {w}" for w in ledger.warnings]
    lines += [f"NOT BACK: fault {r.run.number} {r.run.kind}: {n}" for r in results for n in r.run.notes
              if n.startswith("STILL MISSING")]
    lines += [f"HARNESS: fault {r.run.number} {r.run.kind}: {n}" for r in results for n in r.run.notes
              if n.startswith("HARNESS ERROR")]
    return lines


def _window(results: list[FaultResult], ms: int) -> str:
    for r in results:
        if r.run.start_ms <= ms < r.window_end_ms:
            return f"fault {r.run.number} {r.run.kind}"
    return "no fault"


def _episode_text(result: FaultResult, t0_ms: int) -> str:
    """The longest exposure episode charged to the fault, in the sim's terms."""
    e = max(result.episodes, key=lambda e: (e.end_ms or 2**62) - e.start_ms)
    return (f"A + B off 0 from t+{(e.start_ms - t0_ms) / 1000:.1f} s (fault at "
            f"t+{(result.run.start_ms - t0_ms) / 1000:.1f} s) to "
            + (f"t+{(e.end_ms - t0_ms) / 1000:.1f} s" if e.end_ms is not None else "the end")
            + f", peak {e.peak}, trades {', '.join(str(t) for t in e.trade_ids[:6])}"
            + (" ..." if len(e.trade_ids) > 6 else ""))


# ----- reporting --------------------------------------------------------------------------------------------


def print_report(args: argparse.Namespace, head: str, results: list[FaultResult], ledger: Ledger,
                 t0_ms: int, stop_out: str, failures: list[str]) -> None:
    print(f"\nchaos rehearsal of {head}, seed {args.seed}, {args.minutes:g} min, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"machine: {machine()}")
    print(f"{'#':>3} {'at s':>7} {'fault':18} {'took s':>6} {'fills':>5} {'flat after s':>12} "
          f"{'paused s':>8}  detail / notes")
    for r in results:
        flat = ("never" if r.never_flat else "-" if r.flat_after_s is None else f"{r.flat_after_s:.1f}")
        took = (r.run.end_ms - r.run.start_ms) / 1000
        print(f"{r.run.number:>3} {(r.run.start_ms - t0_ms) / 1000:>7.1f} {r.run.kind:18} {took:>6.1f} "
              f"{r.fills:>5} {flat:>12} {r.paused_s:>8.1f}  {r.run.detail}"
              + ("" if r.run.injected else " (NOT INJECTED)"))
        for note in r.run.notes:
            print(f"{'':>63}{note}")
    warm = [e for e in ledger.episodes if e.start_ms < t0_ms]
    print(f"before the first fault: {len(warm)} exposure episode(s), longest "
          f"{max(((e.end_ms or e.start_ms) - e.start_ms for e in warm), default=0) / 1000:.1f} s")
    print(f"B's trades by order: {dict(ledger.b_trade_kinds)}; fills repaired by a residual hedge only: "
          f"{len(ledger.repaired)}; final A {ledger.a_position}, B {ledger.b_position}")
    print("stop_hedge.sh --keep-infra said: " + " | ".join(stop_out.strip().splitlines()[:6]))
    for line in failures:
        print(f"FAIL {line}")


def summary_line(args: argparse.Namespace, results: list[FaultResult], ledger: Ledger, pauses: list[Pause],
                 watchdog: Watchdog, failures: list[str]) -> str:
    flats = [r.flat_after_s for r in results if r.flat_after_s is not None]
    p50 = f"{statistics.median(flats):.1f}s" if flats else "-"
    worst = "never" if any(r.never_flat for r in results) else f"{max(flats):.1f}s" if flats else "-"
    doubles = sum(1 for o in ledger.over_hedges if o.size > FLAT_TOLERANCE)
    return (f"chaos seed={args.seed} minutes={args.minutes:g} faults={sum(r.run.injected for r in results)} "
            f"fills={len(ledger.a_fills)} lost={len(ledger.lost)} double={doubles} wash={len(ledger.washes)} "
            f"repaired={len(ledger.repaired)} flat_after_p50={p50} max={worst} (n={len(flats)}) "
            f"pauses={len(pauses)} (resumed {sum(p.resumed_ms is not None for p in pauses)}) "
            f"cycles={ledger.cycles} died={len(watchdog.deaths)} "
            f"result={'FAILED' if failures else 'OK'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=8.0, help="how long faults are injected (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="orders the faults and draws their parameters")
    parser.add_argument("--quantity", default="0.0002", help="A's order size (default 0.0002, one lot)")
    parser.add_argument("--reuse-venv", action="store_true", help="symlink this checkout's .venv")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (clone, logs, sim_state.json)")
    parser.add_argument("--only", type=lambda text: text.split(","), metavar="KIND,KIND",
                        help=f"only these fault kinds (debugging the harness): {', '.join(FAULTS)}")
    args = parser.parse_args()
    if unknown := set(args.only or ()) - set(FAULTS):
        parser.error(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
    code = 0

    async def bench(workdir: Path) -> None:
        nonlocal code
        code = await run(args, workdir)

    run_in_temp_dir(bench, "hedge-chaos-", args.keep, "interrupted: stop_hedge.sh was run")
    sys.exit(code)


if __name__ == "__main__":
    main()

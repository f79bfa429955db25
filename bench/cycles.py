"""Open/close cycles from a fresh clone: what `./start_hedge.sh` achieves on the simulator's default flow.

    .venv/bin/python bench/cycles.py [--watch-s 120] [--reuse-venv] [--keep]

1. `git clone` of this repository (its committed HEAD) into a temp dir: what a user gets.
2. The virtualenv: without `--reuse-venv`, the clone's own `.venv` is created and the pinned dependencies
   installed by `scripts/bootstrap.sh` (the same function `start_hedge.sh` runs first), timed on its own;
   with `--reuse-venv`, the clone's `.venv` is a symlink to this checkout's `.venv`.
3. A config next to the shipped one, differing only in ports (simulator, Redis, metrics): `config.bench.yaml`.
4. `./start_hedge.sh --market BTC --quantity 0.0002 --depth 1 --config config.bench.yaml` with
   `HEDGE_RUN_DIR` in the temp dir, timed.
5. Watches `logs/main_A.log` for `--watch-s` seconds (default 120, from the start of start_hedge.sh):
   an open/close cycle is complete when A, after a close (reduce-only sell) fill, places its next opening buy,
   which A only does once every hedge is confirmed and A + B read flat. At each such quiet point the
   simulator's state gives A's and B's positions. Pauses, residual hedges and imbalance lines are counted.
6. `./stop_hedge.sh`, timed; then prints cycles completed, the time of each, positions at each quiet point,
   pauses, and the total. Everything is stopped and the temp dir removed on exit, Ctrl-C included.

The log file is read by polling its end every 0.1 s (another process writes it; nothing to wait on).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hedge_latency import REPO_ROOT, free_port, machine, run_in_temp_dir

MARKET_ID = 1  # BTC in the shipped config
TAIL_POLL_S = 0.1
LINE_RE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \| \S+\s*\| A \| \S+ - (?P<msg>.*)$")
PLACED_RE = re.compile(r"^A placed post-only (?P<side>buy|sell) ")
FILL_RE = re.compile(r"^A fill \S+ @ \S+ \(trade \d+")
ANOMALY_RE = re.compile(r"PAUSED|residual hedge request|not flat|looked off")


@dataclass
class QuietPoint:
    at: float  # epoch seconds of A's placement line
    a: Decimal
    b: Decimal
    a_open_orders: int  # A's new opening order normally rests already (its placement line is the marker)


@dataclass
class Watch:
    """What A's log said, folded into cycles."""

    cycle_started: float | None = None  # the opening buy of the current cycle was placed
    closing: bool = False  # a sell (close) fill was seen since the last opening buy
    cycles: list[tuple[float, float]] = field(default_factory=list)  # (start, end) epoch seconds
    quiet: list[QuietPoint] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    fills: int = 0
    placements: int = 0


def clone(workdir: Path) -> tuple[Path, str]:
    target = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(target)], check=True)
    head = subprocess.run(["git", "-C", str(target), "log", "-1", "--format=%h %s"], check=True,
                          capture_output=True, text=True).stdout.strip()
    return target, head


def prepare_venv(root: Path, reuse: bool) -> float:
    """The clone's virtualenv; returns the seconds it took (0 when reused)."""
    if reuse:
        (root / ".venv").symlink_to(REPO_ROOT / ".venv")
        return 0.0
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", "source scripts/bootstrap.sh && bootstrap_venv"], cwd=root,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"creating the virtualenv failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


def write_bench_config(root: Path) -> tuple[Path, dict[str, int]]:
    """`config.bench.yaml`: the shipped config with free ports; checked to differ in nothing else."""
    shipped = (root / "config.yaml").read_text()
    ports = {"sim": free_port(), "redis": free_port(), "metrics_a": free_port(), "metrics_b": free_port()}
    text = shipped.replace("127.0.0.1:8765", f"127.0.0.1:{ports['sim']}")
    text = text.replace("127.0.0.1:6379", f"127.0.0.1:{ports['redis']}")
    text = re.sub(r"(?m)^(  port: )8765\b", rf"\g<1>{ports['sim']}", text)
    text = re.sub(r"(?m)^(  port_a: )9101\b", rf"\g<1>{ports['metrics_a']}", text)
    text = re.sub(r"(?m)^(  port_b: )9102\b", rf"\g<1>{ports['metrics_b']}", text)
    before, after = yaml.safe_load(shipped), yaml.safe_load(text)
    changed = sorted(_differences(before, after))
    expected = ["exchange.url", "exchange.ws_url", "metrics.port_a", "metrics.port_b", "redis.url",
                "sim.port"]
    if changed != expected:
        raise SystemExit(f"config.bench.yaml differs from config.yaml in {changed}, expected {expected}: "
                         "has the shipped config changed shape?")
    path = root / "config.bench.yaml"
    path.write_text(text)
    return path, ports


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


async def run_script(root: Path, env: dict[str, str], *argv: str) -> tuple[int, str, float]:
    """A repository script in its own session (a terminal's Ctrl-C stays with this bench)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=root, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode(errors="replace"), time.monotonic() - started


async def positions(session: aiohttp.ClientSession, sim_url: str) -> tuple[Decimal, Decimal, int]:
    """A's and B's signed BTC positions and A's open order count, from the simulator."""
    async with session.get(f"{sim_url}/sim/state") as resp:
        state = await resp.json(content_type=None)

    def signed(account: str) -> Decimal:
        pos = state["accounts"][account]["positions"].get(str(MARKET_ID))
        return Decimal(pos["position"]) * int(pos["sign"]) if pos else Decimal(0)

    a_orders = state["accounts"]["101"]["open_orders"].get(str(MARKET_ID), [])
    return signed("101"), signed("102"), len(a_orders)


async def on_line(line: str, watch: Watch, session: aiohttp.ClientSession, sim_url: str) -> None:
    match = LINE_RE.match(line)
    if match is None:
        return
    message = match["msg"]
    at = datetime.strptime(match["ts"], "%Y-%m-%d %H:%M:%S.%f").timestamp()
    if ANOMALY_RE.search(message):
        watch.anomalies.append(line)
    if FILL_RE.match(message) is not None:
        watch.fills += 1
        if watch.cycle_started is not None and _is_sell_fill(message):
            watch.closing = True
        return
    placed = PLACED_RE.match(message)
    if placed is None:
        return
    watch.placements += 1
    if placed["side"] != "buy":
        return
    if watch.closing and watch.cycle_started is not None:
        a, b, orders = await positions(session, sim_url)
        watch.quiet.append(QuietPoint(at, a, b, orders))
        watch.cycles.append((watch.cycle_started, at))
        print(f"  cycle {len(watch.cycles)} done in {at - watch.cycle_started:.1f} s; quiet point: "
              f"A {a} B {b}", file=sys.stderr)
        watch.cycle_started, watch.closing = at, False
    elif watch.cycle_started is None:
        # The first opening buy. A buy re-placed within a cycle (cancelled and replaced, or crossed) does
        # not move the cycle's start.
        watch.cycle_started = at


def _is_sell_fill(message: str) -> bool:
    # A's fill line names the hedge side B takes: "(B to buy ...)" means A sold, i.e. a close.
    return "(B to buy " in message


async def watch_log(log: Path, until: float, watch: Watch, sim_url: str) -> None:
    """Fold A's log lines into `watch` until the monotonic deadline `until`."""
    offset, partial = 0, ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < until:
            chunk = await asyncio.to_thread(_read_from, log, offset)
            offset += len(chunk)
            text = partial + chunk.decode(errors="replace")
            *lines, partial = text.split("\n")
            for line in lines:
                await on_line(line, watch, session, sim_url)
            await asyncio.sleep(TAIL_POLL_S)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def report(watch: Watch, timings: dict[str, float], head: str, watch_s: float, stop_out: str) -> None:
    print(f"\ncycles from a fresh clone ({head}), {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"machine: {machine()}")
    for name, seconds in timings.items():
        print(f"  {name:38} {seconds:7.1f} s")
    print(f"cycles completed within {watch_s:g} s of start_hedge.sh: {len(watch.cycles)} "
          f"(A fills {watch.fills}, maker placements {watch.placements})")
    for number, ((start, end), quiet) in enumerate(zip(watch.cycles, watch.quiet, strict=True), 1):
        flat = "flat" if quiet.a == 0 and quiet.b == 0 else "NOT FLAT"
        print(f"  cycle {number}: {end - start:6.1f} s  (ended {datetime.fromtimestamp(end):%H:%M:%S.%f}"[:-3]
              + f")  quiet point: A {quiet.a}, B {quiet.b}, A+B {quiet.a + quiet.b}: {flat}"
              + (f" (A's new order already filled: {quiet.a_open_orders} resting)"
                 if quiet.a and not quiet.a_open_orders else ""))
    pauses = [a for a in watch.anomalies if "PAUSED" in a]
    print(f"pauses: {len(pauses)}; other imbalance/residual lines: {len(watch.anomalies) - len(pauses)}")
    for line in watch.anomalies[:10]:
        print(f"  {line}")
    met = len(watch.cycles) >= 5 and not watch.anomalies and all(q.a == 0 == q.b for q in watch.quiet)
    print(f"target >= 5 cycles in 2 min, flat at every quiet point, no pause: {'MET' if met else 'MISSED'}")
    print("stop_hedge.sh said:\n" + "\n".join(f"  {line}" for line in stop_out.strip().splitlines()))


async def run(args: argparse.Namespace, workdir: Path) -> None:
    root, head = await asyncio.to_thread(clone, workdir)
    print(f"cloned {head} into {root}", file=sys.stderr)
    timings: dict[str, float] = {}
    print("virtualenv: " + ("reusing this checkout's" if args.reuse_venv else "creating it (pip install)"),
          file=sys.stderr)
    timings["virtualenv (bootstrap_venv)"] = await asyncio.to_thread(prepare_venv, root, args.reuse_venv)
    config, ports = await asyncio.to_thread(write_bench_config, root)
    sim_url = f"http://127.0.0.1:{ports['sim']}"
    env = {**os.environ, "HEDGE_RUN_DIR": str(workdir / "run"), "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    watch, stop_out, started = Watch(), "", False
    try:
        begin = time.monotonic()
        log_task = asyncio.create_task(watch_log(root / "logs" / "main_A.log", begin + args.watch_s, watch,
                                                 sim_url))
        started = True
        code, out, took = await run_script(root, env, "./start_hedge.sh", "--market", "BTC", "--quantity",
                                           "0.0002", "--depth", "1", "--config", str(config))
        timings["start_hedge.sh"] = took
        print(out.rstrip(), file=sys.stderr)
        if code != 0:
            log_task.cancel()
            raise SystemExit(f"start_hedge.sh exited {code}")
        await log_task
        timings["watched (from start_hedge.sh)"] = time.monotonic() - begin
    finally:
        if started:
            code, stop_out, took = await asyncio.shield(run_script(root, env, "./stop_hedge.sh"))
            timings["stop_hedge.sh"] = took
            print(f"stop_hedge.sh exited {code}", file=sys.stderr)
    report(watch, timings, head, args.watch_s, stop_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watch-s", type=float, default=120.0, help="how long to watch (default 120 s)")
    parser.add_argument("--reuse-venv", action="store_true", help="symlink this checkout's .venv")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (clone, logs, run files)")
    args = parser.parse_args()
    run_in_temp_dir(lambda workdir: run(args, workdir), "hedge-cycles-", args.keep,
                    "interrupted: stop_hedge.sh was run")

if __name__ == "__main__":
    main()

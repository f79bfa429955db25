"""The pair under rehearsal, driven the way an operator drives it: `./start_hedge.sh` / `./stop_hedge.sh` in a
temp clone (its own ports, run dir, logs, journals and Redis), signals by pid file, `hedgectl resume`, and the
simulator's admin routes. Also the watchdog that notices a process dying without being killed by the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cycles import clone, prepare_venv, run_script, write_bench_config
from hedge_latency import Sim

A_ACCOUNT, B_ACCOUNT, MARKET_ID = 101, 102, 1  # the shipped config's accounts, BTC
COMPONENTS = {"a": "main_A.py", "b": "main_B.py", "sim": "lighter_sim", "redis": "redis-server"}
WATCH_EVERY_S = 0.25


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SimAdmin(Sim):
    """The simulator's admin routes (`/sim/...`): never rate-limited, reading them costs A and B nothing."""

    async def set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/sim/faults", body)

    async def clear_faults(self) -> None:
        await self.call("DELETE", "/sim/faults")

    async def faults(self) -> dict[str, Any]:
        return (await self.call("GET", "/sim/faults"))["faults"]

    async def state(self) -> dict[str, Any]:
        return await self.call("GET", "/sim/state")

    async def txlog(self, account: int, since_us: int) -> list[dict[str, Any]]:
        body = await self.call("GET", f"/sim/txlog?account_index={account}&since_us={since_us}")
        return list(body["tx_log"].get(str(account), []))


@dataclass
class Death:
    name: str
    pid: int
    at_ms: int
    tail: str  # the end of its .out file (what bypassed its log: a traceback's body)


@dataclass
class Pair:
    root: Path
    config: Path
    env: dict[str, str]
    run_dir: Path
    log_dir: Path
    sim: SimAdmin
    redis: aioredis.Redis
    pause_key: str
    quantity: str
    retry_times: int
    expected_exits: set[int] = field(default_factory=set)

    @classmethod
    async def prepare(cls, workdir: Path, reuse_venv: bool, quantity: str,
                      session: aiohttp.ClientSession) -> tuple[Pair, str, float]:
        """Clone, virtualenv, config with free ports. Returns (pair, the clone's HEAD, venv seconds)."""
        root, head = await asyncio.to_thread(clone, workdir)
        venv_s = await asyncio.to_thread(prepare_venv, root, reuse_venv)
        config, ports = await asyncio.to_thread(write_bench_config, root)
        shipped = yaml.safe_load(config.read_text())
        env = {**os.environ, "HEDGE_RUN_DIR": str(workdir / "run"), "NO_PROXY": "127.0.0.1,localhost",
               "no_proxy": "127.0.0.1,localhost"}
        redis_client = aioredis.Redis.from_url(f"redis://127.0.0.1:{ports['redis']}/0", socket_timeout=1.0,
                                               socket_connect_timeout=1.0, decode_responses=True)
        pair = cls(root, config, env, workdir / "run", root / shipped["logging"]["dir"],
                   SimAdmin(f"http://127.0.0.1:{ports['sim']}", session), redis_client,
                   f"hedge:{shipped['pair']}:pause", quantity, int(shipped["strategy"]["retry_times"]))
        return pair, head, venv_s

    # ----- the operator's scripts -------------------------------------------------------------------------

    async def start(self, *extra: str) -> tuple[int, str, float]:
        """`./start_hedge.sh` with the run's arguments: starts whatever is missing."""
        return await run_script(self.root, self.env, "./start_hedge.sh", "--market", "BTC", "--quantity",
                                self.quantity, "--depth", "1", "--config", str(self.config), *extra)

    async def stop(self, *extra: str) -> tuple[int, str, float]:
        for name in COMPONENTS:  # everything stopped from here on is stopped on purpose
            if (pid := self.pid(name)) is not None:
                self.expected_exits.add(pid)
        return await run_script(self.root, self.env, "./stop_hedge.sh", *extra)

    async def resume(self) -> tuple[int, str]:
        python = str(self.root / ".venv" / "bin" / "python")
        code, out, _ = await run_script(self.root, self.env, python, "-m", "hedge_strategy.ctl", "resume",
                                        "--config", str(self.config))
        return code, out.strip()

    # ----- processes ----------------------------------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        try:
            text = (self.run_dir / f"{name}.pid").read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() and alive(int(text), COMPONENTS[name]) else None

    def signal(self, name: str, sig: signal.Signals) -> int | None:
        """Send `sig` to the component; a kill or a stop request is marked as the harness's own doing."""
        pid = self.pid(name)
        if pid is None:
            return None
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.expected_exits.add(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return pid

    async def wait_gone(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while alive(pid, ""):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def redis_answers(self, tries: int = 3) -> bool:
        """Redis answers a PING (a few tries: the first after a hang may meet a connection it dropped)."""
        for _ in range(tries):
            try:
                return bool(await self.redis.ping())
            except Exception:  # down, hung or restarting: all mean "not yet"
                await asyncio.sleep(0.5)
        return False

    async def pause_state(self) -> tuple[str, int] | None:
        """(reason, since ms) of the pair's pause as stored in Redis, None when not paused; raises when Redis
        does not answer."""
        raw = await self.redis.get(self.pause_key)
        if raw is None:
            return None
        try:
            state = json.loads(raw)
            return str(state.get("reason", raw)), int(state.get("since_ms") or now_ms())
        except (ValueError, TypeError, AttributeError):
            return str(raw), now_ms()

    def out_tail(self, name: str, lines: int = 8) -> str:
        path = self.log_dir / f"main_{name.upper()}.out"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def alive(pid: int, marker: str) -> bool:
    """The process exists, is not a zombie, and (when `marker` is given) its command line names it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return marker in cmdline


class Watchdog:
    """Notices A, B, Redis or the simulator ending without the harness having killed or stopped it."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.known: dict[str, int] = {}
        self.deaths: list[Death] = []
        self.changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            for name in COMPONENTS:
                pid = self.pair.pid(name)
                if pid is not None:
                    self.known[name] = pid
            for name, pid in list(self.known.items()):
                if alive(pid, COMPONENTS[name]):
                    continue
                del self.known[name]
                if pid in self.pair.expected_exits:
                    continue
                tail = self.pair.out_tail(name) if name in ("a", "b") else ""
                self.deaths.append(Death(name, pid, now_ms(), tail))
                print(f"  !! {name} (pid {pid}) exited on its own", file=sys.stderr)
                self.changed.set()
            await asyncio.sleep(WATCH_EVERY_S)

    def sim_died(self) -> bool:
        return any(d.name == "sim" for d in self.deaths)

"""start_hedge.sh and stop_hedge.sh, run for real: redis-server, the simulator, main_B.py and main_A.py.

Each test deploys from the shipped config.yaml with its own free ports, log, state and run directories
(`HEDGE_RUN_DIR`), so it never meets a developer's running pair. Teardown runs stop_hedge.sh and then kills
anything still carrying the test's config path or Redis port, so no process outlives a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.fixtures.procs import free_port
from tests.fixtures.sim import TEST_ACCOUNTS, TEST_API_KEY_INDEX, deep_merge, key_pair

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT_TIMEOUT_S = 90


@dataclass
class Deployment:
    workdir: Path
    config: Path
    run_dir: Path
    log_dir: Path
    redis_url: str
    redis_port: int
    sim_port: int
    env: dict[str, str]
    external_redis: bool  # a Redis the test provides: never counted or killed as ours
    seen_pids: set[int] = field(default_factory=set)

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO_ROOT / script), *args], cwd=self.workdir, env={**self.env, **env},
            capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S,
        )

    def start(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("start_hedge.sh", "--config", "config.yaml", *args, **env)

    def stop(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("stop_hedge.sh", *args, **env)

    def pid(self, name: str) -> int | None:
        path = self.run_dir / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text().strip())
        self.seen_pids.add(pid)
        return pid

    def ours(self) -> list[tuple[int, str]]:
        """(pid, command line) of every live process started for this deployment."""
        our_redis = f"127.0.0.1:{self.redis_port}"
        return [
            (pid, cmd) for pid, cmd in live_processes()
            if str(self.config) in cmd
            or (not self.external_redis and "redis-server" in cmd and cmd.rstrip().endswith(our_redis))
        ]

    def copies(self, marker: str) -> list[int]:
        return [pid for pid, cmd in self.ours() if marker in cmd]

    def redis_answers(self) -> bool:
        return redis_answers(self.redis_url)


def live_processes() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if raw and state != "Z":
            found.append((int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace")))
    return found


def alive(pid: int) -> bool:
    return any(p == pid for p, _ in live_processes())


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def deployment_config(workdir: Path, redis_url: str, sim_port: int) -> dict[str, Any]:
    shipped = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    overrides: dict[str, Any] = {
        "pair": f"st{uuid.uuid4().hex[:8]}",
        "exchange": {"url": f"http://127.0.0.1:{sim_port}", "ws_url": f"ws://127.0.0.1:{sim_port}/stream"},
        "secrets_file": str(workdir / "var" / "secrets.json"),
        "redis": {"url": redis_url},
        "journal": {"dir": str(workdir / "var")},
        "logging": {"dir": str(workdir / "logs")},
        "sim": {
            "port": sim_port,
            "state_dir": str(workdir / "var" / "sim"),
            "speed_bumps": {"enabled": False},
            "rate_limits": {"enabled": False},
        },
    }
    if "metrics" in shipped:  # a test must not bind the shipped metrics ports
        overrides["metrics"] = {"enabled": False}
    return deep_merge(shipped, overrides)


def seed_keys(workdir: Path) -> None:
    """What keygen writes, made in-process once per session: spares a test the signer's start-up cost."""
    pairs = {account: key_pair(account) for account in TEST_ACCOUNTS}
    state_dir = workdir / "var" / "sim"
    state_dir.mkdir(parents=True, exist_ok=True)
    public = {str(a): {str(TEST_API_KEY_INDEX): pub} for a, (_, pub) in pairs.items()}
    (state_dir / "api_keys.json").write_text(json.dumps(public))
    secrets = workdir / "var" / "secrets.json"
    secrets.write_text(json.dumps({"keys": {f"{a}:{TEST_API_KEY_INDEX}": p for a, (p, _) in pairs.items()}}))
    secrets.chmod(0o600)


def make_deployment(
    workdir: Path, redis_url: str | None = None, keys: bool = True, **config_overrides: Any
) -> Deployment:
    """A config with free ports under `workdir`; `keys=False` leaves the key pairs to start_hedge.sh."""
    workdir.mkdir(parents=True, exist_ok=True)
    if keys:
        seed_keys(workdir)
    external = redis_url is not None
    redis_url = redis_url or f"redis://127.0.0.1:{free_port()}/0"
    sim_port = free_port()
    config = workdir / "config.yaml"
    data = deep_merge(deployment_config(workdir, redis_url, sim_port), config_overrides)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {
        **os.environ,
        "HEDGE_RUN_DIR": str(workdir / "run"),
        "HEDGE_HEARTBEAT_TIMEOUT_S": "60",
        "HEDGE_STOP_TIMEOUT_S": "20",
        "HEDGE_A_GRACE_S": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env.pop("LIGHTER_API_SECRET_A", None)
    env.pop("LIGHTER_API_SECRET_B", None)
    return Deployment(
        workdir=workdir, config=config, run_dir=workdir / "run", log_dir=workdir / "logs",
        redis_url=redis_url, redis_port=int(redis_url.rsplit(":", 1)[1].split("/")[0]),
        sim_port=sim_port, env=env, external_redis=external,
    )


def clean_up(deployment: Deployment) -> None:
    with contextlib.suppress(Exception):
        deployment.stop()
    leftovers = {pid for pid, _ in deployment.ours()} | {p for p in deployment.seen_pids if alive(p)}
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"processes left behind by the test: {leftovers}"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deployed = make_deployment(tmp_path / "deploy")
    try:
        yield deployed
    finally:
        clean_up(deployed)


def test_infra_start_twice_then_stop(tmp_path: Path) -> None:
    deployment = make_deployment(tmp_path / "deploy", keys=False)
    try:
        check_infra_start_twice_then_stop(deployment)
    finally:
        clean_up(deployment)


def check_infra_start_twice_then_stop(deployment: Deployment) -> None:
    # A pid file left by a crash, pointing at a process that is gone: cleaned, not trusted.
    deployment.run_dir.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    (deployment.run_dir / "sim.pid").write_text(f"{gone.pid}\n")

    first = deployment.start("--infra-only")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"removing stale pid file {deployment.run_dir}/sim.pid" in first.stderr
    assert "redis: starting redis-server" in first.stdout
    assert "generating the API key of account 101" in first.stdout
    redis_pid, sim_pid = deployment.pid("redis"), deployment.pid("sim")
    assert redis_pid and sim_pid and alive(redis_pid) and alive(sim_pid)
    assert deployment.redis_answers()
    assert port_open(deployment.sim_port)
    secrets = deployment.workdir / "var" / "secrets.json"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(secrets.read_text())["keys"]) == {"101:3", "102:3"}
    assert deployment.pid("a") is None and deployment.pid("b") is None

    second = deployment.start("--infra-only")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"redis: already running (pid {redis_pid}" in second.stdout
    assert f"simulator: already running (pid {sim_pid})" in second.stdout
    assert "generating" not in second.stdout  # keys are made once
    assert (deployment.pid("redis"), deployment.pid("sim")) == (redis_pid, sim_pid)
    assert deployment.copies("lighter_sim") == [sim_pid]
    assert deployment.copies("redis-server") == [redis_pid]

    stopped = deployment.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "simulator stopped" in stopped.stdout and "redis-server stopped" in stopped.stdout
    assert not alive(sim_pid) and not alive(redis_pid)
    assert deployment.ours() == []
    assert not (deployment.run_dir / "sim.pid").exists() and not (deployment.run_dir / "redis.pid").exists()
    assert not deployment.redis_answers() and not port_open(deployment.sim_port)

    again = deployment.stop()
    assert again.returncode == 0 and "nothing to stop" in again.stdout


def test_a_running_redis_is_used_and_left_alone(tmp_path: Path, redis_server: str) -> None:
    deployment = make_deployment(tmp_path / "deploy", redis_url=redis_server)
    try:
        started = deployment.start("--infra-only")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "using the Redis already answering" in started.stdout
        assert deployment.pid("redis") is None
        assert deployment.pid("sim") is not None

        stopped = deployment.stop()
        assert stopped.returncode == 0
        assert "redis-server" not in stopped.stdout
        assert redis_answers(redis_server)
    finally:
        clean_up(deployment)


def test_a_failed_step_stops_what_the_run_started(deployment: Deployment) -> None:
    with socket.socket() as squatter:  # something else holds the simulator's port
        squatter.bind(("127.0.0.1", deployment.sim_port))
        squatter.listen()
        result = deployment.start("--infra-only")
    assert result.returncode == 1
    assert f"FAILED: 127.0.0.1:{deployment.sim_port} (sim.port) is taken" in result.stderr
    assert "stopping what this run started: redis" in result.stderr
    assert "redis-server stopped" in result.stdout
    assert deployment.pid("redis") is None
    assert not deployment.redis_answers()
    assert deployment.ours() == []


def test_a_bad_config_exits_2_naming_the_key_and_starts_nothing(deployment: Deployment) -> None:
    data = yaml.safe_load(deployment.config.read_text())
    data["strategy"]["depth"] = 0
    deployment.config.write_text(yaml.safe_dump(data))
    result = deployment.start()
    assert result.returncode == 2
    assert "strategy.depth" in result.stderr
    assert deployment.ours() == []
    assert not deployment.run_dir.exists() or not list(deployment.run_dir.glob("*.pid"))


def test_bad_arguments_exit_2(deployment: Deployment) -> None:
    assert deployment.start("--bogus").returncode == 2
    assert deployment.start("--market").returncode == 2
    assert deployment.stop("--bogus").returncode == 2


def test_stop_escalates_to_sigkill_and_ignores_foreign_pids(deployment: Deployment) -> None:
    deployment.run_dir.mkdir(parents=True)
    # A process that ignores SIGTERM and calls itself main_A.py; and a pid file naming an unrelated process,
    # as after a reboot reused the pid: it must survive.
    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
         "sys.stdin.read()", "main_A.py"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == "ready"
        (deployment.run_dir / "a.pid").write_text(f"{stubborn.pid}\n")
        (deployment.run_dir / "redis.pid").write_text(f"{bystander.pid}\n")
        result = deployment.stop(HEDGE_STOP_TIMEOUT_S="1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "still running after 1 s: SIGKILL" in result.stderr
        assert "A (maker) killed" in result.stdout
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
        assert bystander.poll() is None
        assert "removing stale pid file" in result.stderr
        assert not (deployment.run_dir / "a.pid").exists() and not (deployment.run_dir / "redis.pid").exists()
    finally:
        for process in (stubborn, bystander):
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def status_of(deployment: Deployment) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "hedge_strategy.ctl", "status", "--json", "--config", str(deployment.config)],
        cwd=REPO_ROOT, env=deployment.env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_pair_start_twice_then_stop(deployment: Deployment) -> None:
    started = deployment.start("--market", "BTC", "--quantity", "0.0002", "--depth", "1")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "B: heartbeat seen" in started.stdout
    pids = {name: deployment.pid(name) for name in ("a", "b", "sim", "redis")}
    assert all(pid is not None and alive(pid) for pid in pids.values()), pids
    assert f"logs: {deployment.log_dir}/" in started.stdout and "stop:   ./stop_hedge.sh" in started.stdout

    # B's heartbeat is the one of the B just started, and status sees the four processes.
    report = status_of(deployment)
    beat = report["heartbeats"]["b"]
    assert beat["alive"] is True and beat["info"].get("pid", pids["b"]) == pids["b"]
    assert all(report["processes"][name] == {"pid": pid, "running": True} for name, pid in pids.items())

    again = deployment.start()
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"already running: A pid {pids['a']}, B pid {pids['b']}" in again.stdout
    assert {name: deployment.pid(name) for name in pids} == pids
    for marker, name in (("main_A.py", "a"), ("main_B.py", "b"), ("lighter_sim", "sim")):
        assert deployment.copies(marker) == [pids[name]], marker
    assert deployment.copies("redis-server") == [pids["redis"]]

    stopped = deployment.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    order = [line.split(" (pid")[0] for line in stopped.stdout.splitlines() if "SIGTERM" in line]
    assert order == ["[stop] A (maker)", "[stop] B (hedger)", "[stop] simulator", "[stop] redis-server"]
    assert "SIGKILL" not in stopped.stdout + stopped.stderr  # A and B exit on SIGTERM
    assert deployment.ours() == []
    assert list(deployment.run_dir.glob("*.pid")) == []
    assert (deployment.log_dir / "main_A.log").exists() and (deployment.log_dir / "main_B.log").exists()
    assert (deployment.log_dir / "sim.log").exists() and (deployment.log_dir / "redis.log").exists()


def test_a_failing_a_rolls_back_b_the_simulator_and_redis(deployment: Deployment) -> None:
    # A cannot start with a malformed key; B (its own key from the secrets file) can.
    result = deployment.start(LIGHTER_API_SECRET_A="not-a-key", HEDGE_A_GRACE_S="60")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "B: heartbeat seen" in result.stdout
    assert "FAILED: A exited during start-up" in result.stderr
    assert f"read: {deployment.log_dir}/main_A.log {deployment.log_dir}/main_A.out" in result.stderr
    assert "stopping what this run started: redis sim b a" in result.stderr
    assert deployment.ours() == []
    assert list(deployment.run_dir.glob("*.pid")) == []


def test_a_silent_redis_that_may_not_be_started_is_reported(deployment: Deployment) -> None:
    data = yaml.safe_load(deployment.config.read_text())
    data["redis"]["start_local"] = False
    deployment.config.write_text(yaml.safe_dump(data))
    result = deployment.start()
    assert result.returncode == 1
    assert f"FAILED: Redis at {deployment.redis_url} does not answer and redis.start_local is false" in (
        result.stderr
    )
    assert deployment.ours() == []


def test_bootstrap_says_what_to_install_without_redis_server(tmp_path: Path) -> None:
    # A machine without redis-server where we are not root: no install attempt, the exact command instead.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "id").write_text("#!/bin/sh\necho 1000\n")
    (tools / "id").chmod(0o755)
    for tool in ("dirname",):
        (tools / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    result = subprocess.run(
        ["/bin/bash", "-c", "source scripts/bootstrap.sh && bootstrap_redis_binary"],
        cwd=REPO_ROOT, env={"PATH": str(tools), "HOME": str(tmp_path)}, capture_output=True, text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "redis-server is not installed" in result.stderr
    assert "sudo apt-get install -y redis-server" in result.stderr


def ctl(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hedge_strategy.ctl", *args, "--config", str(deployment.config)],
        cwd=REPO_ROOT, env=deployment.env, capture_output=True, text=True, timeout=60,
    )


def wait_until(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    """Check `condition()` every 0.2 s until it holds; fail after `timeout_s` (a bounded wait on a state)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not seen within {timeout_s} s: {what}"
        time.sleep(0.2)


def test_second_start_brings_back_a_dead_redis_and_a_sets_its_pause_again(deployment: Deployment) -> None:
    started = deployment.start()
    assert started.returncode == 0, started.stdout + started.stderr
    pids = {name: deployment.pid(name) for name in ("a", "b", "sim", "redis")}
    assert ctl(deployment, "pause", "--reason", "kept across a Redis restart").returncode == 0
    a_log = deployment.log_dir / "main_A.log"
    wait_until(lambda: "A paused since" in a_log.read_text(), "A honours the pause")

    os.kill(pids["redis"], signal.SIGKILL)  # a Redis without persistence: the pause is gone with it
    wait_until(lambda: not alive(pids["redis"]), "redis-server gone")
    again = deployment.start()

    assert again.returncode == 0, again.stdout + again.stderr
    assert "redis: starting redis-server" in again.stdout
    assert f"B: already running (pid {pids['b']})" in again.stdout
    assert f"A: already running (pid {pids['a']})" in again.stdout
    assert f"simulator: already running (pid {pids['sim']})" in again.stdout
    assert "brought back: redis" in again.stdout and "nothing started" not in again.stdout
    new_redis = deployment.pid("redis")
    assert new_redis not in (None, pids["redis"]) and alive(new_redis)
    assert all(deployment.pid(name) == pids[name] for name in ("a", "b", "sim"))
    # A noticed the empty Redis and set its pause again from its journal.
    wait_until(lambda: (status_of(deployment)["pause"] or {}).get("reason") == "kept across a Redis restart",
               "the pause back in Redis")
    assert "is set again from A's journal" in a_log.read_text()

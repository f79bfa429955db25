"""start_hedge.sh and stop_hedge.sh, run for real: redis-server, the simulator, main_B.py and main_A.py.

Each test deploys from the shipped config.yaml with its own free ports, log, state and run directories
(`tests/fixtures/deployment.py`), so it never meets a developer's running pair. Teardown runs stop_hedge.sh
and then kills anything still carrying the test's config path or Redis port, so no process outlives a test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures.deployment import (
    A_ACCOUNT,
    B_ACCOUNT,
    REPO_ROOT,
    Deployment,
    SimRecords,
    alive,
    clean_up,
    ctl,
    force_a_fill,
    make_deployment,
    maker_of,
    port_open,
    redis_answers,
    status_of,
    wait_until,
)


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
        # A narrow COLUMNS (exported by some shells, and by pytest-xdist's workers) must not cut the command
        # line ps shows before the marker: the stubborn process would be taken for a stale pid, left running.
        result = deployment.stop(HEDGE_STOP_TIMEOUT_S="1", COLUMNS="40")
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


@pytest.mark.timeout(300)  # three starts of the whole setup: each start imports lighter-sdk twice (B, A)
def test_pair_start_twice_then_stop(tmp_path: Path) -> None:
    """The paper setup started, started again (nothing to do), stopped; then stopped and started twice more,
    with a fill of A in each session: every fill is hedged once, across simulator restarts (whose trade ids
    must not be taken for the previous session's, which the journals in var/ still hold)."""
    # Fills are forced (a taker of the sim's own through A's order), so no random one lands during a stop.
    no_takers = {"sim": {"flow": {"taker_rate_per_s": 0}}}
    deployment = make_deployment(tmp_path / "deploy", **no_takers)
    try:
        pids = check_pair_start_twice(deployment)
        check_every_fill_hedged_once(deployment)
        check_pair_stop(deployment, pids)
        for _ in range(2):
            started = deployment.start()
            assert started.returncode == 0, started.stdout + started.stderr
            check_every_fill_hedged_once(deployment)
            stopped = deployment.stop()
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr
            assert "SIGKILL" not in stopped.stdout + stopped.stderr
        assert deployment.ours() == []
    finally:
        clean_up(deployment)


def check_pair_start_twice(deployment: Deployment) -> dict[str, int | None]:
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
    return pids


def check_pair_stop(deployment: Deployment, pids: dict[str, int | None]) -> None:
    stopped = deployment.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    order = [line.split(" (pid")[0] for line in stopped.stdout.splitlines() if "SIGTERM" in line]
    assert order == ["[stop] A (maker)", "[stop] B (hedger)", "[stop] simulator", "[stop] redis-server"]
    assert "SIGKILL" not in stopped.stdout + stopped.stderr  # A and B exit on SIGTERM
    assert deployment.ours() == [] and not any(alive(pid) for pid in pids.values() if pid)
    assert list(deployment.run_dir.glob("*.pid")) == []
    assert (deployment.log_dir / "main_A.log").exists() and (deployment.log_dir / "main_B.log").exists()
    assert (deployment.log_dir / "sim.log").exists() and (deployment.log_dir / "redis.log").exists()


def check_every_fill_hedged_once(deployment: Deployment) -> None:
    """A fill of A in this simulator session, then, from the simulator's own records: B's fills offset A's
    exactly, with one B order per A fill at most (a double hedge would add volume or orders), A made every
    trade it is in and never traded with B; and A's log shows no residual hedge, which would have mended
    a fill A lost (taken for one of an earlier session) and so hidden it from the records."""
    force_a_fill(deployment)
    wait_until(lambda: SimRecords.read(deployment).hedged(), "B's fills offsetting A's")
    records = SimRecords.read(deployment)
    assert records.a_volume() == -records.b_volume() != 0
    assert 1 <= len(records.b_orders) <= len(records.a_trades), records
    assert all(maker_of(t) == A_ACCOUNT for t in records.a_trades), records.a_trades
    assert all(maker_of(t) != B_ACCOUNT and A_ACCOUNT not in (t["ask_account_id"], t["bid_account_id"])
               for t in records.b_trades), records.b_trades
    assert "residual hedge request" not in (deployment.log_dir / "main_A.log").read_text()


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

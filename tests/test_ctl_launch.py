"""The launcher helpers of `hedgectl` used by start_hedge.sh: `launch-env`, `wait-redis`, `wait-heartbeat`."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hedge_strategy.bus import Bus, now_ms
from hedge_strategy.ops.common import safe_url
from hedge_strategy.ops.launch import is_local_host, redis_target
from tests.fixtures.procs import free_port
from tests.fixtures.sim import TEST_API_KEY_INDEX, key_pair
from tests.test_ctl import REPO_ROOT, on_bus, pair_of, run_ctl, write_config

Capsys = pytest.CaptureFixture[str]


def launch_env(capsys: Capsys, config: Path) -> tuple[dict[str, str], str]:
    code, out, err = run_ctl(capsys, "launch-env", "--config", str(config))
    assert code == 0, err
    values: dict[str, str] = {}
    for line in out.splitlines():
        # Each line must be one shell word KEY=value once unquoted, exactly as `eval` will see it.
        (word,) = shlex.split(line)
        key, _, value = word.partition("=")
        values[key] = value
    return values, err


# ----- launch-env ----------------------------------------------------------------------------------------


def test_launch_env_for_the_shipped_config(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("HEDGE_RUN_DIR", raising=False)
    values, err = launch_env(capsys, Path("config.yaml"))
    assert err == ""  # the shipped config points exchange.url at its own simulator: no warning
    assert values["HEDGE_CONFIG"] == str(REPO_ROOT / "config.yaml")
    assert values["HEDGE_PAIR"] == "demo"
    assert values["RUN_DIR"] == str(REPO_ROOT / "run")
    assert values["LOG_DIR"] == str(REPO_ROOT / "logs")
    assert values["SECRETS_FILE"] == str(REPO_ROOT / "var" / "secrets.json")
    assert (values["REDIS_LOCAL"], values["REDIS_START_LOCAL"]) == ("1", "1")
    assert (values["REDIS_HOST"], values["REDIS_PORT"], values["REDIS_SOCKET"]) == ("127.0.0.1", "6379", "")
    assert values["SIM_ENABLED"] == "1"
    assert (values["SIM_HOST"], values["SIM_PORT"]) == ("127.0.0.1", "8765")
    assert values["SIM_URL"] == "http://127.0.0.1:8765"
    assert values["SIM_STATE_DIR"] == str(REPO_ROOT / "var" / "sim")
    assert (values["ACCOUNT_A"], values["ACCOUNT_B"]) == ("101", "102")
    assert (values["STRATEGY_MARKET"], values["STRATEGY_QUANTITY"], values["STRATEGY_DEPTH"]) == (
        "BTC", "0.0002", "1"
    )


def sim_section(tmp_path: Path, port: int, **extra: Any) -> dict[str, Any]:
    state_dir = str(tmp_path / "simstate")
    return {"enabled": True, "host": "127.0.0.1", "port": port, "state_dir": state_dir, **extra}


def test_launch_env_for_a_temp_config(
    capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGE_RUN_DIR", str(tmp_path / "myrun"))
    port = free_port()
    config = write_config(
        tmp_path, "redis://:s3cret@localhost:6390/2",
        exchange={"url": f"http://127.0.0.1:{port}", "ws_url": f"ws://127.0.0.1:{port}/stream"},
        sim=sim_section(tmp_path, port),
        redis={"url": "redis://:s3cret@localhost:6390/2", "start_local": False},
    )
    values, err = launch_env(capsys, config)
    assert err == ""
    assert values["HEDGE_PAIR"] == pair_of(config)
    assert values["RUN_DIR"] == str(tmp_path / "myrun")
    assert values["LOG_DIR"] == str(tmp_path / "logs")
    assert values["REDIS_URL"] == "redis://:***@localhost:6390/2"
    assert "s3cret" not in "".join(values.values())
    assert (values["REDIS_LOCAL"], values["REDIS_START_LOCAL"]) == ("1", "0")
    assert (values["REDIS_HOST"], values["REDIS_PORT"]) == ("127.0.0.1", "6390")
    assert values["SIM_PORT"] == str(port)
    # No key pair made yet: keygen must make both before the sim starts.
    assert values["SIM_KEYS_MISSING"] == "101:3 102:3"

    # Once A's pair exists in both the secrets file and the sim's public keys, only B's is missing.
    private, public = key_pair(101)
    (tmp_path / "secrets.json").write_text(json.dumps({"keys": {f"101:{TEST_API_KEY_INDEX}": private}}))
    (tmp_path / "secrets.json").chmod(0o600)
    (tmp_path / "simstate").mkdir()
    public_keys = {"101": {str(TEST_API_KEY_INDEX): public}}
    (tmp_path / "simstate" / "api_keys.json").write_text(json.dumps(public_keys))
    values, _ = launch_env(capsys, config)
    assert values["SIM_KEYS_MISSING"] == "102:3"


def test_launch_env_remote_redis_and_no_simulator(capsys: Capsys, tmp_path: Path) -> None:
    config = write_config(tmp_path, "redis://10.20.30.40:7000/1")
    values, _ = launch_env(capsys, config)
    assert values["REDIS_LOCAL"] == "0"
    assert (values["REDIS_HOST"], values["REDIS_PORT"]) == ("10.20.30.40", "7000")
    assert values["SIM_ENABLED"] == "0"
    assert values["SIM_KEYS_MISSING"] == ""


def test_launch_env_through_sentinel_is_never_a_local_redis(capsys: Capsys, tmp_path: Path) -> None:
    redis = {"url": "redis://:pw@127.0.0.1:6379/0", "sentinels": ["127.0.0.1:26379"], "service_name": "m"}
    values, _ = launch_env(capsys, write_config(tmp_path, "redis://unused:1/0", redis=redis))
    assert values["REDIS_LOCAL"] == "0"  # start_hedge.sh never starts a Redis the sentinels name
    assert values["REDIS_URL"] == "Sentinel service 'm' via 127.0.0.1:26379"


def test_launch_env_warns_when_the_exchange_is_not_the_simulator(capsys: Capsys, tmp_path: Path) -> None:
    config = write_config(tmp_path, "redis://127.0.0.1:6379/0", sim=sim_section(tmp_path, free_port()))
    values, err = launch_env(capsys, config)
    assert values["SIM_ENABLED"] == "1"
    assert "warning: sim.enabled is true but exchange.url" in err


def test_launch_env_bad_sim_section_exits_2_naming_the_key(capsys: Capsys, tmp_path: Path) -> None:
    config = write_config(tmp_path, "redis://127.0.0.1:6379/0", sim=sim_section(tmp_path, 70000))
    code, out, err = run_ctl(capsys, "launch-env", "--config", str(config))
    assert code == 2
    assert "sim.port" in err and out == ""


def test_launch_env_output_survives_shell_eval(tmp_path: Path) -> None:
    awkward = tmp_path / "it's $HOME \"logs\" `x`"
    config = write_config(tmp_path, "redis://127.0.0.1:6379/0", logging={"dir": str(awkward)})
    command = shlex.join([sys.executable, "-m", "hedge_strategy.ctl", "launch-env", "--config", str(config)])
    script = f'eval "$({command})" && printf "%s\\n" "$LOG_DIR" "$REDIS_PORT"'
    result = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(awkward), "6379"]


@pytest.mark.parametrize(
    ("url", "local", "host", "port", "socket"),
    [
        ("redis://127.0.0.1:6379/0", True, "127.0.0.1", 6379, ""),
        ("redis://localhost/0", True, "127.0.0.1", 6379, ""),
        ("redis://[::1]:6380", True, "::1", 6380, ""),
        ("redis://127.0.0.2:6381", True, "127.0.0.2", 6381, ""),
        ("rediss://127.0.0.1:6379/0", False, "127.0.0.1", 6379, ""),  # TLS: never started by us
        ("redis://redis.internal:6379/0", False, "redis.internal", 6379, ""),
        ("unix:///tmp/hedge-redis.sock?db=0", True, "", 0, "/tmp/hedge-redis.sock"),
    ],
)
def test_redis_target(url: str, local: bool, host: str, port: int, socket: str) -> None:
    target = redis_target(url)
    assert (target.local, target.host, target.port, target.socket) == (local, host, port, socket)


def test_local_hosts_and_safe_urls() -> None:
    assert is_local_host("localhost") and is_local_host("127.0.0.1") and is_local_host("::1")
    assert not is_local_host("10.0.0.1") and not is_local_host("example.com")
    assert safe_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert safe_url("redis://h:1/0") == "redis://h:1/0"


# ----- wait-redis, wait-heartbeat --------------------------------------------------------------------------


@pytest.fixture
def exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_wait_redis(capsys: Capsys, tmp_path: Path, redis_server: str, exited_pid: int) -> None:
    (tmp_path / "up").mkdir()
    (tmp_path / "down").mkdir()
    up = write_config(tmp_path / "up", redis_server)
    down = write_config(tmp_path / "down", f"redis://127.0.0.1:{free_port()}/0")
    code, out, _ = run_ctl(capsys, "wait-redis", "--timeout", "0", "--config", str(up))
    assert code == 0 and "present" in out
    code, _, err = run_ctl(capsys, "wait-redis", "--timeout", "0.3", "--config", str(down))
    assert code == 3
    assert "not present after 0.3 s" in err and "last error" in err
    argv = ["wait-redis", "--timeout", "30", "--pid", str(exited_pid), "--config", str(down)]
    code, _, err = run_ctl(capsys, *argv)
    assert code == 4 and f"process {exited_pid} exited" in err


def test_wait_heartbeat_times_out_or_stops_with_the_process(
    capsys: Capsys, tmp_path: Path, redis_server: str, exited_pid: int
) -> None:
    config = write_config(tmp_path, redis_server)
    code, _, err = run_ctl(capsys, "wait-heartbeat", "b", "--timeout", "0.3", "--config", str(config))
    assert code == 3 and "B's heartbeat: not present" in err
    code, _, err = run_ctl(
        capsys, "wait-heartbeat", "b", "--timeout", "30", "--pid", str(exited_pid), "--config", str(config)
    )
    assert code == 4


def test_wait_heartbeat_ignores_a_beat_older_than_since(
    capsys: Capsys, tmp_path: Path, redis_server: str
) -> None:
    config = write_config(tmp_path, redis_server)
    start = now_ms()

    async def stale_beat(bus: Bus) -> None:
        # What a B killed a moment ago leaves behind: a live key written before the new B started.
        body = {"role": "b", "ts_ms": start - 2000}
        await bus.redis.set(bus.keys.heartbeat("b"), json.dumps(body), px=30_000)

    on_bus(redis_server, pair_of(config), stale_beat)
    argv = ["wait-heartbeat", "b", "--timeout", "0.3", "--config", str(config)]
    assert run_ctl(capsys, *argv)[0] == 0  # without --since-ms any live beat counts
    assert run_ctl(capsys, *argv, "--since-ms", str(start))[0] == 3

    on_bus(redis_server, pair_of(config), lambda bus: bus.beat("b", 30, {"consumer": "b-1"}))
    code, out, _ = run_ctl(capsys, *argv, "--since-ms", str(start))
    assert code == 0 and "B's heartbeat: present" in out


async def test_wait_heartbeat_returns_when_b_starts_beating(tmp_path: Path, redis_server: str) -> None:
    config = write_config(tmp_path, redis_server)
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    waiter = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_strategy.ctl", "wait-heartbeat", "b", "--timeout", "60",
        "--since-ms", str(now_ms()), "--config", str(config),
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    bus = Bus.from_url(redis_server, pair_of(config))
    try:
        await bus.beat("b", 30, {"consumer": "b-7"})
        out, err = await asyncio.wait_for(waiter.communicate(), 30)
    finally:
        await bus.aclose()
        if waiter.returncode is None:
            waiter.kill()
            await waiter.wait()
    assert waiter.returncode == 0, err.decode()
    assert b"B's heartbeat: present" in out


def test_wait_heartbeat_with_pid_wants_that_process_beat(
    capsys: Capsys, tmp_path: Path, redis_server: str
) -> None:
    config = write_config(tmp_path, redis_server)
    watched = os.getpid()  # alive for the whole test
    argv = ["wait-heartbeat", "b", "--timeout", "0.3", "--pid", str(watched), "--config", str(config)]
    on_bus(redis_server, pair_of(config), lambda bus: bus.beat("b", 30, {"pid": watched + 1}))
    assert run_ctl(capsys, *argv)[0] == 3  # a beat naming another process is a predecessor's
    on_bus(redis_server, pair_of(config), lambda bus: bus.beat("b", 30, {"pid": watched}))
    assert run_ctl(capsys, *argv)[0] == 0

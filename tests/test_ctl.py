"""`hedgectl pause|resume|status` against a real redis-server, run through the real CLI entry point.

Each test writes its own config (a unique pair name, so tests share the session's Redis without seeing each
other's keys) and calls `hedge_strategy.ctl.main` in-process, which is what the console script calls; one
test runs `python -m hedge_strategy.ctl` as a child process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from loguru import logger

from hedge_strategy import ctl
from hedge_strategy.bus import Bus, PauseState, now_ms
from hedge_strategy.execution import journal_path
from hedge_strategy.execution.journal_store import JournalStore
from hedge_strategy.ops.common import format_age, format_ms, setup_cli_logging
from tests.fixtures.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_config(directory: Path, redis_url: str, **sections: Any) -> Path:
    """A minimal valid config with a unique pair name; `sections` replace whole top-level entries."""
    data: dict[str, Any] = {
        "pair": f"t{uuid.uuid4().hex[:10]}",
        "exchange": {"url": "http://127.0.0.1:8765", "ws_url": "ws://127.0.0.1:8765/stream"},
        "accounts": {
            "a": {"account_index": 101, "api_key_index": 3},
            "b": {"account_index": 102, "api_key_index": 3},
        },
        "secrets_file": str(directory / "secrets.json"),
        "redis": {"url": redis_url},
        "strategy": {"market": "BTC", "quantity": "0.0002"},
        "logging": {"dir": str(directory / "logs")},
        "journal": {"dir": str(directory / "var")},
        "sim": {"enabled": False},
    }
    data.update(sections)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def pair_of(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["pair"])


def run_ctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = ctl.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def status_json(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    code, out, err = run_ctl(capsys, "status", "--json", "--redis-only", "--config", str(config))
    assert code == 0, err
    return json.loads(out)


def on_bus(redis_url: str, pair: str, action: Any) -> Any:
    """Run `action(bus)` against the pair's bus, the way A and B reach it."""

    async def go() -> Any:
        bus = Bus.from_url(redis_url, pair)
        try:
            return await action(bus)
        finally:
            await bus.aclose()

    return asyncio.run(go())


@pytest.fixture
def config(tmp_path: Path, redis_server: str) -> Path:
    return write_config(tmp_path, redis_server)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "run"
    directory.mkdir()
    monkeypatch.setenv("HEDGE_RUN_DIR", str(directory))
    return directory


def test_pause_then_status_then_resume(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    before = now_ms()
    code, out, _ = run_ctl(capsys, "pause", "--reason", "maintenance window", "--config", str(config))
    assert code == 0
    assert "paused" in out and "maintenance window" in out

    report = status_json(capsys, config)
    assert report["pair"] == pair_of(config)
    pause = report["pause"]
    assert pause["paused"] is True
    assert pause["reason"] == "maintenance window"
    assert pause["by"] == "ctl"
    assert before <= pause["since_ms"] <= now_ms()

    code, out, _ = run_ctl(capsys, "resume", "--config", str(config))
    assert code == 0
    assert "resumed" in out and "maintenance window" in out
    assert status_json(capsys, config)["pause"] == {"paused": False}

    code, out, _ = run_ctl(capsys, "resume", "--config", str(config))
    assert code == 0
    assert "was not paused" in out


def test_pause_is_what_a_reads_from_the_bus(
    capsys: pytest.CaptureFixture[str], config: Path, redis_server: str
) -> None:
    assert run_ctl(capsys, "pause", "--config", str(config))[0] == 0
    state = on_bus(redis_server, pair_of(config), lambda bus: bus.get_pause())
    assert isinstance(state, PauseState)
    assert state.by == "ctl" and "operator" in state.reason

    # A second pause replaces the reason and says what it replaced.
    code, out, _ = run_ctl(capsys, "pause", "--reason", "second", "--config", str(config))
    assert code == 0 and "replaces" in out
    state = on_bus(redis_server, pair_of(config), lambda bus: bus.get_pause())
    assert state.reason == "second"

    # A pause set by A itself (a hedge failure) is shown and cleared the same way.
    on_bus(redis_server, pair_of(config), lambda bus: bus.set_pause("hedge failed: margin", by="A"))
    pause = status_json(capsys, config)["pause"]
    assert (pause["by"], pause["reason"]) == ("A", "hedge failed: margin")
    assert run_ctl(capsys, "resume", "--config", str(config))[0] == 0
    assert on_bus(redis_server, pair_of(config), lambda bus: bus.get_pause()) is None


def test_pairs_do_not_see_each_other(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_server: str
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = write_config(tmp_path / "one", redis_server)
    two = write_config(tmp_path / "two", redis_server)
    assert run_ctl(capsys, "pause", "--config", str(one))[0] == 0
    assert status_json(capsys, one)["pause"]["paused"] is True
    assert status_json(capsys, two)["pause"]["paused"] is False


def test_status_shows_heartbeats_with_their_info(
    capsys: pytest.CaptureFixture[str], config: Path, redis_server: str
) -> None:
    info = {"consumer": "b-4242", "pending": 0}
    on_bus(redis_server, pair_of(config), lambda bus: bus.beat("b", 30, info))

    beats = status_json(capsys, config)["heartbeats"]
    assert beats["a"] == {"alive": False}
    assert beats["b"]["alive"] is True
    assert beats["b"]["info"] == info
    assert 0 <= beats["b"]["age_s"] < 30

    code, out, _ = run_ctl(capsys, "status", "--redis-only", "--config", str(config))
    assert code == 0
    b_line = next(line for line in out.splitlines() if "B (hedger)" in line)
    assert "live" in b_line and "consumer=b-4242" in b_line
    a_line = next(line for line in out.splitlines() if "A (maker)" in line)
    assert "none" in a_line
    assert "not paused" in out


def test_status_checks_local_pid_files(
    capsys: pytest.CaptureFixture[str], config: Path, run_dir: Path
) -> None:
    # A live process whose command line names redis-server counts; a live pid of something else (this test
    # process, as after a pid was reused) does not; a missing file is "no pid file".
    impostor = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "redis-server"], stdin=subprocess.PIPE
    )
    try:
        (run_dir / "redis.pid").write_text(f"{impostor.pid}\n")
        (run_dir / "a.pid").write_text(f"{os.getpid()}\n")
        processes = status_json(capsys, config)["processes"]
    finally:
        assert impostor.stdin is not None
        impostor.stdin.close()
        impostor.wait(timeout=10)
    assert processes["run_dir"] == str(run_dir)
    assert processes["redis"] == {"pid": impostor.pid, "running": True}
    assert processes["a"] == {"pid": os.getpid(), "running": False}
    assert processes["b"] == {"pid": None, "running": False}


def test_unreachable_redis_exits_1_and_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    for command in (["status"], ["status", "--json"], ["pause"], ["resume"]):
        code, out, err = run_ctl(capsys, *command, "--config", str(config))
        assert code == 1, command
        assert "Redis unreachable at redis://127.0.0.1:" in err
        assert out == ""


def test_redis_password_is_not_printed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, f"redis://user:hunter2secret@127.0.0.1:{free_port()}/0")
    code, _, err = run_ctl(capsys, "status", "--config", str(config))
    assert code == 1
    assert "hunter2secret" not in err and "user:***@127.0.0.1" in err


def test_bad_config_exits_2_naming_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    strategy = {"market": "BTC", "quantity": "0.0002", "retry_times": "x"}
    config = write_config(tmp_path, "redis://127.0.0.1:6379/0", strategy=strategy)
    for command in (["status"], ["pause"], ["resume"], ["launch-env"], ["wait-heartbeat", "b"]):
        code, _, err = run_ctl(capsys, *command, "--config", str(config))
        assert code == 2, command
        assert "strategy.retry_times" in err

    missing = tmp_path / "nope.yaml"
    code, _, err = run_ctl(capsys, "status", "--config", str(missing))
    assert code == 2 and "config file not found" in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    assert run_ctl(capsys, "pause", "--reason", "  ", "--config", str(config))[0] == 2
    with pytest.raises(SystemExit) as raised:
        ctl.main(["frobnicate"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        ctl.main([])
    assert raised.value.code == 2
    assert "argument error" in capsys.readouterr().err


def test_python_dash_m_entry_point(config: Path) -> None:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    hedgectl = [sys.executable, "-m", "hedge_strategy.ctl"]
    pause = subprocess.run(
        [*hedgectl, "pause", "--reason", "from a shell", "--config", str(config)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert pause.returncode == 0, pause.stderr
    status = subprocess.run(
        [*hedgectl, "status", "--json", "--redis-only", "--config", str(config)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pause"]["reason"] == "from a shell"


def test_the_commands_of_start_hedge_sh_do_not_import_lighter_sdk() -> None:
    # start_hedge.sh runs these on every restart of a killed A or B: importing lighter-sdk (seconds on a busy
    # machine) would delay bringing the process back by that much. Help still lists every command.
    probe = ("import sys; from hedge_strategy import ctl; parser = ctl.build_parser(sys.argv[1:]); "
             "print('lighter' in sys.modules, sorted(parser._subparsers._group_actions[0].choices))")
    for command in ("launch-env", "wait-redis", "wait-heartbeat", "pause", "resume"):
        seen = subprocess.run([sys.executable, "-c", probe, command], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=60)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.split(" ", 1)[0] == "False", (command, seen.stdout)
    everything = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=60)
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.split(" ", 1)[1].strip() == str(sorted(ctl.COMMAND_HOMES))



# ----- secrets in the CLI's own log lines ---------------------------------------------------------------

API_KEY_SHAPED = "0x" + "5a" * 40  # the shape of a Lighter API private key


def test_cli_warnings_are_masked(capsys: pytest.CaptureFixture[str], config: Path, redis_server: str) -> None:
    # A pause value whose field holds a key: the bus logs why it cannot read it, quoting the value.
    unreadable = json.dumps({"v": 1, "type": "pause", "reason": "r", "by": "A", "since_ms": API_KEY_SHAPED})

    async def plant(bus: Bus) -> None:
        await bus.redis.set(bus.keys.pause, unreadable)

    on_bus(redis_server, pair_of(config), plant)
    code, out, err = run_ctl(capsys, "status", "--json", "--redis-only", "--config", str(config))
    assert code == 0, err
    assert json.loads(out)["pause"]["paused"] is True  # unreadable still counts as paused
    assert "pause value is unreadable" in err and "since_ms" in err
    assert "<masked-hex80>" in err and "5a" * 40 not in err


def test_cli_tracebacks_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    setup_cli_logging()
    token = "1700000000:101:3:" + "c0ffee" * 10
    try:
        raise RuntimeError(f"signer refused {API_KEY_SHAPED} with {{braces}} and {token}")
    except RuntimeError:
        logger.opt(exception=True).error("could not sign with {}", API_KEY_SHAPED)
    err = capsys.readouterr().err
    assert err.startswith("ERROR: could not sign with <masked-hex80>\n")
    masked = "RuntimeError: signer refused <masked-hex80> with {braces} and 1700000000:101:3:<masked-token>"
    assert masked in err
    assert "5a" * 40 not in err and "c0ffee" * 4 not in err


# ----- status on values it cannot format, and sections that fail ------------------------------------------


def journal_of(config: Path, account_index: int = 101) -> Path:
    return journal_path(Path(yaml.safe_load(config.read_text())["journal"]["dir"]), account_index)


def test_status_shows_what_it_cannot_format_as_a_question_mark(
    capsys: pytest.CaptureFixture[str], config: Path, redis_server: str
) -> None:
    # A journal (the real schema) with a fill dated past year 9999, and a heartbeat from the far future.
    store = JournalStore(journal_of(config))
    store.close()
    with sqlite3.connect(journal_of(config)) as conn:
        conn.execute("INSERT INTO fills (trade_id, client_order_index, account_index, market_id, side, size,"
                     " price, fee, is_maker, ts_ms, source, announced)"
                     " VALUES (1, 11, 101, 1, 'buy', '0.0002', '95000', '0', 1, ?, 'ws', 1)", (10**17,))
    on_bus(redis_server, pair_of(config), lambda bus: bus.redis.set(
        bus.keys.heartbeat("b"), '{"role": "b", "ts_ms": 1' + "0" * 400 + ', "pid": 7}'))

    report = status_json(capsys, config)  # exit 0 asserted inside
    assert report["journals"]["a"]["trading"]["last_fill_ms"] == 10**17
    assert report["heartbeats"]["b"]["alive"] is True and report["heartbeats"]["b"]["age_s"] is None

    code, out, err = run_ctl(capsys, "status", "--redis-only", "--config", str(config))
    assert code == 0, err
    journal_line = next(line for line in out.splitlines() if "A (maker)" in line and "trading" in line)
    assert journal_line.rstrip(" │|").endswith("?")
    b_line = next(line for line in out.splitlines() if "B (hedger)" in line and "live" in line)
    assert "?" in b_line and "pid=7" in b_line
    assert "Redis unreachable" not in err


def test_format_helpers_never_raise() -> None:
    assert format_ms(10**17) == "?" and format_ms(10**400) == "?" and format_ms(0) == "unknown"
    assert format_ms("soon") == "?"  # type: ignore[arg-type]
    assert format_age(float("inf")) == "?" and format_age(float("nan")) == "?"
    assert format_age(125) == "2 min 5 s"


def test_a_failing_section_is_named_and_the_others_are_shown(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    corrupt = journal_of(config)
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"this is not an sqlite database" * 100)
    assert run_ctl(capsys, "pause", "--reason", "still visible", "--config", str(config))[0] == 0

    code, out, err = run_ctl(capsys, "status", "--json", "--redis-only", "--config", str(config))
    assert code == 1
    report = json.loads(out)
    assert report["journals"] == {"section_error": "DatabaseError: file is not a database"}
    assert report["pause"]["reason"] == "still visible" and "a" in report["heartbeats"]
    assert "journals" in err and "Redis" not in err

    code, out, err = run_ctl(capsys, "status", "--redis-only", "--config", str(config))
    assert code == 1
    assert "journals: could not be shown: DatabaseError: file is not a database" in out
    assert "still visible" in out and "local processes" in out
    assert "journals" in err and "Redis" not in err

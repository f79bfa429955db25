"""The sim's command line: config errors, clean SIGTERM, keygen, and seeded determinism of the market flow."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import lighter
import pytest
import yaml
from lighter import models

from tests.fixtures.procs import free_port
from tests.fixtures.sim import REPO_ROOT, SimFactory, SimProcess, start_sim_process


async def run_cli(*args: str, wait_s: float = 30.0) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NO_PROXY": "127.0.0.1,localhost"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lighter_sim",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), wait_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_config(path: Path, sim_section: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"sim": sim_section}))
    return path


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"flow": {"bogus": 1}}, "sim.flow.bogus"),
        ({"speed_bumps": {"premium": {"taker_ms": -1}}}, "sim.speed_bumps.premium.taker_ms"),
        (
            {
                "markets": [
                    {
                        "symbol": "ETH",
                        "market_id": 0,
                        "size_decimals": 4,
                        "price_decimals": "two",
                        "min_base_amount": "0.005",
                        "min_quote_amount": "10",
                        "initial_price": "3000",
                    }
                ]
            },
            "sim.markets[0].price_decimals",
        ),
        ({"accounts": [{"account_index": 101, "tier": "gold"}]}, "sim.accounts[0].tier"),
        ({"rate_limits": {"enabled": "yes"}}, "sim.rate_limits.enabled"),
        ({"websocket": {"pong_timeout_s": 0}}, "sim.websocket.pong_timeout_s"),
        ({"fees": {"premium": {"maker": "0.0000035"}}}, "sim.fees.premium.maker"),
        ({"colour": "blue"}, "sim.colour"),
    ],
)
async def test_bad_config_exits_2_naming_the_key(tmp_path: Path, section: dict[str, Any], key: str) -> None:
    config = write_config(tmp_path / "bad.yaml", {"state_dir": str(tmp_path / "state"), **section})
    code, out, err = await run_cli("--config", str(config), "--port", "0")
    assert code == 2
    assert key in err and "config error" in err
    assert "sim listening" not in out


async def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    code, _, err = await run_cli("--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and "--config" in err


async def test_sigterm_closes_websockets_and_exits_0(sim: SimProcess) -> None:
    async with sim.stream() as ws:
        await ws.subscribe("order_book/1")
        await ws.expect("subscribed/order_book")
        sim.proc.send_signal(signal.SIGTERM)
        assert await ws.closed() == 1001
    # Wait for the exit itself: `sim.stop()` would signal again, and a second SIGTERM that lands after the
    # event loop has closed (its handler gone) kills the process (-15) before it exits 0.
    assert await asyncio.wait_for(sim.proc.wait(), 10) == 0
    assert "stop signal received" in sim.log()


async def test_sigint_exits_0_too(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"), "flow": {"enabled": False}}
    )
    proc, line = await start_sim_process(config, tmp_path / "sim.log", free_port())
    assert line.startswith("sim listening on http://127.0.0.1:")
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_keygen_writes_0600_secrets_is_idempotent_and_registers_with_a_running_sim(
    sim: SimProcess, tmp_path: Path
) -> None:
    secrets = tmp_path / "var" / "secrets.json"
    args = ("keygen", "--config", str(sim.config_path), "--accounts", "103,104", "--secrets", str(secrets))
    code, out, err = await run_cli(*args, "--url", sim.url)
    assert code == 0, err
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    keys = json.loads(secrets.read_text())["keys"]
    assert set(keys) == {"103:3", "104:3"} and all(len(k) == 80 for k in keys.values())
    assert not any(private in out + err for private in keys.values())  # never printed
    public = json.loads((sim.state_dir / "api_keys.json").read_text())
    assert {"101", "102", "103", "104"} <= set(public)

    code, out, _ = await run_cli(*args)
    assert code == 0 and out.count("already present") == 2
    assert json.loads(secrets.read_text())["keys"] == keys  # unchanged

    client = lighter.SignerClient(
        url=sim.url, account_index=103, api_private_keys={3: keys["103:3"]}, chain_id=304
    )
    try:
        assert await asyncio.to_thread(client.check_client) is None
    finally:
        await client.close()


def test_the_shipped_config_yaml_sim_section_is_valid() -> None:
    from lighter_sim.config import load_sim_config, parse_sim_section

    config = load_sim_config(REPO_ROOT / "config.yaml")
    assert [m.symbol for m in config.markets] == ["ETH", "BTC"]
    assert config.speed_bumps.standard.taker_ms == 300 and config.speed_bumps.premium.maker_ms == 0
    assert config.fees == parse_sim_section({}).fees  # the shipped fees are the defaults
    assert config.rate_limits.shared == []  # the shared-budget example is commented out


FAST_FLOW = {"flow": {"enabled": True, "tick_interval_ms": 20, "taker_rate_per_s": 40.0}, "seed": 11}


async def first_trades(sim: SimProcess, count: int) -> list[tuple[str, str, bool]]:
    """The market's first `count` trades (price, size, maker side), waiting on book updates as they come.

    Read oldest first (`trades`, sort_dir asc), not from the newest 100 (`recentTrades`): a sim that started
    a few seconds before another has more than 100 trades by the time it is read."""
    async with sim.stream() as ws:
        await ws.subscribe("order_book/0")
        await ws.expect("subscribed/order_book")
        while True:
            query = {"market_id": 0, "sort_dir": "asc", "limit": count}
            trades = models.Trades.from_dict(await sim.get("/api/v1/trades", query)).trades
            if len(trades) >= count:
                return [(t.price, t.size, t.is_maker_ask) for t in trades]
            await ws.expect("update/order_book", wait_s=5)


async def test_same_seed_same_flow(sim_factory: SimFactory) -> None:
    one = await sim_factory(FAST_FLOW)
    two = await sim_factory(FAST_FLOW)
    other = await sim_factory({**FAST_FLOW, "seed": 12})
    a, b, c = await asyncio.gather(first_trades(one, 8), first_trades(two, 8), first_trades(other, 8))
    assert a == b
    assert a != c

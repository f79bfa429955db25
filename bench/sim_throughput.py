"""Throughput of the simulator's sendTx with real signed transactions.

    .venv/bin/python bench/sim_throughput.py [--accounts 8] [--txs-per-account 500]

Starts `python -m lighter_sim` (speed bumps, rate limits and market flow off), pre-signs create/cancel
pairs with the lighter-sdk Go signer for several accounts, then fires them from one concurrent HTTP client per
account (each account's transactions in nonce order, one in flight at a time). Prints transactions per second,
the server-side processing time per sendTx (measured inside the server, read back from `/sim/txlog`) and the
client round trip, as p50/p99. Target: >= 500 sendTx/s with server p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lighter_sim.keygen import create_key_pair, write_public_keys  # noqa: E402

KEY_INDEX = 3
MARKET = 1  # BTC: size_decimals 5, price_decimals 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def start_sim(
    workdir: Path, accounts: list[int]
) -> tuple[asyncio.subprocess.Process, str, dict[int, str]]:
    """A sim with one fresh API key per account; returns (process, url, private keys)."""
    keys = {a: create_key_pair() for a in accounts}
    state_dir = workdir / "state"
    write_public_keys(state_dir, {a: {KEY_INDEX: pub} for a, (_, pub) in keys.items()})
    section = {
        "state_dir": str(state_dir),
        "accounts": [{"account_index": a, "tier": "premium", "collateral": "1000000"} for a in accounts],
        "speed_bumps": {"enabled": False},
        "rate_limits": {"enabled": False},
        "flow": {"enabled": False},
    }
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump({"sim": section}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NO_PROXY": "127.0.0.1,localhost"}
    with (workdir / "sim.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lighter_sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            str(config),
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    if not line.startswith("sim listening on "):
        raise SystemExit(f"sim did not start: {line!r}; see {workdir / 'sim.log'}")
    return proc, line.removeprefix("sim listening on "), {a: priv for a, (priv, _) in keys.items()}


async def presign(url: str, account: int, private_key: str, count: int) -> list[tuple[int, str]]:
    """`count` txs for `account`: post-only bids and their cancels, alternating, nonces 0..count-1."""
    import lighter

    client = lighter.SignerClient(
        url=url, account_index=account, api_private_keys={KEY_INDEX: private_key}, chain_id=304
    )
    txs: list[tuple[int, str]] = []
    try:
        for nonce in range(count):
            coid = 31000000000000 + nonce // 2
            if nonce % 2 == 0:
                price = 900000 + (nonce // 2) % 1000  # 90000.0 .. 90099.9: far below any ask
                tx_type, tx_info, _, err = client.sign_create_order(
                    MARKET, coid, 20, price, 0, 0, 2, nonce=nonce, api_key_index=KEY_INDEX
                )
            else:
                tx_type, tx_info, _, err = client.sign_cancel_order(
                    MARKET, coid, nonce=nonce, api_key_index=KEY_INDEX
                )
            if err is not None:
                raise SystemExit(f"signing failed: {err}")
            txs.append((tx_type, tx_info))
    finally:
        await client.close()
    return txs


async def fire(
    session: aiohttp.ClientSession, url: str, txs: list[tuple[int, str]], rtts: list[float]
) -> int:
    failures = 0
    for tx_type, tx_info in txs:
        started = time.perf_counter()
        async with session.post(
            f"{url}/api/v1/sendTx", data={"tx_type": str(tx_type), "tx_info": tx_info}
        ) as resp:
            body = await resp.json()
        rtts.append((time.perf_counter() - started) * 1000)
        if resp.status != 200 or body.get("code") != 200:
            failures += 1
    return failures


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=8, help="concurrent clients, one account each")
    parser.add_argument("--txs-per-account", type=int, default=500)
    args = parser.parse_args()
    accounts = [201 + i for i in range(args.accounts)]
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        proc, url, keys = await start_sim(Path(tmp), accounts)
        try:
            signed = {a: await presign(url, a, keys[a], args.txs_per_account) for a in accounts}
            rtts: list[float] = []
            connector = aiohttp.TCPConnector(limit=len(accounts))
            async with aiohttp.ClientSession(connector=connector) as session:
                started = time.perf_counter()
                failures = await asyncio.gather(*(fire(session, url, signed[a], rtts) for a in accounts))
                elapsed = time.perf_counter() - started
                async with session.get(f"{url}/sim/txlog") as resp:
                    log = (await resp.json())["tx_log"]
            server_ms = [r["processing_us"] / 1000 for records in log.values() for r in records]
            total = len(rtts)
            print(
                f"sendTx: {total} transactions from {len(accounts)} concurrent clients in {elapsed:.2f} s "
                f"= {total / elapsed:.0f} tx/s ({sum(failures)} failed)"
            )
            print(
                f"server processing per sendTx: p50 {percentile(server_ms, 0.5):.3f} ms, "
                f"p99 {percentile(server_ms, 0.99):.3f} ms, max {max(server_ms):.3f} ms "
                f"(mean {statistics.fmean(server_ms):.3f} ms, {len(server_ms)} records)"
            )
            print(
                f"client round trip: p50 {percentile(rtts, 0.5):.2f} ms, p99 {percentile(rtts, 0.99):.2f} ms"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)


if __name__ == "__main__":
    asyncio.run(main())

"""Premium, Standard, and Standard on one shared budget: the pair's pace on each, from the simulator's
records.

    .venv/bin/python bench/tiers.py [--minutes 5] [--ref HEAD] [--runs premium,standard,shared] [--json F]
                                    [--keep]

1. `git clone` of this repository at `--ref` (default: the committed HEAD) into a temp dir; its `.venv` is a
   symlink to this checkout's (the clone's own packages are imported first: they are on the path before the
   editable install).
2. One after the other, on the shipped config (simulator default flow, `sim.seed: 7`, speed bumps and rate
   limits on) with its own ports, directories and redis-server, and only these changes:
   - `premium`: nothing else;
   - `standard`: `exchange.tier: standard` and both simulated accounts `tier: standard`;
   - `shared`: as `standard`, plus `exchange.shared_budget: true` (the bot) and `sim.rate_limits.shared:
     [[101, 102]]` (the simulator charges A and B to one budget). On a checkout whose bot has no
     `exchange.shared_budget` (before it existed) only the simulator's setting is made: what that bot does
     when the venue charges both accounts to one limit; the table says so. A checkout that refuses the
     run's config (exit 2) gets the run reported as not run.
3. Each run: `./start_hedge.sh --market BTC --quantity 0.0002 --depth 1`, then `--minutes` of trading (the
   window starts when start_hedge.sh returns: B up, A started), then the simulator's `/sim/state` (every
   account's trades, transaction log, open orders), `./stop_hedge.sh --keep-infra` (A and B stop; the
   simulator stays), the final status of each of A's orders from `accountInactiveOrders` (signed with A's key
   from the run's secrets file, retried after a 429), the simulator's log up to the end of the window (its
   `answered 429` lines), and `./stop_hedge.sh`.
4. Prints one table (a column per run; see `tiers_figures.py` for each definition), the ratios to the
   premium run and the targets of issue 10. Nothing is taken from the bot's own logs except whether A paused
   (its pause key in Redis at the end of the window).

Figures depend on the machine's load: the pair, the simulator and Redis share its CPUs; the load average is
printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cycles import prepare_venv, run_script
from hedge_latency import REPO_ROOT, free_port, machine, run_in_temp_dir
from tiers_figures import A_ACCOUNT, MARKET_ID, Figures, compute

RUNS: dict[str, dict[str, bool]] = {
    "premium": {"standard": False, "shared": False},
    "standard": {"standard": True, "shared": False},
    "shared": {"standard": True, "shared": True},
}
TAKER_BUMP_S = {"premium": 0.2, "standard": 0.3, "shared": 0.3}  # the shipped sim.speed_bumps taker_ms
ORDERS_PAGE = 100
READ_RETRIES, READ_RETRY_S = 30, 5.0  # a 429 on the closing reads: the window's budget may still be spent


@dataclass
class Run:
    name: str
    figures: Figures | None = None
    skipped: str = ""  # why there are no figures
    note: str = ""  # how the run differs from its description
    start_s: float = 0.0  # start_hedge.sh


def clone_at(workdir: Path, ref: str) -> tuple[Path, str]:
    target = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "--quiet", "--detach",
                    _resolve(ref)], check=True)
    head = subprocess.run(["git", "-C", str(target), "log", "-1", "--format=%h %s"], check=True,
                          capture_output=True, text=True).stdout.strip()
    return target, head


def _resolve(ref: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                          check=True, capture_output=True, text=True).stdout.strip()


def write_run_config(root: Path, run_dir: Path, name: str) -> tuple[Path, dict[str, Any], str]:
    """The shipped config with this run's ports and directories, and the run's tier settings; and a note
    when the checkout's bot lacks one of them."""
    config = yaml.safe_load((root / "config.yaml").read_text())
    sim_port, redis_port = free_port(), free_port()
    config["exchange"]["url"] = f"http://127.0.0.1:{sim_port}"
    config["exchange"]["ws_url"] = f"ws://127.0.0.1:{sim_port}/stream"
    config["sim"]["port"] = sim_port
    config["redis"]["url"] = f"redis://127.0.0.1:{redis_port}/0"
    config["metrics"]["port_a"], config["metrics"]["port_b"] = free_port(), free_port()
    config["secrets_file"] = str(run_dir / "var" / "secrets.json")
    config["journal"]["dir"] = str(run_dir / "var")
    config["logging"]["dir"] = str(run_dir / "logs")
    config["sim"]["state_dir"] = str(run_dir / "var" / "sim")
    settings = RUNS[name]
    if settings["standard"]:
        config["exchange"]["tier"] = "standard"
        for account in config["sim"]["accounts"]:
            account["tier"] = "standard"
    note = ""
    if settings["shared"]:
        config["sim"]["rate_limits"]["shared"] = [[101, 102]]
        if "shared_budget" in (root / "hedge_strategy" / "config.py").read_text():
            config["exchange"]["shared_budget"] = True
        else:
            note = "the sim charges A and B to one budget; this bot has no exchange.shared_budget"
    path = run_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, config, note


async def run_one(root: Path, workdir: Path, name: str, minutes: float) -> Run:
    run_dir = workdir / name
    run_dir.mkdir()
    config_path, config, note = write_run_config(root, run_dir, name)
    sim_url = config["exchange"]["url"]
    env = {**os.environ, "HEDGE_RUN_DIR": str(run_dir / "run"), "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    print(f"[{name}] start_hedge.sh", file=sys.stderr)
    code, out, took = await run_script(root, env, "./start_hedge.sh", "--market", "BTC", "--quantity",
                                       "0.0002", "--depth", "1", "--config", str(config_path))
    result = Run(name, start_s=took, note=note)
    if code == 2:
        said = " / ".join(out.strip().splitlines()[-2:])
        result.skipped = f"this checkout refuses the run's config: {said}"
        return result
    if code != 0:
        await run_script(root, env, "./stop_hedge.sh")
        raise SystemExit(f"[{name}] start_hedge.sh exited {code}:\n{out}")
    sim_log = Path(config["logging"]["dir"]) / "sim.log"
    try:
        started = time.time()
        print(f"[{name}] trading for {minutes:g} min", file=sys.stderr)
        await asyncio.sleep(minutes * 60)  # the measured window: the pair trades on its own
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            state = await _get(session, f"{sim_url}/sim/state")
        end_ms = int(time.time() * 1000)
        # Kept beside the run's logs, for a look with --keep (which IOC missed, at what price).
        await asyncio.to_thread((run_dir / "sim_state.json").write_text, json.dumps(state))
        log_lines = (await asyncio.to_thread(sim_log.read_text, errors="replace")).splitlines()
        paused = await _paused(config)
    finally:
        await asyncio.shield(run_script(root, env, "./stop_hedge.sh", "--keep-infra"))
    try:
        status = await a_order_status(sim_url, config)
    finally:
        await asyncio.shield(run_script(root, env, "./stop_hedge.sh"))
    result.figures = compute(state, status, log_lines, end_ms / 1000 - started, end_ms, paused)
    return result


async def _get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    async with session.get(url, **kwargs) as resp:
        body = await resp.json(content_type=None)
        if resp.status == 429:
            raise RateLimited
        resp.raise_for_status()
        return dict(body)


class RateLimited(Exception):
    pass


async def _paused(config: dict[str, Any]) -> bool:
    client = aioredis.Redis.from_url(config["redis"]["url"])
    try:
        return bool(await client.exists(f"hedge:{config['pair']}:pause"))
    finally:
        await client.aclose()


async def a_order_status(sim_url: str, config: dict[str, Any]) -> dict[int, str]:
    """Client order index -> final status of each of A's ended orders, from `accountInactiveOrders`."""
    token = await _auth_token(sim_url, config)
    status: dict[int, str] = {}
    cursor = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while True:
            params = {"account_index": str(A_ACCOUNT), "limit": str(ORDERS_PAGE), "market_id": str(MARKET_ID)}
            if cursor:
                params["cursor"] = cursor
            page = await _read_with_retries(session, f"{sim_url}/api/v1/accountInactiveOrders", params, token)
            for order in page.get("orders") or []:
                status[int(order["client_order_index"])] = str(order["status"])
            cursor = page.get("next_cursor") or ""
            if not cursor:
                return status


async def _read_with_retries(session: aiohttp.ClientSession, url: str, params: dict[str, str],
                             token: str) -> dict[str, Any]:
    for _ in range(READ_RETRIES):
        try:
            return await _get(session, url, params=params, headers={"authorization": token})
        except RateLimited:
            print(f"  429 on {url.rsplit('/', 1)[-1]} (the window spent the budget); again in "
                  f"{READ_RETRY_S:g} s", file=sys.stderr)
            await asyncio.sleep(READ_RETRY_S)  # the rolling minute: nothing to wait on but time
    raise SystemExit(f"{url}: still rate limited after {READ_RETRIES} tries")


async def _auth_token(sim_url: str, config: dict[str, Any]) -> str:
    """An auth token of account A, made by the SDK's signer with A's key from the run's secrets file."""
    import lighter
    from lighter.nonce_manager import NonceManagerType

    key_index = int(config["accounts"]["a"]["api_key_index"])
    secrets = await asyncio.to_thread(Path(config["secrets_file"]).read_text)
    secret = json.loads(secrets)["keys"][f"{A_ACCOUNT}:{key_index}"]
    signer = lighter.SignerClient(sim_url, A_ACCOUNT, {key_index: secret},
                                  nonce_management_type=NonceManagerType.NONE,
                                  chain_id=int(config["exchange"]["chain_id"]))
    try:
        token, error = signer.create_auth_token_with_expiry(600, api_key_index=key_index)
    finally:
        await signer.close()
    if error:
        raise SystemExit(f"auth token for account {A_ACCOUNT}: {error}")
    return str(token)


# ------------------------------------------------------------------------------------------------------
# The report


def _num(value: float | Decimal | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


ROWS: list[tuple[str, Any]] = [
    ("window (s)", lambda f: f"{f.window_s:.0f}"),
    ("cycles (A back to flat)", lambda f: str(f.cycles)),
    ("A fills", lambda f: str(f.a_fills)),
    ("A volume (BTC)", lambda f: str(f.a_volume_btc)),
    ("A volume (USD)", lambda f: f"{f.a_notional_usd:,.0f}"),
    ("A orders", lambda f: str(f.a_orders)),
    ("A orders per fill", lambda f: _num(f.orders_per_fill, ".2f")),
    ("A orders canceled-post-only", lambda f: _share(f.order_ends["canceled-post-only"], f.a_orders)),
    ("A order ends", lambda f: ", ".join(f"{k} {v}" for k, v in f.order_ends.most_common())),
    ("hedges (imbalance episodes)", lambda f: str(f.hedges)),
    ("B IOCs per hedge", lambda f: _num(f.iocs_per_hedge, ".2f")),
    ("hedges filled by the first IOC", lambda f: _share(f.first_ioc_hedges, f.hedges)),
    ("B orders outside a closed hedge", lambda f: str(f.b_orders - f.b_iocs)),
    ("naked time per fill p50 (s)", lambda f: _num(f.naked(0.5), ".3f")),
    ("naked time per fill p90 (s)", lambda f: _num(f.naked(0.9), ".3f")),
    ("naked time per fill max (s)", lambda f: _num(f.naked(1.0), ".3f")),
    ("A fills not covered at the end", lambda f: str(f.uncovered_at_end)),
    ("naked exposure (BTC*s)", lambda f: f"{f.exposure_btc_s:.5f}"),
    ("naked exposure per BTC traded (s)", lambda f: _num(f.exposure_per_btc_s, ".3f")),
    ("hedge slippage vs A's fill (bps)", lambda f: _num(f.slippage_bps, ".3f")),
    ("HTTP 429 answered by the sim", lambda f: str(f.http_429) + (
        f" ({', '.join(f'{k} {v}' for k, v in f.http_429_by_key.items())})" if f.http_429 else "")),
    ("A / B position at the end", lambda f: f"{f.a_final} / {f.b_final}"),
    ("A paused at the end", lambda f: "yes" if f.paused else "no"),
]


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.0%})" if whole else "-"


def report(runs: list[Run], head: str, minutes: float) -> None:
    print(f"\ntiers on the default flow (seed 7), {minutes:g} min each, clone of {head}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"machine: {machine()}")
    measured = [r for r in runs if r.figures is not None]
    width = max(len(label) for label, _ in ROWS)
    print(f"{'':{width}}  " + "  ".join(f"{r.name:>14}" for r in measured))
    for label, cell in ROWS:
        cells = [cell(r.figures) for r in measured]
        if max(len(c) for c in cells) > 14:  # long cells: one line per run
            print(label)
            for run, text in zip(measured, cells, strict=True):
                print(f"  {run.name}: {text}")
            continue
        print(f"{label:{width}}  " + "  ".join(f"{c:>14}" for c in cells))
    for run in runs:
        if run.figures is None:
            print(f"{run.name}: not run: {run.skipped}")
        elif run.note:
            print(f"{run.name}: {run.note}")
    _ratios(measured)
    _targets(measured)


def _ratios(runs: list[Run]) -> None:
    base = next((r.figures for r in runs if r.name == "premium"), None)
    if base is None:
        return
    for run in runs:
        f = run.figures
        if run.name == "premium" or f is None:
            continue
        parts = [f"cycles {_ratio(f.cycles, base.cycles)}", f"A fills {_ratio(f.a_fills, base.a_fills)}",
                 f"A volume {_ratio(f.a_volume_btc, base.a_volume_btc)}",
                 f"naked p90 {_ratio(f.naked(0.9), base.naked(0.9))}",
                 f"exposure per BTC {_ratio(f.exposure_per_btc_s, base.exposure_per_btc_s)}"]
        print(f"{run.name} / premium: " + ", ".join(parts))


def _ratio(value: float | Decimal | None, base: float | Decimal | None) -> str:
    return f"{float(value) / float(base):.2f}x" if value is not None and base else "-"


def _targets(runs: list[Run]) -> None:
    """Issue 10's figures: each checked where the run gives it."""
    base = next((r.figures for r in runs if r.name == "premium"), None)
    print("targets (issue 10):")
    for run in runs:
        f = run.figures
        assert f is not None
        checks = []
        if run.name != "premium" and base is not None and base.cycles:
            checks.append((f"cycles >= 0.8x premium ({f.cycles / base.cycles:.2f}x)",
                           f.cycles >= 0.8 * base.cycles))
        if run.name != "premium":
            share = f.post_only_share
            checks.append((f"<= 10% of A's orders canceled-post-only ({_num(share, '.0%')})",
                           share is not None and share <= 0.10))
            checks.append((f"no 429 ({f.http_429})", f.http_429 == 0))
        first = f.first_ioc_share
        checks.append((f">= 95% of hedges by the first IOC ({_num(first, '.0%')})",
                       first is not None and first >= 0.95))
        p90, bump = f.naked(0.9), TAKER_BUMP_S[run.name]
        checks.append((f"naked p90 <= bump + 50 ms = {bump + 0.05:.2f} s ({_num(p90, '.3f')})",
                       p90 is not None and p90 <= bump + 0.05))
        checks.append((f"mean slippage <= 0.9 bps ({_num(f.slippage_bps, '.2f')})",
                       f.slippage_bps is not None and f.slippage_bps <= 0.9))
        print(f"  {run.name}: " + "; ".join(f"{text} {'MET' if ok else 'MISSED'}" for text, ok in checks))


def as_json(runs: list[Run], head: str, minutes: float) -> dict[str, Any]:
    out: dict[str, Any] = {"clone": head, "minutes": minutes, "machine": machine(), "runs": {}}
    for run in runs:
        if run.figures is None:
            out["runs"][run.name] = {"skipped": run.skipped}
            continue
        out["runs"][run.name] = {"note": run.note, **{label: cell(run.figures) for label, cell in ROWS}}
    return out


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    root, head = await asyncio.to_thread(clone_at, workdir, args.ref)
    print(f"cloned {head} into {root}", file=sys.stderr)
    await asyncio.to_thread(prepare_venv, root, True)
    runs = [await run_one(root, workdir, name, args.minutes) for name in args.runs]
    report(runs, head, args.minutes)
    if args.json:
        text = json.dumps(as_json(runs, head, args.minutes), indent=2)
        await asyncio.to_thread(Path(args.json).write_text, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="trading time of each run (default 5)")
    parser.add_argument("--ref", default="HEAD", help="the commit to measure (default: HEAD)")
    parser.add_argument("--runs", default=",".join(RUNS), type=lambda v: v.split(","),
                        help="which runs, in order (default: premium,standard,shared)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (clone, logs, configs)")
    args = parser.parse_args()
    unknown = [name for name in args.runs if name not in RUNS]
    if unknown:
        parser.error(f"unknown runs {unknown} (known: {', '.join(RUNS)})")
    run_in_temp_dir(lambda workdir: bench(args, workdir), "hedge-tiers-", args.keep,
                    "interrupted: stop_hedge.sh was run for the run under way")


if __name__ == "__main__":
    main()

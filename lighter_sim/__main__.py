"""Command line of the simulator.

    python -m lighter_sim [--host H] [--port P] [--config config.yaml]
    python -m lighter_sim keygen [--config config.yaml] [--accounts 101,102] [--api-key-index 3]
                                        [--secrets var/secrets.json] [--url http://127.0.0.1:8765]
    python -m lighter_sim launch-env [--config config.yaml] [--keys 101:3,102:3] [--secrets FILE]
                                     [--exchange-url URL]

Exit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .config import SimConfig, SimConfigError, load_sim_config

log = logging.getLogger("sim")


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _serve_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lighter_sim", description="Lighter-compatible simulated exchange"
    )
    parser.add_argument("--host", help="listen address (default: sim.host)")
    parser.add_argument("--port", type=int, help="listen port, 0 picks a free one (default: sim.port)")
    parser.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="config file (default: %(default)s)"
    )
    return parser.parse_args(argv)


def _keygen_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lighter_sim keygen",
        description="create API key pairs for the simulated accounts",
    )
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--accounts", help="comma-separated account indexes (default: all of sim.accounts)")
    parser.add_argument("--api-key-index", type=int, default=3)
    parser.add_argument(
        "--secrets", type=Path, default=Path("var/secrets.json"), help="0600 private key file"
    )
    parser.add_argument("--url", help="a running sim to register the public keys with")
    return parser.parse_args(argv)


def _load(path: Path) -> SimConfig:
    try:
        return load_sim_config(path)
    except SimConfigError as exc:
        for line in exc.lines:
            print(f"config error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(config: SimConfig, host: str, port: int) -> int:
    from .server import SimServer

    server = SimServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await server.start(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    print(f"sim listening on http://{host}:{bound}", flush=True)
    await stop.wait()
    log.info("stop signal received; closing websockets and shutting down")
    await server.stop()
    return 0


def serve(argv: list[str]) -> int:
    args = _serve_args(argv)
    config = _load(args.config)
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        print(f"argument error: --port must be 0..65535, got {port}", file=sys.stderr)
        return 2
    from .keygen import KeygenError

    try:
        return asyncio.run(_serve(config, host, port))
    except KeygenError as exc:  # a corrupt api_keys.json in the state dir
        print(f"config error: sim.state_dir: {exc}", file=sys.stderr)
        return 2


def keygen(argv: list[str]) -> int:
    from .keygen import KeygenError, ensure_keys, read_public_keys, register_with_sim, registration_body

    args = _keygen_args(argv)
    config = _load(args.config)
    seeds = {s.account_index: s for s in config.accounts}
    if args.accounts:
        try:
            accounts = [int(a) for a in args.accounts.split(",") if a.strip()]
        except ValueError:
            print(
                f"argument error: --accounts must be comma-separated integers, got {args.accounts!r}",
                file=sys.stderr,
            )
            return 2
    else:
        accounts = sorted(seeds)
    if not 0 <= args.api_key_index <= 254:
        print("argument error: --api-key-index must be 0..254", file=sys.stderr)
        return 2
    try:
        results = ensure_keys(accounts, args.api_key_index, config.state_dir, args.secrets)
        for result in results:
            what = "created" if result.created else "already present, kept"
            print(f"account {result.account_index} api key {result.api_key_index}: {what}")
        print(f"public keys: {config.state_dir / 'api_keys.json'}; private keys: {args.secrets} (mode 0600)")
        if args.url:
            public = read_public_keys(config.state_dir)
            bodies = []
            for account in accounts:
                seed = seeds.get(account)
                tier, collateral = (seed.tier, str(seed.collateral)) if seed else ("premium", "100000")
                bodies.append(registration_body(account, tier, collateral, public.get(account, {})))
            asyncio.run(register_with_sim(args.url, bodies))
            print(f"registered {len(bodies)} account(s) with the sim at {args.url}")
    except (KeygenError, OSError) as exc:
        print(f"keygen failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _setup_logging()
    if argv and argv[0] == "keygen":
        return keygen(argv[1:])
    if argv and argv[0] == "launch-env":
        from .launch_env import main as launch_env

        return launch_env(argv[1:])
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())

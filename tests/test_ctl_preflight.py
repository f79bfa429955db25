"""`hedgectl preflight` against the simulator (real lighter-sdk, the real console entry point as a child
process): a clean pass, a WARN that fails unless accepted, each failure named with a non-zero exit,
`--record` in the corpus format with no secret in it, and never a transaction (the simulator's tx log stays
empty after every run)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lighter
import pytest
import yaml

from hedge_strategy import ctl
from tests.fixtures.ab import LADDER_FLOW, write_config
from tests.fixtures.procs import free_port
from tests.fixtures.sim import SimFactory, SimProcess
from tests.fixtures.wire import read_file
from tests.test_ctl_status_kit import CTL_TIMEOUT_S, CtlRun, spawn_hedgectl

EXIT_PREFLIGHT = 7
SECONDS = "2"
SUBSCRIBED = "subscribed; counting frames"  # preflight's line once every channel of A and B is subscribed
# A ladder whose mid moves, so the order book sends updates during the short watch.
MOVING_LADDER: dict[str, Any] = {"flow": {**LADDER_FLOW, "volatility_bps": 5}}
CHECKS = ["rest", "chain id", "market", "api key A", "api key B", "tier A", "tier B", "quantity",
          "collateral A", "collateral B", "leftovers A", "leftovers B", "websocket", "channels A",
          "channels B", "frames", "book continuity", "ping/pong", "token refresh", "rate limits",
          "clock skew"]
UNPARSABLE_ORDER = ('{"type":"update/account_all_orders","channel":"account_all_orders:101",'
                    '"orders":{"1":[{"order_index":"not a number"}]}}')


@dataclass
class Preflight:
    run: CtlRun
    checks: dict[str, tuple[str, str]]  # name -> (verdict, the whole line)

    def verdict(self, name: str) -> str:
        return self.checks[name][0]

    def line(self, name: str) -> str:
        return self.checks[name][1]


async def preflight(sim: SimProcess, workdir: Path, *args: str, env: dict[str, str] | None = None,
                    watching: Callable[[], Awaitable[object]] | None = None,
                    **changes: dict[str, Any]) -> Preflight:
    """Run `hedgectl preflight` with a config for `sim` (sections updated by `changes`), then check that
    the run sent no transaction at all. `watching` runs once preflight says every channel is subscribed."""
    path = preflight_config(sim, workdir, changes)
    argv = ["preflight", "--config", str(path), "--seconds", SECONDS, *args]
    run = await run_streaming(argv, env, watching)
    checks = {}
    for line in run.out.splitlines():
        if re.match(r"(PASS|WARN|FAIL|SKIP)  ", line):
            checks[line[6:22].strip()] = (line[:4], line)
    assert await sim.txlog() == {}, "preflight sent a transaction"
    return Preflight(run, checks)


def preflight_config(sim: SimProcess, workdir: Path, changes: dict[str, dict[str, Any]]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = write_config(workdir, sim, "redis://127.0.0.1:1/0", {})  # preflight never opens Redis
    data = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        data[section].update(values)
    path.write_text(yaml.safe_dump(data))
    return path


async def run_streaming(argv: list[str], env: dict[str, str] | None,
                        watching: Callable[[], Awaitable[object]] | None) -> CtlRun:
    proc = await spawn_hedgectl(*argv, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    err = asyncio.create_task(proc.stderr.read())
    out: list[str] = []

    async def read_out() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            out.append(raw.decode())
            if watching is not None and SUBSCRIBED in out[-1]:
                await watching()

    await asyncio.wait_for(read_out(), CTL_TIMEOUT_S)
    code = await asyncio.wait_for(proc.wait(), CTL_TIMEOUT_S)
    return CtlRun(code, "".join(out), (await err).decode())


def moving_sim(sim_factory: SimFactory, **overrides: Any) -> Any:
    return sim_factory({**MOVING_LADDER, **overrides})


async def test_clean_pass_every_check_passes_and_nothing_is_sent(sim_factory: SimFactory,
                                                                 tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    result = await preflight(sim, tmp_path / "clean")

    assert result.run.code == 0, result.run.out + result.run.err
    assert list(result.checks) == CHECKS
    assert {verdict for verdict, _ in result.checks.values()} == {"PASS"}, result.run.out
    assert "subscribed with it on a new connection" in result.line("token refresh")
    assert "begin_nonce" in result.line("book continuity")
    assert result.run.out.splitlines()[-1].startswith("preflight passed against ")


async def test_a_warning_exits_7_unless_accepted(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await sim_factory({"flow": LADDER_FLOW})  # a still ladder: a price to check, but no book update
    warned = await preflight(sim, tmp_path / "warn")

    assert warned.run.code == EXIT_PREFLIGHT, warned.run.out + warned.run.err
    assert warned.verdict("book continuity") == "WARN", warned.run.out
    assert not any(verdict in ("FAIL", "SKIP") for verdict, _ in warned.checks.values()), warned.run.out
    summary = warned.run.out.splitlines()[-1]
    assert summary.startswith("preflight NOT passed (warnings) against ") and "--accept-warnings" in summary

    accepted = await preflight(sim, tmp_path / "accepted", "--accept-warnings")
    assert accepted.run.code == 0, accepted.run.out + accepted.run.err
    assert accepted.verdict("book continuity") == "WARN"
    assert accepted.run.out.splitlines()[-1].startswith("preflight passed, warnings accepted, against ")


async def test_record_writes_the_corpus_format_without_secrets(sim_factory: SimFactory,
                                                               tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    recorded = tmp_path / "capture.jsonl"
    result = await preflight(sim, tmp_path / "rec", "--record", str(recorded))
    assert result.run.code == 0, result.run.out

    records = read_file(recorded)  # the corpus loader: every line a {kind, name, payload} record
    names = {(r.kind, r.name) for r in records}
    assert {("rest", "status"), ("rest", "orderBookDetails"), ("rest", "account"), ("rest", "accountLimits"),
            ("rest", "accountActiveOrders"), ("rest", "orderBookOrders")} <= names
    assert {("ws", "control"), ("ws", "order_book"), ("ws", "account_all_orders"),
            ("ws", "account_all_trades"), ("ws", "account_all_positions")} <= names
    book = next(r.payload for r in records if r.name == "order_book")
    assert book["type"] == "subscribed/order_book" and book["channel"] == "order_book:1"

    text = recorded.read_text()
    for _key_index, private in sim.accounts.values():
        assert private not in text and private.lower() not in text
    assert not re.search(r"\d+:10[12]:3:[0-9a-fA-F]{8}", text), "an auth token was recorded"
    assert f"{len(records)} payloads recorded in {recorded}" in result.run.out


async def test_a_wrong_key_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    other, _public, err = lighter.create_api_key()
    assert err is None
    result = await preflight(sim, tmp_path / "key", env={"LIGHTER_API_SECRET_A": other.removeprefix("0x")})

    assert result.run.code == EXIT_PREFLIGHT
    assert result.verdict("api key A") == "FAIL" and "does not match" in result.line("api key A")
    assert "do: use the private key registered for account 101 key 3" in result.line("api key A")
    assert result.verdict("api key B") == "PASS"
    assert result.verdict("channels A") == "SKIP" and result.verdict("channels B") == "PASS"
    assert other.removeprefix("0x") not in result.run.out + result.run.err


async def test_the_wrong_tier_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)  # the simulator's test accounts are premium
    result = await preflight(sim, tmp_path / "tier", exchange={"tier": "standard"})

    assert result.run.code == EXIT_PREFLIGHT
    for name, account in (("tier A", 101), ("tier B", 102)):
        assert result.verdict(name) == "FAIL"
        assert f"exchange.tier is standard but account {account} is premium" in result.line(name)
        assert "accountLimits user_tier premium" in result.line(name)
        assert "do: set exchange.tier: premium" in result.line(name)


async def test_a_quantity_below_the_market_minimum_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    result = await preflight(sim, tmp_path / "qty", strategy={"quantity": "0.0001"})

    assert result.run.code == EXIT_PREFLIGHT
    assert result.verdict("quantity") == "FAIL"
    assert "0.0001 BTC is below the market's minimum order size 0.00020" in result.line("quantity")
    assert "do: set strategy.quantity (or --quantity) to at least 0.00020" in result.line("quantity")


async def test_an_unreachable_websocket_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    dead = f"ws://127.0.0.1:{free_port()}/stream"
    result = await preflight(sim, tmp_path / "ws", exchange={"ws_url": dead})

    assert result.run.code == EXIT_PREFLIGHT
    assert result.verdict("rest") == "PASS"
    assert result.verdict("websocket") == "FAIL" and f"{dead} cannot be reached" in result.line("websocket")
    assert "do: check exchange.ws_url" in result.line("websocket")
    assert result.verdict("channels A") == "SKIP" and result.verdict("frames") == "SKIP"


async def test_a_frame_the_adapter_cannot_parse_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    # Held by the simulator until a connection subscribes to account_all_orders, then sent right after the
    # snapshot: it reaches the watch of A or of B, whichever subscribes first.
    await sim.faults(inject_ws_frame={"channel": "account_all_orders", "text": UNPARSABLE_ORDER, "count": 1})
    result = await preflight(sim, tmp_path / "frame")

    assert result.run.code == EXIT_PREFLIGHT
    assert result.verdict("frames") == "FAIL"
    assert "the adapter could not read 1 part(s) of" in result.line("frames")
    assert "order: " in result.line("frames")
    assert "do: run again with --record FILE.jsonl" in result.line("frames")


async def test_a_book_continuity_break_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await moving_sim(sim_factory)
    # The next update of the venue's book skips nonces: it must happen while preflight watches.
    result = await preflight(sim, tmp_path / "gap",
                             watching=lambda: sim.faults(book_gap={"market_id": 1, "count": 1}))

    assert result.run.code == EXIT_PREFLIGHT
    assert result.verdict("book continuity") == "FAIL"
    assert re.search(r"break\(s\) in \d+ updates \(begin_nonce = the previous nonce\): begin_nonce \d+ after "
                     r"nonce \d+", result.line("book continuity"))


@pytest.mark.parametrize("seconds", ["0", "-1", "x"])
def test_bad_seconds_is_an_argument_error(
    seconds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process: argparse's check is the same code as in the child process (the exit code of which the other
    # tests here see), without seconds of lighter-sdk imports per value.
    with pytest.raises(SystemExit) as exited:
        ctl.main(["preflight", "--config", str(tmp_path / "none.yaml"), "--seconds", seconds])
    assert exited.value.code == 2 and "argument error: argument --seconds" in capsys.readouterr().err

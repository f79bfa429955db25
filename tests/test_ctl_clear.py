"""`hedgectl clear` against the simulator, a real Redis and the real SDK: the close-all with its second round.

The pair starts with a position and a resting order on each account. Faults come from the simulator
(`reject_next_sendtx` / `reject_sendtx_probability` filtered by account); nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hedge_strategy.exchange import Purpose, Role, Side, make_coid, parse_coid
from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, ABFactory
from tests.fixtures.sim import SimStream
from tests.test_ctl_status_kit import CtlRun, actions_lines, connect, open_positions, run_hedgectl

MARGIN_CODE = 21130
INJECTED_CODE = 29500
WAIT_S = 20.0


async def test_clear_flattens_both_with_a_second_round_for_a_rejected_close(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    # B rests nothing, so its cancel-all is refused once (then nothing is listed: no second send) and the
    # second refusal hits B's first close IOC and nothing else. No B runs: clear finds no heartbeat.
    placed = await open_positions(ab, resting_on=(A_ACCOUNT,))
    await ab.sim.faults(reject_next_sendtx=2, account_index=B_ACCOUNT, code=INJECTED_CODE,
                        message="injected failure")
    run = await run_hedgectl("clear", "--retry-wait", "0.3", "--idle-timeout", "30", "--json", "--config",
                             str(ab.config_path))
    assert run.code == 0, run.err
    assert placed.resting[A_ACCOUNT] not in [o["client_order_index"] for o in await ab.open_orders(A_ACCOUNT)]

    report = run.json()
    assert report["success"] is True
    assert report["cancels"]["A"]["ok"] is True and report["cancels"]["B"]["ok"] is True
    assert report["bIdle"].startswith("not running") and report["supersededRequests"] == 0
    assert "released" in report["bHold"] and await ab.bus.hedger_hold() is None
    assert (report["totalPositions"], report["closedCount"], report["failedCount"]) == (2, 2, 0)
    assert (report["retryCount"], report["retrySuccess"]) == (1, 1)
    assert "second round: 1/1 closed" in report["message"]
    by_try = {(r["account"], r["attempt"]): r for r in report["results"]}
    assert set(by_try) == {("A", 1), ("B", 1), ("B", 2)}
    a1, b1, b2 = by_try["A", 1], by_try["B", 1], by_try["B", 2]
    assert (a1["status"], a1["side"], a1["size"], a1["symbol"]) == ("success", "long", "0.00040", "BTC")
    assert (b1["status"], b1["code"], b1["side"], b1["size"]) == ("failed", INJECTED_CODE, "short", "0.00020")
    assert "injected failure" in b1["message"]
    assert (b2["status"], b2["code"], b2["attempt"]) == ("success", None, 2)
    assert b2["message"].startswith("retry succeeded")
    for entry in (a1, b1, b2):
        assert Decimal(entry["avgEntryPrice"]) > 0 and "unrealizedPnl" in entry
    # Every close order was the operator's (close intent); B's retry got a fresh client order index.
    coids = [c for r in report["results"] for c in r["orders"]]
    assert len(coids) == 3 and len(set(b1["orders"] + b2["orders"])) == 2
    assert all(parse_coid(c)[:2] == (Role.OPERATOR, Purpose.CLOSE) for c in coids)

    # The exchange agrees: flat, nothing resting; A stays paused and says how to resume.
    for account in (A_ACCOUNT, B_ACCOUNT):
        assert await ab.position(account) == 0
        assert await ab.open_orders(account) == []
    assert report["finalCheck"]["flat"] is True and report["finalCheck"]["resting"] == 0
    pause = await ab.bus.get_pause()
    assert pause is not None and pause.by == "ctl" and "hedgectl clear" in pause.reason
    assert "hedgectl resume" in report["pause"]

    (line,) = actions_lines(ab)
    assert line["action"] == "close_all_positions" and "T" in line["timestamp"]
    assert line["details"]["firstRoundSuccess"] == 1 and line["details"]["firstRoundFailed"] == 1
    assert line["details"]["finalSuccessCount"] == 2 and line["details"]["finalFailedCount"] == 0
    assert line["result"]["status"] == "completed" and line["result"]["results"] == report["results"]

    # A second clear finds nothing to do and appends a second line.
    again = await run_hedgectl("clear", "--json", "--retry-wait", "0", "--config", str(ab.config_path))
    assert again.code == 0, again.err
    assert again.json()["totalPositions"] == 0 and again.json()["results"] == []
    assert len(actions_lines(ab)) == 2

    # A later clear numbers its orders after the earlier runs' (the sequence lives in the operator journal).
    account = await connect(ab.sim, A_ACCOUNT)
    try:
        market = account.market("BTC")
        book = await account.top_of_book(market)
        assert book.best_ask is not None
        taken = await account.place_ioc(market, Side.BUY, Decimal("0.0002"), book.best_ask,
                                        make_coid(Role.A, Purpose.REBALANCE, 9))
        assert taken.accepted, taken
    finally:
        await account.close()
    third = await run_hedgectl("clear", "--json", "--retry-wait", "0", "--config", str(ab.config_path))
    assert third.code == 0, third.err
    (entry,) = third.json()["results"]
    assert entry["account"] == "A" and entry["status"] == "success"
    assert min(parse_coid(c)[2] for c in entry["orders"]) > max(parse_coid(c)[2] for c in a1["orders"])


async def test_a_position_that_cannot_be_closed_is_reported_with_its_code(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    placed = await open_positions(ab)
    # Every transaction of B is refused for margin: its cancel-all and both close rounds.
    await ab.sim.faults(reject_sendtx_probability=1.0, account_index=B_ACCOUNT, code=MARGIN_CODE,
                        message="not enough margin")
    run = await run_hedgectl("clear", "--json", "--retry-wait", "0.2", "--config", str(ab.config_path))
    assert run.code == 6, run.err
    report = run.json()
    assert report["success"] is False
    assert (report["totalPositions"], report["closedCount"], report["failedCount"]) == (2, 1, 1)
    assert (report["retryCount"], report["retrySuccess"]) == (1, 0)
    b_tries = [r for r in report["results"] if r["account"] == "B"]
    assert [r["attempt"] for r in b_tries] == [1, 2]  # retried once, not forever
    for entry in b_tries:
        assert entry["status"] == "failed" and entry["code"] == MARGIN_CODE
        assert "not enough margin" in entry["message"]
    assert b_tries[1]["message"].startswith("retry failed")
    assert report["cancels"]["B"]["ok"] is False and report["cancels"]["B"]["code"] == MARGIN_CODE
    assert report["cancels"]["A"]["ok"] is True
    final = report["finalCheck"]
    assert final["flat"] is False and final["resting"] == 1
    assert final["orders"]["B"] == [placed.resting[B_ACCOUNT]]
    # A was closed; B still holds its position and its order.
    assert await ab.position(A_ACCOUNT) == 0
    assert await ab.position(B_ACCOUNT) == placed.positions[B_ACCOUNT]
    (line,) = actions_lines(ab)
    assert line["result"]["status"] == "incomplete" and line["details"]["finalFailedCount"] == 1


async def test_clear_without_a_secret_exits_2_and_closes_nothing(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    placed = await open_positions(ab)
    run = await run_hedgectl("clear", "--config", str(ab.config_path),
                             env={"LIGHTER_API_SECRET_B": "not-a-key"})
    assert run.code == 2
    assert "LIGHTER_API_SECRET_B" in run.err and "nothing was cancelled or closed" in run.err
    assert await ab.position(B_ACCOUNT) == placed.positions[B_ACCOUNT]
    assert await ab.position(A_ACCOUNT) == placed.positions[A_ACCOUNT]


def _start_clear(ab: AB, *argv: str) -> asyncio.Future[CtlRun]:
    return asyncio.ensure_future(run_hedgectl("clear", *argv, "--config", str(ab.config_path)))


async def _expect_cancelled(stream: SimStream, coid: int) -> None:
    """Wait for the stream update saying the order `coid` ended (cancelled by clear's cancel-all)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await stream.expect("update/account_all_orders", wait_s=WAIT_S)
            for orders in frame["orders"].values():
                for order in orders:
                    if order["client_order_index"] == coid and order["status"].startswith("canceled"):
                        return


async def test_clear_outlasts_a_rate_limit_longer_than_a_reads_own_retries(ab_factory: ABFactory) -> None:
    """A 429 burst on the open-orders read outlasts the read's own retries (6 tries): clear starts over from
    the exchange's state instead of exiting 5, and ends with both accounts flat."""
    ab = await ab_factory()
    await open_positions(ab, resting_on=(A_ACCOUNT,))
    await ab.sim.faults(http_error_next=8, status=429, paths=["/api/v1/accountActiveOrders"])
    run = await run_hedgectl("clear", "--retry-wait", "0.3", "--idle-timeout", "30", "--json", "--config",
                             str(ab.config_path))
    assert run.code == 0, run.err
    assert "starting over from the exchange's state" in run.err
    report = run.json()
    assert report["success"] is True and report["finalCheck"]["flat"] is True
    assert (await ab.sim.admin("GET", "/sim/faults"))["faults"]["http_error_next"] is None  # all 8 answered
    for account in (A_ACCOUNT, B_ACCOUNT):
        assert await ab.position(account) == 0
        assert await ab.open_orders(account) == []

"""`hedgectl report` against journals written by A and B themselves (one forced open/close cycle through the
simulator, hedged by B over a real Redis). The expected numbers are computed here, independently, from the
trades the simulator recorded for each account.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, ABFactory
from tests.test_ctl_status_kit import run_hedgectl

FEE_RATE_UNIT = Decimal("0.000001")  # trade fees are rates in millionths of notional (tests/wire/README.md)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def run_one_cycle(ab: AB) -> None:
    """A buys (forced taker sell into its bid), B sells; A sells (forced taker buy), B buys back."""
    b = await ab.start_b()
    a = await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0002"))
    await ab.fill_a("sell")
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    await ab.events.wait("a", "order_placed", side="sell", size=Decimal("0.0002"))
    await ab.fill_a("buy")
    await ab.events.wait("a", "hedge_outcome_received", count=2, state="filled")
    assert await a.stop() == 0
    assert await b.stop() == 0  # journals flushed and closed


async def fills_of(ab: AB, account: int) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """(side, size, price, fee) of each trade of `account`, oldest first, as the simulator recorded them."""
    state = await ab.sim.state()
    fills = []
    for trade in sorted(state["accounts"][str(account)]["fills"], key=lambda t: t["trade_id"]):
        side = "buy" if trade["bid_account_id"] == account else "sell"
        maker = trade["is_maker_ask"] == (side == "sell")
        size, price = Decimal(trade["size"]), Decimal(trade["price"])
        fee = Decimal(trade.get("maker_fee" if maker else "taker_fee", 0)) * FEE_RATE_UNIT * size * price
        fills.append((side, size, price, fee))
    return fills


def expected_account(fills: list[tuple[str, Decimal, Decimal, Decimal]]) -> dict[str, Decimal]:
    # One round trip of equal sizes: the PnL is the sell value minus the buy value.
    (first, second) = fills
    assert first[1] == second[1] and {first[0], second[0]} == {"buy", "sell"}
    buy = first if first[0] == "buy" else second
    sell = second if buy is first else first
    return {
        "volume_base": first[1] + second[1],
        "volume_quote": first[1] * first[2] + second[1] * second[2],
        "fees": first[3] + second[3],
        "realized_pnl": sell[1] * sell[2] - buy[1] * buy[2],
    }


async def test_report_numbers_match_the_forced_fills_and_the_plot_is_a_png(
    ab_factory: ABFactory, tmp_path: Path
) -> None:
    ab = await ab_factory()
    await run_one_cycle(ab)
    a_fills, b_fills = await fills_of(ab, A_ACCOUNT), await fills_of(ab, B_ACCOUNT)
    expected = {"A": expected_account(a_fills), "B": expected_account(b_fills)}

    plot = tmp_path / "out" / "report.png"
    run = await run_hedgectl("report", "--json", "--plot", str(plot), "--config", str(ab.config_path))
    assert run.code == 0, run.err
    report = run.json()
    assert report["cycles_completed"] == 1
    assert report["pnl_method"].startswith("FIFO")
    for role, want in expected.items():
        got = report["accounts"][role]
        assert got["fills"] == 2
        assert Decimal(got["volume_base"]["BTC"]) == want["volume_base"]
        assert Decimal(got["volume_quote"]) == want["volume_quote"]
        assert Decimal(got["fees"]) == want["fees"]
        assert Decimal(got["realized_pnl"]) == want["realized_pnl"]
        assert Decimal(got["net_pnl"]) == want["realized_pnl"] - want["fees"]
        assert got["open_position"] == {}
    combined = report["combined"]
    assert Decimal(combined["realized_pnl"]) == expected["A"]["realized_pnl"] + expected["B"]["realized_pnl"]
    assert Decimal(combined["fees"]) == expected["A"]["fees"] + expected["B"]["fees"]

    # Slippage of each hedge against A's fill, positive = cost.
    a_buy, a_sell = _by_side(a_fills)
    b_sell, b_buy = _by_side(b_fills)[::-1]
    want_bps = sorted([
        float(((a_buy[2] - b_sell[2]) / a_buy[2] * 10_000).quantize(Decimal("0.001"))),
        float(((b_buy[2] - a_sell[2]) / a_sell[2] * 10_000).quantize(Decimal("0.001"))),
    ])
    slippage = report["slippage_bps"]
    assert slippage["count"] == 2
    assert sorted(h["bps"] for h in slippage["hedges"]) == want_bps

    # Two hedged fills, every stage measured, stages in the order they happen.
    assert report["hedges"] == {"outcomes": 2, "filled": 2, "failed": 0}
    stages = report["latency_ms"]["stages"]
    assert all(stages[s]["count"] == 2 for s in stages), stages
    order = ["request_published", "request_received", "hedge_sent", "hedge_filled"]
    medians = [stages[s]["p50"] for s in order]
    assert medians == sorted(medians) and medians[0] >= 0, stages

    data = plot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000

    # --since in the future: nothing in the period; a bad --since is an argument error.
    later = await run_hedgectl("report", "--json", "--since", "2999-01-01T00:00:00+00:00",
                               "--config", str(ab.config_path))
    assert later.code == 0, later.err
    assert later.json()["accounts"]["A"]["fills"] == 0 and later.json()["slippage_bps"]["count"] == 0
    recent = await run_hedgectl("report", "--json", "--since", "1h", "--config", str(ab.config_path))
    assert recent.json()["accounts"] == report["accounts"]
    bad = await run_hedgectl("report", "--since", "yesterday", "--config", str(ab.config_path))
    assert bad.code == 2 and "--since" in bad.err


def _by_side(fills: list[Any]) -> tuple[Any, Any]:
    buy = next(f for f in fills if f[0] == "buy")
    sell = next(f for f in fills if f[0] == "sell")
    return buy, sell

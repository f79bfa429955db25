"""The adapter's running count of rate-limit backoffs (429 answers waited out), which the processes copy
into `lighter_hedge_rate_limit_backoffs_total`: real 429s from the simulator's fault route, the real SDK."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from hedge_strategy.exchange import Purpose, Role, Side, make_coid
from hedge_strategy.observe import HedgeMetrics
from tests.fixtures.procs import free_port
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import Opener, open_account

__all__ = ["open_account"]

SIZE = Decimal("0.0002")


def backoffs_in(metrics: HedgeMetrics) -> float:
    text = metrics.render().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "lighter_hedge_rate_limit_backoffs_total")


async def test_backoffs_of_sends_and_reads_are_counted_per_account(sim: SimProcess,
                                                                   open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    other, _ = await open_account(sim, account_index=102, books=())
    btc = account.market("BTC")
    assert account.rate_limit_backoffs == 0

    await sim.faults(http_error_next=2, status=429, paths=["/api/v1/sendTx"])
    coid = make_coid(Role.A, Purpose.MAKER, 1)
    assert (await account.place_post_only(btc, Side.BUY, SIZE, Decimal("90000.0"), coid)).accepted
    assert account.rate_limit_backoffs == 2

    await sim.faults(http_error_next=1, status=429, paths=["/api/v1/account"])
    assert await account.positions() == {}
    assert account.rate_limit_backoffs == 3
    assert other.rate_limit_backoffs == 0  # each account counts its own

    metrics = HedgeMetrics("p", "a", port=free_port())
    metrics.sync_rate_limit_backoffs(account.rate_limit_backoffs)
    assert backoffs_in(metrics) == 3
    metrics.sync_rate_limit_backoffs(account.rate_limit_backoffs)  # nothing new: the counter stays
    assert backoffs_in(metrics) == 3

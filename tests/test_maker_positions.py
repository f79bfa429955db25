"""Where A's cycle takes the positions of A and B from (`maker_positions.py`), and B's published position,
fast: a fake executor whose venue counts REST reads of positions, Redis, and B's heartbeat and outcomes
written by the test (`fixtures/fake_orders.py`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedge_strategy.bus import FILLED, HedgeOutcome, PositionReport, now_ms
from hedge_strategy.maker_positions import PositionSource
from tests.fixtures.fake_orders import A_ACCOUNT, B_ACCOUNT, BTC, UnitFactory, UnitKit
from tests.test_hedger_unit import a_bought, handle

SIZE = Decimal("0.0002")


def report(size: Decimal = Decimal(0), age_ms: int = 0) -> PositionReport:
    return PositionReport(market_id=BTC.market_id, size=size, as_of_ms=now_ms() - age_ms)


async def a_with_b(unit_factory: UnitFactory, position: PositionReport | None) -> UnitKit:
    """A, with B's heartbeat up carrying `position` (None: a B that publishes none, an older release)."""
    kit = await unit_factory("a")
    beat: dict[str, Any] = {"pid": 0}
    if position is not None:
        beat["position"] = position.to_wire()
    await kit.peer.beat("b", 60, beat)
    return kit


def outcome(published_ms: int, b_position: PositionReport | None = None) -> HedgeOutcome:
    return HedgeOutcome(
        pair="unit", request_ids=("r1",), status=FILLED, market="BTC", side="sell", requested_size=SIZE,
        filled_size=SIZE, avg_price=Decimal("95000"), attempts=1, reason=None, hedge_client_order_indexes=(),
        received_ts_ms=published_ms, sent_ts_ms=published_ms, filled_ts_ms=published_ms, latency_ms=1.0,
        publish_ts_ms=published_ms, b_position=b_position)


async def test_a_cycle_reads_no_position_over_rest_when_both_streams_can_say_it(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b(unit_factory, report())
    await kit.maker().cycle()
    assert kit.orders.account.rest_reads == []  # before issue 10: [A, B] every cycle
    assert len(kit.orders.sent) == 1  # flat: it traded


async def test_without_b_published_position_a_reads_b_over_rest(unit_factory: UnitFactory) -> None:
    kit = await a_with_b(unit_factory, None)  # an older B: no "position" in its heartbeat
    await kit.maker().cycle()
    assert kit.orders.account.rest_reads == [B_ACCOUNT]
    assert len(kit.orders.sent) == 1


async def test_a_stream_that_has_not_caught_up_with_a_fill_is_read_over_rest(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b(unit_factory, report(-SIZE))
    kit.orders.stream_lags = True
    kit.orders.account.positions_by_account.update({A_ACCOUNT: SIZE, B_ACCOUNT: -SIZE})
    await kit.maker().cycle()
    assert kit.orders.account.rest_reads == [A_ACCOUNT]
    assert kit.orders.sent[0].reduce_only  # A long from REST: it sells to close


async def test_a_stale_or_older_than_the_last_outcome_report_is_not_used(unit_factory: UnitFactory) -> None:
    kit = await a_with_b(unit_factory, None)
    source = kit.maker().hedges.positions
    max_age_ms = int(kit.config.strategy.b_position_max_age_s * 1000)
    source.heard_heartbeat({"position": report(age_ms=max_age_ms + 1000).to_wire()})
    assert source.b_published() is None  # too old
    fresh = report(age_ms=100)
    source.heard_heartbeat({"position": fresh.to_wire()})
    assert source.b_published() == 0
    source.take_outcome(outcome(fresh.as_of_ms + 50))  # a hedge after it, published without a position
    assert source.b_published() is None
    await source.both()
    assert kit.orders.account.rest_reads == [B_ACCOUNT]
    later = report(-SIZE)
    source.take_outcome(outcome(later.as_of_ms, b_position=later))  # the outcome's own: the newest
    assert source.b_published() == -SIZE
    source.heard_heartbeat({"position": {"market_id": 1, "size": "lots"}})  # logged and skipped
    assert source.b_published() == -SIZE


async def test_an_imbalance_seen_on_the_streams_is_read_again_over_rest_before_acting(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b(unit_factory, report(-SIZE))  # B says short; the exchange says flat
    maker = kit.maker()
    await maker.cycle()
    assert kit.orders.account.rest_reads == [A_ACCOUNT, B_ACCOUNT]  # the recheck: both from the exchange
    assert kit.orders.sent == [] and not maker.outstanding  # flat on the exchange: no residual hedge


async def test_the_cross_check_settles_a_disagreement_for_the_exchange(unit_factory: UnitFactory,
                                                                      log_lines: list[str]) -> None:
    kit = await a_with_b(unit_factory, None)
    busy = [False]
    source = PositionSource(kit.runtime("a"), busy=lambda: busy[0])
    venue = kit.orders.account
    source.heard_heartbeat({"position": report().to_wire()})
    venue.positions_by_account[B_ACCOUNT] = -SIZE  # B's stream missed something
    assert await source.cross_check_b() == -SIZE
    assert source.b_published() is None  # B over REST until they agree again
    said = [line for line in log_lines if "the exchange says" in line]
    assert len(said) == 1 and said[0].startswith("WARNING")

    source.heard_heartbeat({"position": report(-SIZE).to_wire()})  # B's reconciliation fixed it
    assert source.b_published() is None  # still distrusted: only a cross-check lifts it
    assert await source.cross_check_b() == -SIZE
    assert source.b_published() == -SIZE

    busy[0] = True  # a hedge outstanding: B's position is moving, nothing is compared
    venue.positions_by_account[B_ACCOUNT] = Decimal(0)
    assert await source.cross_check_b() == 0
    assert source.b_published() == -SIZE
    assert venue.rest_reads == [B_ACCOUNT] * 3


async def test_b_publishes_its_position_with_the_outcome_once_its_stream_shows_it(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    kit.orders.ioc_fills = [SIZE]
    kit.orders.account.positions_by_account[B_ACCOUNT] = -SIZE  # what B's stream says after the hedge
    hedger = kit.hedger()
    request = a_bought(kit, 31)
    published = (await handle(kit, hedger, request))[request.request_id]
    assert published.b_position is not None
    assert (published.b_position.market_id, published.b_position.size) == (BTC.market_id, -SIZE)
    assert published.b_position.as_of_ms >= published.filled_ts_ms  # not before the hedge filled
    heartbeat = hedger.position_report()
    assert heartbeat is not None and heartbeat.size == -SIZE


async def test_b_publishes_no_position_while_its_stream_lags(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    kit.orders.ioc_fills = [SIZE]
    kit.orders.stream_lags = True
    hedger = kit.hedger()
    started = kit.clock.now
    request = a_bought(kit, 32)
    published = (await handle(kit, hedger, request))[request.request_id]
    assert published.status == FILLED and published.b_position is None  # A reads B over REST
    assert kit.clock.now > started  # it waited (bounded) for the stream first
    assert hedger.position_report() is None  # nor in the heartbeat

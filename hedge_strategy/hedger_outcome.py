"""B's outcome of one hedge (`hedger.Hedger._publish` publishes it): what it says, B's position from its own
stream (for A, so A need not read B over REST every cycle), and the latency stages it records.

B's position, from its own stream, goes to A in each outcome and in the heartbeat (`bus.PositionReport`): only
when B's stream can say it (`OrderExecutor.stream_position`), and an outcome waits up to `POSITION_WAIT_S` for
the position to show the hedge's fills (it is published without one otherwise: A then reads B over REST).
"""

from __future__ import annotations

from decimal import Decimal

from loguru import logger

from hedge_strategy.bus import FAILED, FILLED, HedgeOutcome, PositionReport, now_ms
from hedge_strategy.hedger_jobs import HedgeJob
from hedge_strategy.runtime import Runtime

# How long an outcome waits for B's streamed position to show the hedge's fills: the position frame follows
# the trade frame at once (venue captures, simulator), so this only bounds a lagging or broken stream.
POSITION_WAIT_S = 0.25


def position_report(rt: Runtime, market_id: int | None = None) -> PositionReport | None:
    """B's position as its stream says it now, when it can be acted on; else None."""
    market_id = rt.market.market_id if market_id is None else market_id
    size = rt.orders.stream_position(market_id)
    return None if size is None else PositionReport(market_id=market_id, size=size, as_of_ms=now_ms())


def wire(report: PositionReport | None) -> dict[str, object] | None:
    return report.to_wire() if report is not None else None


async def position_after(rt: Runtime, job: HedgeJob) -> PositionReport | None:
    """B's position once its stream shows the hedge's fills (bounded by `POSITION_WAIT_S`), else None."""
    market_id = job.market.market_id
    if await rt.orders.wait_stream_position(market_id, POSITION_WAIT_S) is None:
        logger.info("B: its stream did not show its position in {:g} s; the outcome of {} goes without "
                    "it (A reads B's position over REST)", POSITION_WAIT_S, job.label)
        return None
    return position_report(rt, market_id)


async def outcome_of(rt: Runtime, job: HedgeJob) -> HedgeOutcome:
    """The outcome of `job` as its chase ended: filled completely, or failed with the reason."""
    done = job.chase
    ok = done.failure is None and done.remaining == 0
    publish_ts = [r.publish_ts_ms for r in job.requests if r.publish_ts_ms]
    latency = (done.sent_ms - min(publish_ts)) if done.sent_ms and publish_ts else None
    avg = done.avg_price
    return HedgeOutcome(
        pair=rt.config.pair, request_ids=tuple(job.request_ids), status=FILLED if ok else FAILED,
        market=job.market.symbol, side=job.side.value, requested_size=job.size, filled_size=done.filled,
        avg_price=avg.quantize(Decimal(1).scaleb(-(job.market.price_decimals + 4))) if avg else None,
        attempts=len(done.attempts), reason=None if ok else done.failure,
        hedge_client_order_indexes=tuple(o.client_order_index for o in done.attempts),
        received_ts_ms=job.received_ms, sent_ts_ms=done.sent_ms, filled_ts_ms=now_ms() if ok else None,
        latency_ms=float(max(latency, 0)) if latency is not None else None,
        b_position=await position_after(rt, job),
    )


def observe_stages(rt: Runtime, job: HedgeJob, outcome: HedgeOutcome) -> None:
    """Latency of each fill this hedge covered, from the fill's exchange time (residuals have none)."""
    stages = (("request_received", outcome.received_ts_ms), ("hedge_sent", outcome.sent_ts_ms),
              ("hedge_filled", outcome.filled_ts_ms))
    for request in job.requests:
        if request.is_residual or not request.fill_ts_ms:
            continue
        for stage, at_ms in stages:
            if at_ms:
                rt.metrics.observe_since_fill(stage, request.fill_ts_ms, at_ms)

"""What `hedgectl clear` does to B: hold it, wait until it is held, supersede the requests left, release it.

Clear is about to flatten both accounts, so a hedge request still waiting (unread in the stream, or read and
not answered) must never be hedged afterwards: B would reopen a position. Each is answered `failed` with
`SUPERSEDED_REASON`, stored and acknowledged through the bus like any outcome of B, so A sees it answered
and a B started later finds nothing to hedge. A request that already has a stored outcome is only
acknowledged.
"""

from __future__ import annotations

from loguru import logger

from hedge_strategy.bus import Bus, Delivery, HedgeOutcome, PauseState

HELD_BY = "ctl"
HOLD_REASON = "close-all in progress (hedgectl clear)"
SUPERSEDED_REASON = "superseded by hedgectl clear (positions closed)"
CLEAR_CONSUMER = "hedgectl-clear"
BATCH = 100


async def hold_b(bus: Bus) -> PauseState:
    return await bus.hold_hedger(HOLD_REASON, by=HELD_BY)


async def wait_b_held(bus: Bus, hold: PauseState, timeout_s: float) -> tuple[str, bool]:
    """Wait (bounded) until B honours `hold` and is idle, or is not running (`Bus.wait_hedger_held`)."""
    seen, settled = await bus.wait_hedger_held(hold, timeout_s)
    if not settled:
        seen += "; closed anyway, requests it holds left to it, see the final check"
    return seen, settled


async def supersede_pending(bus: Bus, include_in_hand: bool) -> int:
    """Answer `failed` (superseded) every request still waiting; returns how many were answered.

    Unread requests are read by clear's own consumer of the group; read-but-unanswered ones are claimed from
    their consumer, only when `include_in_hand` (B settled: it is not working on them).
    """
    await bus.ensure_group()
    superseded = 0
    if include_in_hand:
        superseded += await _answer(bus, await bus.claim_stale(CLEAR_CONSUMER, min_idle_ms=0))
    while batch := await bus.read_requests(CLEAR_CONSUMER, count=BATCH, block_ms=None):
        superseded += await _answer(bus, batch)
    return superseded


async def _answer(bus: Bus, deliveries: list[Delivery]) -> int:
    by_request: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_request.setdefault(delivery.request.request_id, []).append(delivery)
    stored = await bus.get_outcomes(by_request)
    answered = 0
    for request_id, group in by_request.items():
        if request_id in stored:
            await bus.ack(*group)  # B answered it already: only the acknowledgement was missing
            continue
        request = group[0].request
        await bus.publish_outcome(HedgeOutcome.unhedged(request, SUPERSEDED_REASON), ack=group)
        logger.warning("clear: hedge request {} ({} {} {}) answered failed: {}", request_id, request.side,
                       request.size, request.market, SUPERSEDED_REASON)
        answered += 1
    return answered


async def release_b(bus: Bus) -> str:
    """Lift clear's hold: B has nothing left to reopen."""
    await bus.release_hedger()
    return "B released (it reads hedge requests again)"

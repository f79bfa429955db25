"""B's hedge jobs: the client order indexes of a hedge, one hedge's requests and chase, and the netting of a
batch into hedges (`hedger.Hedger` runs them)."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from decimal import Decimal

from hedge_strategy import chase
from hedge_strategy.bus import Delivery, HedgeRequest, now_ms
from hedge_strategy.exchange import MarketInfo, Purpose, Role, Side, Traded, derived_number, make_coid
from hedge_strategy.execution.chase_loop import MAX_RESENDS, Chase, PriceGuard


def hedge_coid(first_request_id: str, attempt: int, resend: int = 0) -> int:
    """The client order index of attempt `attempt` of the hedge that starts with `first_request_id`; `resend`
    numbers the sends of that attempt again after transport trouble (0: its first send)."""
    suffix = f".{resend}" if resend else ""
    return make_coid(Role.B, Purpose.HEDGE, derived_number(f"{first_request_id}#{attempt}{suffix}"))


def attempt_numbers(first_request_id: str, retry_times: int) -> dict[int, tuple[int, int]]:
    """Every client order index a hedge starting with `first_request_id` can have sent -> (attempt,
    re-send)."""
    return {hedge_coid(first_request_id, attempt, resend): (attempt, resend)
            for attempt in range(1, retry_times + 1) for resend in range(MAX_RESENDS + 1)}


@dataclass
class HedgeJob:
    """One hedge order's worth of requests (netted), and where its chase stands."""

    request_ids: list[str]  # the first one names the client order indexes
    market: MarketInfo
    side: Side
    size: Decimal
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[HedgeRequest] = field(default_factory=list)
    received_ms: int = field(default_factory=now_ms)
    failure: InitVar[str | None] = None  # why it cannot be hedged at all
    guard: PriceGuard | None = None  # a hedge from the trade feed while Redis is silent: its wash guard
    from_feed: bool = False  # hedged from the trade feed (`hedger_feed`), ahead of A's request
    chase: Chase = field(init=False)

    def __post_init__(self, failure: str | None) -> None:
        self.chase = Chase(self.size, failure=failure)

    @property
    def label(self) -> str:
        return ", ".join(self.request_ids)


def traded_of(requests: list[HedgeRequest]) -> tuple[Traded, ...]:
    """A's fills the hedge covers, as trades the book may not show yet (`LocalBook.touch_after`): each
    consumed the side of the book B's IOC takes from (A bought: the bids B sells into). A residual names
    none."""
    return tuple(Traded(price=r.a_fill_price, size=r.size, ts_ms=r.fill_ts_ms,
                        maker_is_bid=r.side == Side.SELL.value,
                        trade_id=r.trade_ids[0] if len(r.trade_ids) == 1 else None)
                 for r in requests if r.trade_ids and r.a_fill_price is not None)


def net_requests(deliveries: list[Delivery]) -> list[tuple[list[HedgeRequest], list[Delivery]]]:
    """Group new deliveries into hedges: one per (market, side), requests in arrival order, each id once."""
    groups: dict[tuple[int, str], tuple[list[HedgeRequest], list[Delivery]]] = {}
    for delivery in deliveries:
        request = delivery.request
        requests, group_deliveries = groups.setdefault((request.market_id, request.side), ([], []))
        if all(r.request_id != request.request_id for r in requests):
            requests.append(request)
        group_deliveries.append(delivery)
    return list(groups.values())


def size_problem(market: MarketInfo, size: Decimal) -> str | None:
    """Why `size` cannot be sent at all (retrying would not help), or None."""
    if size != market.round_size_down(size):
        return f"size {size} is not a multiple of the lot {market.lot}"
    if size < market.min_base_amount:
        return f"size {size} is below the market minimum {market.min_base_amount}"
    if market.base_to_int(size) > chase.MAX_BASE_AMOUNT_LOTS:
        return (f"size {size} is above the largest an order can carry "
                f"({market.base_from_int(chase.MAX_BASE_AMOUNT_LOTS)})")
    return None

"""The numbers of `hedgectl report`, as pure functions of the journals' fills and the bus's messages.

- Volume, fees and realized PnL per account come from the fills (each trade once). Realized PnL is FIFO per
  market: a fill first closes the oldest open lots of the opposite sign; it is gross of fees (fees are
  reported beside it, and `net` = realized - fees). A still open position carries no realized PnL.
- A cycle is one round trip of A's position: it counts each time A's position in a market returns to zero
  (or crosses it) from a non-zero size.
- Hedge latency is measured per hedged fill from A's fill time on the exchange (`fill_ts_ms`) to each
  stage: fill seen by A, request published, request received by B, hedge sent, hedge filled (the timestamps
  the request and the outcome carry). Percentiles interpolate linearly between the closest ranks.
- Slippage of a hedge is B's average price against A's (size-weighted) fill price, in basis points of A's
  price, signed so that positive is a cost: B selling below A's buy, or buying above A's sell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedge_strategy.bus import FILLED, HedgeOutcome, HedgeRequest
from hedge_strategy.ops.journals import FillRow

STAGES = ("fill_seen", "request_published", "request_received", "hedge_sent", "hedge_filled")
BPS = Decimal(10_000)
ZERO = Decimal(0)


@dataclass
class FifoBook:
    """Open lots of one account in one market, oldest first: (signed size, price)."""

    lots: list[list[Decimal]] = field(default_factory=list)

    @property
    def position(self) -> Decimal:
        return sum((lot[0] for lot in self.lots), ZERO)

    def apply(self, signed_size: Decimal, price: Decimal) -> Decimal:
        """Add a fill; returns the PnL it realized by closing older lots."""
        realized = ZERO
        left = signed_size
        while left != 0 and self.lots and (self.lots[0][0] > 0) != (left > 0):
            lot = self.lots[0]
            matched = min(abs(left), abs(lot[0]))
            direction = 1 if lot[0] > 0 else -1  # a long lot gains when the closing price is higher
            realized += matched * (price - lot[1]) * direction
            lot[0] -= matched * direction
            left += matched * direction
            if lot[0] == 0:
                self.lots.pop(0)
        if left != 0:
            self.lots.append([left, price])
        return realized


@dataclass
class AccountFigures:
    role: str
    account_index: int
    fills: int = 0
    volume_base: dict[int, Decimal] = field(default_factory=dict)  # by market id
    volume_quote: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    books: dict[int, FifoBook] = field(default_factory=dict)
    # (ts_ms, cumulative quote volume, cumulative realized PnL) after each fill, for the plot
    series: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)

    def add(self, fill: FillRow) -> None:
        self.fills += 1
        self.volume_base[fill.market_id] = self.volume_base.get(fill.market_id, ZERO) + fill.size
        self.volume_quote += fill.size * fill.price
        self.fees += fill.fee
        book = self.books.setdefault(fill.market_id, FifoBook())
        self.realized_pnl += book.apply(fill.signed_size, fill.price)
        self.series.append((fill.ts_ms, self.volume_quote, self.realized_pnl))

    def to_json(self, symbols: dict[int, str]) -> dict[str, Any]:
        def name(market_id: int) -> str:
            return symbols.get(market_id, f"market {market_id}")

        return {
            "account_index": self.account_index,
            "fills": self.fills,
            "volume_base": {name(m): str(v) for m, v in sorted(self.volume_base.items())},
            "volume_quote": str(self.volume_quote),
            "fees": str(self.fees),
            "realized_pnl": str(self.realized_pnl),
            "net_pnl": str(self.realized_pnl - self.fees),
            "open_position": {name(m): str(b.position) for m, b in sorted(self.books.items())
                              if b.position != 0},
        }


def account_figures(role: str, account_index: int, fills: Iterable[FillRow]) -> AccountFigures:
    figures = AccountFigures(role, account_index)
    for fill in fills:
        figures.add(fill)
    return figures


def count_cycles(fills: Iterable[FillRow]) -> int:
    """Round trips of the position: each return to (or crossing of) zero from a non-zero size."""
    positions: dict[int, Decimal] = {}
    cycles = 0
    for fill in fills:
        before = positions.get(fill.market_id, ZERO)
        after = before + fill.signed_size
        positions[fill.market_id] = after
        if before != 0 and (after == 0 or (after > 0) != (before > 0)):
            cycles += 1
    return cycles


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, interpolating linearly between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stage_latencies(
    outcomes: Iterable[HedgeOutcome], requests: dict[str, HedgeRequest], since_ms: int = 0
) -> dict[str, list[float]]:
    """Milliseconds from each hedged fill to each stage, by stage."""
    latencies: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for outcome in outcomes:
        for request_id in outcome.request_ids:
            request = requests.get(request_id)
            if request is None or request.is_residual or not since_ms <= request.fill_ts_ms:
                continue
            at = {
                "fill_seen": request.seen_ts_us / 1000 if request.seen_ts_us else None,
                "request_published": request.publish_ts_ms or None,
                "request_received": outcome.received_ts_ms or None,
                "hedge_sent": outcome.sent_ts_ms,
                "hedge_filled": outcome.filled_ts_ms,
            }
            for stage, ts in at.items():
                if ts is not None:
                    latencies[stage].append(float(ts) - request.fill_ts_ms)
    return latencies


def latency_summary(latencies: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for stage, values in latencies.items():
        if not values:
            summary[stage] = {"count": 0, "p50": None, "p90": None, "p99": None}
            continue
        summary[stage] = {"count": len(values), **{f"p{q}": round(percentile(values, q / 100), 3)
                                                   for q in (50, 90, 99)}}
    return summary


def hedge_slippage(
    outcomes: Iterable[HedgeOutcome], requests: dict[str, HedgeRequest], since_ms: int = 0
) -> list[dict[str, Any]]:
    """Per filled hedge of A's fills: A's price, B's price, and the cost in bps (positive = cost)."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.status != FILLED or outcome.avg_price is None:
            continue
        covered = [requests[r] for r in outcome.request_ids if r in requests and not requests[r].is_residual]
        covered = [r for r in covered if r.a_fill_price is not None and r.fill_ts_ms >= since_ms]
        size = sum((r.size for r in covered), ZERO)
        if not covered or size == 0:
            continue
        a_price = sum((r.size * r.a_fill_price for r in covered if r.a_fill_price is not None), ZERO) / size
        b_price = outcome.avg_price
        # B sells what A bought: selling lower than A paid is the cost; B buys back what A sold: higher is.
        cost = (a_price - b_price) if outcome.side == "sell" else (b_price - a_price)
        rows.append({
            "request_ids": list(outcome.request_ids),
            "market": outcome.market,
            "b_side": outcome.side,
            "size": str(outcome.filled_size),
            "a_price": str(a_price),
            "b_price": str(b_price),
            "bps": float((cost / a_price * BPS).quantize(Decimal("0.001"))),
            "fill_ts_ms": max(r.fill_ts_ms for r in covered),
        })
    return rows


def slippage_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    values = [row["bps"] for row in rows]
    if not values:
        return {"count": 0, "mean_bps": None, "max_bps": None, "hedges": rows}
    return {"count": len(values), "mean_bps": round(sum(values) / len(values), 3), "max_bps": max(values),
            "hedges": rows}

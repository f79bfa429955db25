"""The figures of `bench/tiers.py`, computed from the simulator's records only (pure functions, no I/O).

Inputs: the simulator's `/sim/state` at the end of the window (each account's trades, its transaction log
with client order indexes, its open orders), the final status of each of A's orders (`accountInactiveOrders`),
and the simulator's log (its `answered 429` lines). Definitions:

- a *cycle* ends each time A's position comes back to zero;
- a *hedge* is an episode of |A + B| above the tolerance: it opens at the A fill that breaks the balance and
  closes at the B fill that restores it; B's IOCs are the create-order transactions of B that arrived during
  it (B nets several requests into one order, so an episode may cover several A fills);
- *naked time* of an A fill: from its trade to the B trade that completes its cover, B's fills matched to A's
  first in, first out by volume (B trades only to hedge A);
- *slippage* of a hedge: B's price against A's fill price on the matched volume, in bps, positive when B did
  worse (sold lower or bought higher), volume-weighted;
- *naked exposure*: the integral of |A + B| over the window (BTC·s), also per BTC A traded.
Trade times are the simulator's (ms); transaction arrivals are µs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

A_ACCOUNT, B_ACCOUNT, MARKET_ID = 101, 102, 1
TX_CREATE_ORDER = 14
TOLERANCE = Decimal("0.00001")  # the shipped strategy.flat_tolerance


@dataclass(frozen=True)
class Trade:
    account: int
    ts_ms: int
    trade_id: int
    size: Decimal  # signed for `account`: + bought, - sold
    price: Decimal


@dataclass
class Figures:
    window_s: float
    cycles: int = 0
    a_fills: int = 0
    a_volume_btc: Decimal = Decimal(0)
    a_notional_usd: Decimal = Decimal(0)
    a_orders: int = 0
    order_ends: Counter[str] = field(default_factory=Counter)
    hedges: int = 0
    b_iocs: int = 0
    b_orders: int = 0  # all of B's accepted create orders, within a hedge or not
    first_ioc_hedges: int = 0  # hedges done with one IOC
    naked_s: list[float] = field(default_factory=list)
    uncovered_at_end: int = 0  # A fills B had not covered when the window ended
    exposure_btc_s: float = 0.0
    slippage_bps: float | None = None
    http_429: int = 0
    http_429_by_key: Counter[str] = field(default_factory=Counter)
    a_final: Decimal = Decimal(0)
    b_final: Decimal = Decimal(0)
    paused: bool = False

    @property
    def orders_per_fill(self) -> float | None:
        return self.a_orders / self.a_fills if self.a_fills else None

    @property
    def post_only_share(self) -> float | None:
        return self.order_ends["canceled-post-only"] / self.a_orders if self.a_orders else None

    @property
    def iocs_per_hedge(self) -> float | None:
        return self.b_iocs / self.hedges if self.hedges else None

    @property
    def first_ioc_share(self) -> float | None:
        return self.first_ioc_hedges / self.hedges if self.hedges else None

    @property
    def exposure_per_btc_s(self) -> float | None:
        return self.exposure_btc_s / float(self.a_volume_btc) if self.a_volume_btc else None

    def naked(self, q: float) -> float | None:
        if not self.naked_s:
            return None
        ordered = sorted(self.naked_s)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def trades_of(state: Mapping[str, Any], account: int) -> list[Trade]:
    """`account`'s trades in the BTC market, oldest first, signed from its side."""
    trades = []
    for raw in state["accounts"][str(account)]["fills"]:
        if int(raw["market_id"]) != MARKET_ID:
            continue
        size = Decimal(raw["size"])
        for side_key, sign in (("bid_account_id", 1), ("ask_account_id", -1)):
            if int(raw[side_key]) == account:
                trades.append(Trade(account, int(raw["timestamp"]), int(raw["trade_id"]), sign * size,
                                    Decimal(raw["price"])))
    return sorted(trades, key=lambda t: (t.ts_ms, t.trade_id))


def created_orders(state: Mapping[str, Any], account: int) -> list[dict[str, Any]]:
    """The create-order transactions of `account` the simulator accepted, oldest first."""
    return [entry for entry in state["accounts"][str(account)]["tx_log"]
            if entry.get("tx_type") == TX_CREATE_ORDER and entry.get("result") == "accepted"]


def compute(state: Mapping[str, Any], a_order_status: Mapping[int, str], sim_log_lines: Iterable[str],
            window_s: float, end_ms: int, paused: bool) -> Figures:
    figures = Figures(window_s=window_s, paused=paused)
    a_trades, b_trades = trades_of(state, A_ACCOUNT), trades_of(state, B_ACCOUNT)
    _fills_and_cycles(figures, a_trades)
    figures.b_final = sum((t.size for t in b_trades), Decimal(0))
    _order_ends(figures, state, a_order_status)
    episodes = _episodes(figures, a_trades, b_trades, end_ms)
    _hedges(figures, episodes, created_orders(state, B_ACCOUNT))
    _cover(figures, a_trades, b_trades)
    for line in sim_log_lines:
        if "answered 429" in line:
            figures.http_429 += 1
            key = line.split("rate limit: ", 1)[-1].split(" ", 1)[0]
            figures.http_429_by_key[key] += 1
    return figures


def _fills_and_cycles(figures: Figures, a_trades: list[Trade]) -> None:
    position = Decimal(0)
    for trade in a_trades:
        figures.a_fills += 1
        figures.a_volume_btc += abs(trade.size)
        figures.a_notional_usd += abs(trade.size) * trade.price
        before, position = position, position + trade.size
        if before != 0 and position == 0:
            figures.cycles += 1
    figures.a_final = position


def _order_ends(figures: Figures, state: Mapping[str, Any], status: Mapping[int, str]) -> None:
    open_now = {int(o["client_order_index"])
                for o in state["accounts"][str(A_ACCOUNT)]["open_orders"].get(str(MARKET_ID), [])}
    for entry in created_orders(state, A_ACCOUNT):
        coid = int(entry["client_order_index"])
        figures.a_orders += 1
        figures.order_ends["open at the end" if coid in open_now else status.get(coid, "not found")] += 1


def _episodes(figures: Figures, a_trades: list[Trade], b_trades: list[Trade],
              end_ms: int) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of each closed imbalance; adds up the exposure integral on the way."""
    events = sorted([*a_trades, *b_trades], key=lambda t: (t.ts_ms, t.trade_id))
    net, since, last_ms = Decimal(0), None, events[0].ts_ms if events else end_ms
    episodes: list[tuple[int, int]] = []
    for trade in events:
        figures.exposure_btc_s += float(abs(net)) * (trade.ts_ms - last_ms) / 1000
        last_ms = trade.ts_ms
        net += trade.size
        if abs(net) > TOLERANCE and since is None:
            since = trade.ts_ms
        elif abs(net) <= TOLERANCE and since is not None:
            episodes.append((since, trade.ts_ms))
            since = None
    figures.exposure_btc_s += float(abs(net)) * max(0, end_ms - last_ms) / 1000
    return episodes


def _hedges(figures: Figures, episodes: list[tuple[int, int]], b_orders: list[dict[str, Any]]) -> None:
    arrivals = sorted(int(entry["arrival_us"]) / 1000 for entry in b_orders)
    figures.hedges, figures.b_orders = len(episodes), len(arrivals)
    for start_ms, end_ms in episodes:
        # Trade times are whole ms: an IOC arriving within the ms of the fill that opened the episode counts.
        iocs = sum(1 for at in arrivals if start_ms <= at < end_ms + 1)
        figures.b_iocs += iocs
        figures.first_ioc_hedges += iocs == 1


def _cover(figures: Figures, a_trades: list[Trade], b_trades: list[Trade]) -> None:
    """Naked time of each A fill and the slippage of its cover: B's fills matched to A's by volume, FIFO."""
    b_queue = [[abs(t.size), t] for t in b_trades]
    slip_weighted, matched = 0.0, Decimal(0)
    index = 0
    for a in a_trades:
        need = abs(a.size)
        covered_at: int | None = None
        while need > 0 and index < len(b_queue):
            left, b = b_queue[index]
            piece = min(need, left)
            # A bought: B sold, lower is worse; A sold: B bought, higher is worse.
            cost = (a.price - b.price) if a.size > 0 else (b.price - a.price)
            slip_weighted += float(piece * cost / a.price) * 1e4
            matched += piece
            need -= piece
            b_queue[index][0] = left - piece
            if b_queue[index][0] == 0:
                index += 1
            covered_at = b.ts_ms
        if need > 0:
            figures.uncovered_at_end += 1
        elif covered_at is not None:
            figures.naked_s.append(max(0, covered_at - a.ts_ms) / 1000)
    figures.slippage_bps = slip_weighted / float(matched) if matched else None

"""The chaos rehearsal's invariants, computed from the simulator's own records only (`GET /sim/state`).

The simulator records every trade with both accounts (`accounts.<index>.fills`: bid/ask account, client order
indexes, size, price, ms timestamp) and every create order with its client order index (`accounts.<index>.
tx_log`). From those alone:

* **Hedge needs.** Each fill of A (a trade with A's account on one side) is a need: B must trade its size on
  the opposite side. B's trades consume needs of their side: first the fills named by the trade's client
  order index (B's hedge index derives from the first request id and the attempt, `hedger.hedge_coid`; a
  fill request id is `<A's coid>-<trade ids>`, so it maps back to A's fills), then the oldest needs of that
  side (B nets requests of one side into one order, never opposite sides). What is left of a B trade first
  undoes an earlier over-hedge of the opposite side, and the rest is an **over-hedge (double)**.
* **Lost**: a need still open when the run ends (A and B stopped, nothing in flight): a fill never hedged.
  A need consumed by a *residual* hedge (B's index derived from `<A's rebalance coid>-residual`) is counted as
  **repaired**: its own hedge never came, a later `on_imbalance: hedge` fixed the pair.
* **Wash**: a trade with A on one side and B on the other.
* **Exposure episodes**: A + B (net position, summed from the trades) away from 0 beyond the tolerance, from
  the trade that moved it off to the trade that brought it back (ms timestamps of the sim's clock).
* **Cycles**: A's position back to 0 from non-zero through one of A's trades.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedge_strategy.bus.messages import request_id_for
from hedge_strategy.hedger import hedge_coid

MAX_ATTEMPTS = 12  # hedge indexes are tried for attempts 1..this (retry_times is 5 in the shipped config)
MAX_NETTED_FILLS = 6  # A nets fills of one order seen together into one request: runs up to this long
A_MAKER_PREFIX = 11  # role A, purpose maker (hedge_strategy/exchange/coid.py)


@dataclass(frozen=True)
class Trade:
    trade_id: int
    ts_ms: int
    size: Decimal
    bid_account: int
    ask_account: int
    bid_coid: int
    ask_coid: int

    def side_of(self, account: int) -> int:
        """+1 when `account` bought, -1 when it sold, 0 when it is not in this trade."""
        return 1 if self.bid_account == account else -1 if self.ask_account == account else 0

    def coid_of(self, account: int) -> int:
        return self.bid_coid if self.bid_account == account else self.ask_coid


@dataclass
class Need:
    """One fill of A, waiting for B's volume on the opposite side."""

    trade_id: int
    ts_ms: int
    b_side: int  # the side B must trade: -1 sell (A bought), +1 buy (A sold)
    size: Decimal
    left: Decimal
    by_residual: Decimal = Decimal(0)
    done_ms: int | None = None


@dataclass(frozen=True)
class OverHedge:
    trade_id: int
    ts_ms: int
    size: Decimal
    label: str  # what B's order was: hedge of <request> / residual / other


@dataclass(frozen=True)
class Episode:
    start_ms: int
    end_ms: int | None  # None: still not flat when the records end
    peak: Decimal
    trade_ids: tuple[int, ...]


@dataclass
class Ledger:
    a_fills: list[Trade] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    over_hedges: list[OverHedge] = field(default_factory=list)
    washes: list[Trade] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    b_trade_kinds: Counter[str] = field(default_factory=Counter)
    cycles: int = 0
    a_position: Decimal = Decimal(0)
    b_position: Decimal = Decimal(0)
    warnings: list[str] = field(default_factory=list)

    @property
    def lost(self) -> list[Need]:
        return [n for n in self.needs if n.left > 0]

    @property
    def repaired(self) -> list[Need]:
        return [n for n in self.needs if n.by_residual > 0]


def trades_of(state: dict[str, Any], market_id: int, accounts: tuple[int, int]) -> list[Trade]:
    """Every trade of either account on the market, once, in the sim's order (trade ids ascend)."""
    seen: dict[int, Trade] = {}
    for account in accounts:
        for raw in state["accounts"][str(account)]["fills"]:
            if int(raw["market_id"]) != market_id:
                continue
            trade = Trade(int(raw["trade_id"]), int(raw["timestamp"]), Decimal(raw["size"]),
                          int(raw["bid_account_id"]), int(raw["ask_account_id"]), int(raw["bid_client_id"]),
                          int(raw["ask_client_id"]))
            seen[trade.trade_id] = trade
    return [seen[t] for t in sorted(seen)]


def signed_position(state: dict[str, Any], account: int, market_id: int) -> Decimal:
    pos = state["accounts"][str(account)]["positions"].get(str(market_id))
    return Decimal(pos["position"]) * int(pos["sign"]) if pos else Decimal(0)


def b_order_labels(trades: list[Trade], state: dict[str, Any], a: int) -> dict[int, tuple[str, list[int]]]:
    """B's possible hedge client order indexes -> ("hedge <request id>" | "residual", A's fills it names)."""
    fills_by_order: dict[int, list[int]] = {}
    for trade in trades:
        if trade.side_of(a):
            fills_by_order.setdefault(trade.coid_of(a), []).append(trade.trade_id)
    labels: dict[int, tuple[str, list[int]]] = {}
    for a_coid, trade_ids in fills_by_order.items():
        for i in range(len(trade_ids)):
            for j in range(i + 1, min(len(trade_ids), i + MAX_NETTED_FILLS) + 1):
                run = trade_ids[i:j]
                request_id = request_id_for(a_coid, run)
                for attempt in range(1, MAX_ATTEMPTS + 1):
                    labels[hedge_coid(request_id, attempt)] = (f"hedge {request_id}", run)
    # A's rebalance indexes share A's order sequence: every number up to a little past A's highest is a
    # candidate (a residual request never reaches the exchange itself, only B's orders for it do).
    a_orders = [int(e["client_order_index"]) for e in state["accounts"][str(a)]["tx_log"]
                if "client_order_index" in e]
    top = max((c % 10**12 for c in a_orders if c // 10**12 == A_MAKER_PREFIX), default=0)
    for number in range(1, top + 50):
        request_id = request_id_for(14 * 10**12 + number, ())
        for attempt in range(1, MAX_ATTEMPTS + 1):
            labels[hedge_coid(request_id, attempt)] = ("residual", [])
    return labels


def build(state: dict[str, Any], market_id: int, a: int, b: int, tolerance: Decimal) -> Ledger:
    trades = trades_of(state, market_id, (a, b))
    labels = b_order_labels(trades, state, a)
    ledger = Ledger()
    by_trade: dict[int, Need] = {}
    excess = {1: Decimal(0), -1: Decimal(0)}  # B's over-hedged volume still standing, per B side
    a_pos = b_pos = Decimal(0)
    episode: list[Trade] = []
    peak = Decimal(0)
    for trade in trades:
        a_side, b_side = trade.side_of(a), trade.side_of(b)
        if a_side and b_side:
            ledger.washes.append(trade)
        if a_side:
            ledger.a_fills.append(trade)
            need = Need(trade.trade_id, trade.ts_ms, -a_side, trade.size, trade.size)
            ledger.needs.append(need)
            by_trade[trade.trade_id] = need
            before, a_pos = a_pos, a_pos + a_side * trade.size
            if before != 0 and a_pos == 0:
                ledger.cycles += 1
        if b_side:
            b_pos += b_side * trade.size
            _consume(ledger, trade, b_side, labels.get(trade.coid_of(b)), by_trade, excess)
        net = a_pos + b_pos
        if abs(net) > tolerance:
            episode.append(trade)
            peak = max(peak, abs(net))
        elif episode:
            ledger.episodes.append(Episode(episode[0].ts_ms, trade.ts_ms, peak,
                                           tuple(t.trade_id for t in [*episode, trade])))
            episode, peak = [], Decimal(0)
    if episode:
        ledger.episodes.append(Episode(episode[0].ts_ms, None, peak, tuple(t.trade_id for t in episode)))
    ledger.a_position, ledger.b_position = a_pos, b_pos
    _check_against_positions(ledger, state, market_id, a, b)
    return ledger


def _consume(ledger: Ledger, trade: Trade, b_side: int, label: tuple[str, list[int]] | None,
             by_trade: dict[int, Need], excess: dict[int, Decimal]) -> None:
    kind, named = label if label is not None else ("other", [])
    ledger.b_trade_kinds[kind.split(" ")[0]] += 1
    residual = kind == "residual"
    left = trade.size
    named_needs = [by_trade[t] for t in named if t in by_trade]
    for need in [*named_needs, *(n for n in ledger.needs if n not in named_needs)]:
        if left <= 0:
            break
        if need.b_side != b_side or need.left <= 0:
            continue
        used = min(need.left, left)
        need.left -= used
        left -= used
        if residual:
            need.by_residual += used
        if need.left == 0:
            need.done_ms = trade.ts_ms
    undone = min(left, excess[-b_side])  # B trading back an earlier over-hedge of the other side
    excess[-b_side] -= undone
    left -= undone
    if left > 0:
        excess[b_side] += left
        ledger.over_hedges.append(OverHedge(trade.trade_id, trade.ts_ms, left, kind))


def _check_against_positions(ledger: Ledger, state: dict[str, Any], market_id: int, a: int, b: int) -> None:
    """The trades must explain the positions the sim reports; otherwise some records fell out of its caps."""
    for name, account, summed in (("A", a, ledger.a_position), ("B", b, ledger.b_position)):
        reported = signed_position(state, account, market_id)
        if reported != summed:
            ledger.warnings.append(f"{name}'s trades sum to {summed} but the sim reports position "
                                   f"{reported}: trades missing from the records (a cap reached?); "
                                   "figures are partial")

"""A model of A's maker order on the simulator's default flow: how re-pricing rules and a tier's speed bumps
set the pace, in seconds a minute instead of minutes a run. A model, not a measurement: `tiers.py` measures.

    .venv/bin/python bench/maker_model.py [--fills 3000] [--seed 1] [--drift 300,100] [--through 120]
                                          [--mechanism cancel,modify] [--reference depth,desired]

What it models (the simulator's code it stands for in brackets), for BTC on the shipped `config.yaml`:
- the mid: a gaussian step of `volatility_bps` every `tick_interval_ms`, in whole ticks (`flow._step`);
- background liquidity one tick from the mid, never used up by a taker, re-posted when its price changes, so a
  level in place keeps its queue spot and A's order at the same price waits behind it (`flow._requote`,
  `engine.replace_liquidity`);
- takers: Poisson arrivals, half of them sells reaching mid - 1 (`flow._taker`); one fills A's order (A's
  0.0002 BTC is one lot) when A's bid is above mid - 1, or at it and ahead of the background (a buy order; a
  sell is the mirror image);
- A's order: priced from the book of the last step, depth 1, on Standard kept clear of the opposite touch by
  the 95th percentile of the mid's move over the maker bump + 50 ms (`movement.clear_of_touch`,
  `maker.MAKER_MOVE_SHARE`); it arrives one maker bump (Standard 200 ms) plus `--latency-ms` later and is
  cancelled for crossing if the ask is at or below it then (post-only); A re-prices it when, at a step, the
  price it would place now (`--reference desired`) or depth 1 (`--reference depth`, before this model's
  session) is more than `--drift` ticks ahead of it, or the book is more than `--through` ticks through it:
  by cancel + new order (two transactions, the order out of the book for a bump each) or by one ModifyOrder
  (one transaction; the order rests at its old price through the bump);
- between a fill and the next order: B's hedge and the confirmations (0.23 s premium, 0.34 s Standard, as
  measured by `tiers.py`).

Not modelled: the rate limit's waits, partial fills, the REST and WebSocket paths. Calibration: on the shipped
rules the model gives premium ~5.6 s a fill and Standard ~12 s (0.46x); `tiers.py` measured ~4.1 and ~8.6 s
(0.45-0.55x) on main `7d55277` (bench/README.md): the model is slower on both by about the same factor, so
compare ratios and rankings, not seconds.
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import yaml

ROOT = Path(__file__).resolve().parent.parent
MAKER_BUMP_MS = {"premium": 0.0, "standard": 200.0}
HEDGE_GAP_MS = {"premium": 230.0, "standard": 340.0}  # an order's end to the next order (tiers.py, session 4)
ARRIVAL_MARGIN_MS = 50.0  # movement.ARRIVAL_MARGIN_MS
MAKER_MOVE_SHARE = 0.95  # maker.MAKER_MOVE_SHARE


@dataclass(frozen=True)
class Flow:
    step_ms: float
    sigma_ticks: float
    taker_per_ms: float

    @classmethod
    def from_config(cls, path: Path, symbol: str = "BTC") -> Flow:
        sim = yaml.safe_load(path.read_text())["sim"]
        flow = sim["flow"]
        market = next(m for m in sim["markets"] if m["symbol"] == symbol)
        tick = 10.0 ** -int(market["price_decimals"])
        sigma = float(flow["volatility_bps"]) * 1e-4 * float(market["initial_price"]) / tick
        return cls(float(flow["tick_interval_ms"]), sigma, float(flow["taker_rate_per_s"]) / 1000.0)


@dataclass(frozen=True)
class Rules:
    mechanism: str  # "cancel" (cancel + new order) or "modify" (one ModifyOrder)
    reference: str  # "depth": drift from depth 1; "desired": from the price A would place now
    drift_ticks: int
    through_ticks: int


@dataclass
class Tally:
    ms: float = 0.0
    fills: int = 0
    orders: int = 0
    post_only: int = 0
    txs: int = 0

    def line(self) -> str:
        minutes = self.ms / 60_000
        return (f"{self.ms / 1000 / self.fills:6.2f} s/fill  orders/fill {self.orders / self.fills:4.2f}  "
                f"post-only {self.post_only / self.orders:5.1%}  txs/min {self.txs / minutes:5.1f}")


def maker_room(flow: Flow, bump_ms: float) -> int | None:
    """`clear_of_touch`'s room: the 95th percentile of |mid move| over bump + margin (whole steps in it)."""
    if bump_ms <= 0:
        return None
    steps = math.ceil((bump_ms + ARRIVAL_MARGIN_MS) / flow.step_ms)
    quantile = NormalDist().inv_cdf(0.5 + MAKER_MOVE_SHARE / 2)
    return math.ceil(quantile * flow.sigma_ticks * math.sqrt(steps))


class Model:
    """One buy order at a time (a sell is its mirror image), event by event."""

    def __init__(self, flow: Flow, tier: str, rules: Rules, seed: int, latency_ms: float) -> None:
        self.flow, self.rules, self.rng = flow, rules, random.Random(seed)
        self.bump = MAKER_BUMP_MS[tier]
        self.gap = HEDGE_GAP_MS[tier]
        self.latency = latency_ms
        self.room = maker_room(flow, self.bump)
        self.mid = 0
        self.tally = Tally()

    def price_now(self) -> int:
        bid, ask = self.mid - 1, self.mid + 1
        return bid if self.room is None else min(bid, ask - (self.room + 1))

    def run(self, fills: int) -> Tally:
        inf = math.inf
        now, next_step = 0.0, self.flow.step_ms
        next_taker = self.rng.expovariate(self.flow.taker_per_ms)
        place_at, arrive_at, reprice_at = 0.0, inf, inf
        price = pending = 0
        resting = behind_background = False
        while self.tally.fills < fills:
            now = min(next_step, next_taker, place_at, arrive_at, reprice_at)
            if now == place_at:
                place_at, price, arrive_at = inf, self.price_now(), now + self.bump + self.latency
                self.tally.orders += 1
                self.tally.txs += 1
            elif now == arrive_at:
                arrive_at = inf
                if price >= self.mid + 1:  # would cross the ask: cancelled, the next cycle re-prices
                    self.tally.post_only += 1
                    place_at = now + 10
                else:
                    resting, behind_background = True, price == self.mid - 1
            elif now == reprice_at:
                reprice_at = inf
                if resting and self.rules.mechanism == "cancel":
                    resting, place_at = False, now + 10
                elif resting:
                    price = pending
                    if price >= self.mid + 1:
                        resting, place_at = False, now + 10
                        self.tally.post_only += 1  # the same order, ended for crossing
                    else:
                        behind_background = price == self.mid - 1
            elif now == next_step:
                next_step += self.flow.step_ms
                move = round(self.rng.gauss(0.0, self.flow.sigma_ticks))
                self.mid += move
                # The background level moved away, or was re-posted behind A's order: either way not ahead.
                behind_background = behind_background and move == 0
                if resting and reprice_at == inf and self._moved(price):
                    self.tally.txs += 1
                    pending = self.price_now()
                    reprice_at = now + self.bump + self.latency
            else:
                next_taker = now + self.rng.expovariate(self.flow.taker_per_ms)
                is_sell = self.rng.random() < 0.5
                reached = price > self.mid - 1 or (price == self.mid - 1 and not behind_background)
                if resting and is_sell and reached:
                    self.tally.fills += 1
                    resting, reprice_at, place_at = False, inf, now + self.gap
        self.tally.ms = now
        return self.tally

    def _moved(self, price: int) -> bool:
        reference = self.mid - 1 if self.rules.reference == "depth" else self.price_now()
        behind = reference - price
        return behind > self.rules.drift_ticks or -(self.mid - 1 - price) > self.rules.through_ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=6.0, help="A's send to the venue, bumps apart")
    parser.add_argument("--drift", default="300", help="comma-separated drift limits (ticks)")
    parser.add_argument("--through", type=int, default=120)
    parser.add_argument("--mechanism", default="cancel,modify")
    parser.add_argument("--reference", default="depth,desired")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args()
    flow = Flow.from_config(args.config)
    print(f"flow: step {flow.step_ms:g} ms, sd {flow.sigma_ticks:.1f} ticks a step, "
          f"{flow.taker_per_ms * 1000:g} takers/s; Standard maker room {maker_room(flow, 200.0)} ticks")
    for mechanism in args.mechanism.split(","):
        for reference in args.reference.split(","):
            for drift in (int(d) for d in args.drift.split(",")):
                rules = Rules(mechanism, reference, drift, args.through)
                tallies = {tier: Model(flow, tier, rules, args.seed, args.latency_ms).run(args.fills)
                           for tier in ("premium", "standard")}
                ratio = (tallies["premium"].ms / tallies["premium"].fills) / (
                    tallies["standard"].ms / tallies["standard"].fills)
                print(f"\n{mechanism} re-price, drift > {drift} ticks from {reference}, through > "
                      f"{args.through}: standard/premium pace {ratio:.2f}x")
                for tier, tally in tallies.items():
                    print(f"  {tier:9} {tally.line()}")


if __name__ == "__main__":
    main()

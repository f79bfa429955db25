"""Synthetic market flow: a random-walk mid, background liquidity around it, and Poisson taker arrivals.

Background liquidity belongs to account 1, synthetic takers to account 2. Everything is driven by `advance_to`
with an explicit time, and each market has its own `random.Random(seed + market_id)`, so the same seed and the
same sequence of `advance_to` calls give the same mids and trades. The server calls it every tick and also
when `next_due_ms` says a taker arrives (`scheduler.Ticker`), so a trade happens at the time it is stamped.
"""

from __future__ import annotations

import heapq
import logging
import random

from .config import FlowConfig
from .engine import Engine

log = logging.getLogger("lighter_sim.flow")

# A server suspended for longer than this skips the missed flow instead of replaying it all at once.
MAX_BACKLOG_MS = 300_000
_STEP, _TAKER = 0, 1  # event kinds; steps first when a step and a taker fall on the same millisecond


class MarketFlow:
    def __init__(self, engine: Engine, cfg: FlowConfig, seed: int, start_ms: int | None = None) -> None:
        self.engine = engine
        self.cfg = cfg
        self._rngs = {m: random.Random(seed + m) for m in sorted(engine.specs)}
        self._level_size = {m: spec.size_to_int(self.cfg.liquidity_size) for m, spec in engine.specs.items()}
        start = engine.clock_ms() if start_ms is None else start_ms
        self._now = start
        self._queue: list[tuple[float, int, int]] = []  # (due ms, market id, kind)
        if not self.cfg.enabled:
            return
        for market_id in self._rngs:
            self._requote(market_id, start)
            self._schedule(start, market_id)

    def _schedule(self, start: float, market_id: int) -> None:
        heapq.heappush(self._queue, (start + self.cfg.tick_interval_ms, market_id, _STEP))
        if self.cfg.taker_rate_per_s > 0:
            heapq.heappush(self._queue, (start + self._taker_gap_ms(market_id), market_id, _TAKER))

    def _taker_gap_ms(self, market_id: int) -> float:
        return self._rngs[market_id].expovariate(self.cfg.taker_rate_per_s) * 1000.0

    def next_due_ms(self) -> float | None:
        """When the next walk step or taker arrival is due (epoch ms), None when nothing is scheduled."""
        return self._queue[0][0] if self._queue else None

    def advance_to(self, now_ms: int) -> None:
        """Runs every walk step and taker arrival due up to `now_ms`, in time order."""
        if not self.cfg.enabled or now_ms <= self._now:
            return
        if now_ms - self._now > MAX_BACKLOG_MS:
            log.warning(
                "market flow is %d ms behind; skipping to now instead of replaying it", now_ms - self._now
            )
            self._queue.clear()
            for market_id in self._rngs:
                self._schedule(now_ms, market_id)
        self._now = now_ms
        while self._queue and self._queue[0][0] <= now_ms:
            due, market_id, kind = heapq.heappop(self._queue)
            at_ms = int(due)
            if kind == _STEP:
                self._step(market_id, at_ms)
                heapq.heappush(self._queue, (due + self.cfg.tick_interval_ms, market_id, _STEP))
            else:
                self._taker(market_id, at_ms)
                heapq.heappush(self._queue, (due + self._taker_gap_ms(market_id), market_id, _TAKER))

    def _step(self, market_id: int, at_ms: int) -> None:
        """One random-walk step of the mid (gaussian, in ticks), then background liquidity follows it."""
        mid = self.engine.mids[market_id]
        move = self._rngs[market_id].gauss(0.0, self.cfg.volatility_bps * 1e-4 * mid)
        self.engine.set_mid_int(market_id, max(self._min_mid(), mid + round(move)))
        self._requote(market_id, at_ms)

    def _min_mid(self) -> int:
        # Keeps the lowest background bid above zero.
        return self.cfg.liquidity_levels * self.cfg.liquidity_spacing_ticks + 2

    def _requote(self, market_id: int, at_ms: int) -> None:
        """Best background level one tick from the mid, then every `spacing` ticks; levels that would cross a
        resting order are skipped by the engine."""
        mid = self.engine.mids[market_id]
        size = self._level_size[market_id]
        levels: dict[tuple[bool, int], int] = {}
        for i in range(self.cfg.liquidity_levels):
            offset = 1 + i * self.cfg.liquidity_spacing_ticks
            levels[(True, mid + offset)] = size
            if mid - offset > 0:
                levels[(False, mid - offset)] = size
        self.engine.replace_liquidity(market_id, levels, now_ms=at_ms)

    def _taker(self, market_id: int, at_ms: int) -> None:
        """A synthetic IOC reaching the best background level on the other side (mid ± 1 tick)."""
        rng = self._rngs[market_id]
        is_ask = rng.random() < 0.5
        lots = rng.randint(
            self.cfg.taker_size_min_lots, max(self.cfg.taker_size_min_lots, self.cfg.taker_size_max_lots)
        )
        spec = self.engine.specs[market_id]
        mid = self.engine.mids[market_id]
        limit = mid - 1 if is_ask else mid + 1
        self.engine.submit_taker(market_id, is_ask, lots * spec.min_base_int, limit, now_ms=at_ms)

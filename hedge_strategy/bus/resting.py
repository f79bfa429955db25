"""A's resting maker order, published for B: `hedge:{pair}:maker_resting` (no wash trades, `docs/design.md`).

A writes it BEFORE it sends the order (write-ahead: when the write fails, nothing is sent), writes it again
before it sends a modify of the order with the more aggressive of the old and the new price (B is bounded by
both while the modify is in flight; a failed write sends no modify) and once more with the price the exchange
then shows (`maker_reprice`), and deletes it once the order is final, by a compare-and-delete of the order
it names (its client order index: a write whose reply was lost may have left another of the order's values
than A holds): a late delete (one retried by the outbox after a Redis outage) never removes the entry of A's
next order. B reads it before pricing each IOC of a hedge and keeps its limit one tick short of A's price
(`wash_guard.WashGuard`). The value is JSON: the client order index, the side, the price, the size (absent in
keys written before it was added, and from a modify on: read as unknown, so B keeps the bound). No TTL: a key
that expired while the order rests would leave B unguarded; a key left by a crashed A is deleted once the next
A has settled that order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from loguru import logger
from redis.exceptions import WatchError

from hedge_strategy.bus.client import Bus


@dataclass(frozen=True)
class RestingOrder:
    client_order_index: int
    side: str  # "buy" or "sell", as the exchange's Side
    price: Decimal
    size: Decimal | None = None  # None: not published (an older A), so B cannot tell when it is all filled

    def to_json(self) -> str:
        body = {"client_order_index": self.client_order_index, "side": self.side, "price": str(self.price)}
        if self.size is not None:
            body["size"] = str(self.size)
        return json.dumps(body)


async def publish_resting(bus: Bus, order: RestingOrder) -> None:
    """Write-ahead of A's maker order; raises RedisError (the caller then sends nothing)."""
    await bus.redis.set(bus.keys.maker_resting, order.to_json())


async def clear_resting(bus: Bus, order: RestingOrder) -> bool:
    """Delete the key if it still names `order` (its client order index: whatever price or size, as a write
    whose reply was lost may have left another of its values than A holds), in one optimistic transaction
    (WATCH: a write in between, A's next order, aborts the delete); True when deleted. Raises RedisError when
    Redis cannot answer."""
    key = bus.keys.maker_resting
    async with bus.redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            current = await pipe.get(key)
            named = _parse(current, key) if current is not None else None
            if named is None or named.client_order_index != order.client_order_index:
                return False
            pipe.multi()
            pipe.delete(key)
            await pipe.execute()
            return True
        except WatchError:
            return False  # rewritten meanwhile: it names another order now


async def read_resting(bus: Bus) -> RestingOrder | None:
    """A's resting order as published, or None; raises RedisError when Redis cannot answer. A malformed value
    (only A writes it: a bug) is logged and read as none."""
    raw = await bus.redis.get(bus.keys.maker_resting)
    return _parse(raw, bus.keys.maker_resting) if raw is not None else None


def _parse(raw: bytes | str, key: str) -> RestingOrder | None:
    try:
        body = json.loads(raw)
        side = str(body["side"])
        if side not in ("buy", "sell"):
            raise ValueError(f"side {side!r}")
        size = Decimal(str(body["size"])) if body.get("size") is not None else None
        if size is not None and not size.is_finite():
            raise ValueError(f"size {size}")
        return RestingOrder(int(body["client_order_index"]), side, Decimal(str(body["price"])), size)
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        logger.error("{} holds a malformed value ({!r}: {}); read as no resting order", key, raw, exc)
        return None

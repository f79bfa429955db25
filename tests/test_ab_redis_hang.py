"""A Redis that hangs rather than refuses (`redis-server` under SIGSTOP) never stalls A's trading: A still
processes the exchange's events (it sees its fill and records the hedge request in its outbox) and cancels
its order when it is too old; once Redis runs again the request goes out and is hedged exactly once.
"""

from __future__ import annotations

from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory
from tests.fixtures.redis import RedisProcess

MAKER_TIMEOUT_S = 4
HANG_WAIT_S = 40.0  # bounds each wait while Redis is frozen (the client's timeouts and retries take ~10 s)


async def test_a_frozen_redis_neither_stalls_the_resting_order_nor_loses_the_fill(
    own_redis: RedisProcess, ab_factory: ABFactory
) -> None:
    ab = await ab_factory(redis_url=own_redis.url, quantity="0.0004", maker_order_timeout_s=MAKER_TIMEOUT_S)
    await ab.start_b()
    await ab.logs.wait(r"^B ready")
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy 0\.0004 .*\(A/maker#1\)")

    own_redis.freeze()
    try:
        await ab.fill_a("sell", a_part="0.0002")  # half of A's order: the rest keeps resting
        # The fill is seen and its request recorded; publishing it waits on Redis, which does not answer...
        await ab.logs.wait(r"^A fill 0\.0002\d* @ .*hedge request \S+ NOT published yet \(\S*TimeoutError",
                           timeout_s=HANG_WAIT_S)
        # ... while the resting order is still watched, and cancelled when too old.
        await ab.logs.wait(rf"^A cancelling A/maker#1 \(older than {MAKER_TIMEOUT_S} s\)",
                           timeout_s=HANG_WAIT_S)
        await ab.logs.wait(r"^A: A/maker#1 ended canceled.*, filled 0\.0002\d*/0\.0004",
                           timeout_s=HANG_WAIT_S)
        assert await ab.open_orders(A_ACCOUNT) == []
        assert ab.logs.matching(r"^B hedge") == []  # nothing reached B while Redis was frozen
    finally:
        own_redis.thaw()

    await ab.logs.wait(r"^A: Redis at .* answers again")
    await ab.logs.wait(r"^A: B hedged \S+: sell 0\.0002")
    await ab.logs.wait(r"^A placed post-only sell 0\.0002")  # flat again: A closes its long
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # hedged once, though the request may be sent twice

"""`hedgectl status` against the simulator and a real Redis: positions and resting orders as the exchange
reports them, pause and heartbeats as Redis holds them; an unreachable exchange is said, not hidden."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml

from hedge_strategy.bus import now_ms
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory
from tests.fixtures.procs import free_port
from tests.test_ctl_status_kit import open_positions, run_hedgectl


async def test_status_json_matches_the_exchange_and_redis(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    placed = await open_positions(ab, a_size="0.0004", b_size="-0.0002")
    before = now_ms()
    await ab.bus.set_pause("maintenance", by="ctl")
    await ab.bus.beat("b", 30, {"pid": 4242, "busy": False, "stream": {"up": True, "connects": 1}})

    run = await run_hedgectl("status", "--json", "--config", str(ab.config_path))
    assert run.code == 0, run.err
    report = run.json()
    exchange = report["exchange"]
    assert exchange["reachable"] is True
    for role, account in (("a", A_ACCOUNT), ("b", B_ACCOUNT)):
        shown = exchange["accounts"][role]
        assert shown["account_index"] == account
        (position,) = shown["positions"]
        assert position["market"] == "BTC" and Decimal(position["size"]) == await ab.position(account)
        resting = await ab.open_orders(account)
        assert [o["client_order_index"] for o in shown["open_orders"]] == [placed.resting[account]]
        assert [Decimal(o["price"]) for o in shown["open_orders"]] == [Decimal(o["price"]) for o in resting]
    assert Decimal(exchange["net"]["BTC"]) == Decimal("0.0002") and exchange["flat"] is False

    pause = report["pause"]
    assert (pause["paused"], pause["reason"], pause["by"]) == (True, "maintenance", "ctl")
    assert before <= pause["since_ms"] <= now_ms()
    assert report["hold_b"] == {"held": False}
    beats = report["heartbeats"]
    assert beats["a"] == {"alive": False}
    assert beats["b"]["alive"] is True and beats["b"]["info"]["pid"] == 4242
    assert report["streams"]["exchange"] == {"a": "unknown", "b": {"up": True, "connects": 1}}
    assert report["streams"]["bus"]["pending"] == 0
    journals = report["journals"]
    assert journals["a"]["trading"]["exists"] is False  # A never ran: nothing journaled, and status says so
    assert report["hedges"] == {"total": 0, "last": []}

    # The screen view: one table per section, the imbalance called out.
    text = await run_hedgectl("status", "--config", str(ab.config_path))
    assert text.code == 0, text.err
    assert "NOT FLAT" in text.out and "PAUSED" in text.out and "maintenance" in text.out
    assert "A/maker#101" in text.out and "B/maker#102" in text.out
    assert "B: not held" in text.out

    # B's hold (what `hedgectl clear` sets while it closes) is shown next to the pause, in both views.
    hold = await ab.bus.hold_hedger("close-all in progress (hedgectl clear)", by="ctl")
    held = await run_hedgectl("status", "--json", "--config", str(ab.config_path))
    assert held.code == 0, held.err
    shown = held.json()["hold_b"]
    assert (shown["held"], shown["by"], shown["since_ms"]) == (True, "ctl", hold.since_ms)
    assert shown["reason"] == "close-all in progress (hedgectl clear)"
    text = await run_hedgectl("status", "--config", str(ab.config_path))
    assert "B: HELD since" in text.out and "close-all in progress" in text.out


async def test_unreachable_exchange_is_reported_with_what_redis_knows(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.bus.set_pause("checking", by="ctl")
    data = yaml.safe_load(ab.config_path.read_text())
    dead = f"127.0.0.1:{free_port()}"
    data["exchange"].update(url=f"http://{dead}", ws_url=f"ws://{dead}/stream")
    config = Path(ab.workdir) / "dead.yaml"
    config.write_text(yaml.safe_dump(data))

    run = await run_hedgectl("status", "--json", "--config", str(config))
    assert run.code == 5, run.err
    report = run.json()
    assert report["exchange"]["reachable"] is False and report["exchange"]["error"]
    assert report["pause"]["reason"] == "checking"  # Redis still answered

    text = await run_hedgectl("status", "--config", str(config))
    assert text.code == 5 and "UNREACHABLE" in text.out and "checking" in text.out

    redis_only = await run_hedgectl("status", "--json", "--redis-only", "--config", str(config))
    assert redis_only.code == 0, redis_only.err
    assert "exchange" not in redis_only.json() and redis_only.json()["pause"]["paused"] is True

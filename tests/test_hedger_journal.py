"""B's idempotency index in the journal: `Journal.orders_for_request` across netting, restarts, old files."""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

from hedge_strategy.exchange import Purpose, Role, Side, derived_number, make_coid
from hedge_strategy.execution import Intent, Journal, JournalOrder, OrderState, new_order
from tests.fixtures.execution import RELEASE_JOURNAL

ACCOUNT = 102


def hedge_order(first_request: str, attempt: int, request_ids: list[str], created_ms: int) -> JournalOrder:
    return new_order(
        client_order_index=make_coid(Role.B, Purpose.HEDGE, derived_number(f"{first_request}#{attempt}")),
        account_index=ACCOUNT, market_id=1, intent=Intent.HEDGE, side=Side.SELL, size=Decimal("0.0004"),
        price=Decimal("95000.0"), order_type="ioc", now_ms=created_ms, request_id=",".join(request_ids),
    )


async def test_netted_order_is_found_by_each_of_its_request_ids_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal_102.sqlite"
    journal = await Journal.open(path, ACCOUNT)
    first = hedge_order("11-1", 1, ["11-1", "11-2"], created_ms=1_000)
    second = hedge_order("11-1", 2, ["11-1", "11-2"], created_ms=2_000)
    other = hedge_order("12-5", 1, ["12-5"], created_ms=3_000)
    for order in (first, second, other):
        await journal.record_new(order)
    assert [o.client_order_index for o in journal.orders_for_request("11-2")] == [
        first.client_order_index, second.client_order_index]
    assert journal.orders_for_request("13-9") == []
    journal.transition(first.client_order_index, OrderState.CANCELED, reason="canceled")
    await journal.close()

    reopened = await Journal.open(path, ACCOUNT)  # as a restarted B sees it
    found = reopened.orders_for_request("11-1")
    assert [o.client_order_index for o in found] == [first.client_order_index, second.client_order_index]
    assert found[0].state is OrderState.CANCELED and found[1].state is OrderState.PENDING_SUBMIT
    assert [o.client_order_index for o in reopened.orders_for_request("12-5")] == [other.client_order_index]
    await reopened.close()


async def test_a_journal_written_before_the_index_existed_is_indexed_on_open(tmp_path: Path) -> None:
    # The build before the index wrote what the release wrote, less `order_requests` and its meta flag.
    path = tmp_path / "journal_101.sqlite"
    shutil.copyfile(RELEASE_JOURNAL, path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE order_requests")
        conn.execute("DELETE FROM meta WHERE key = 'order_requests_indexed'")
    conn.close()

    reopened = await Journal.open(path, 101)
    try:
        def serving(request_id: str) -> list[int]:
            return [o.client_order_index for o in reopened.orders_for_request(request_id)]

        assert serving("11000000000002-9") == serving("11000000000005-11") == [22000000000002]
        assert serving("11000000000001-7+8") == [22000000000001]
    finally:
        await reopened.close()

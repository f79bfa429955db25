"""The journal's schema versions: a journal of the release before migrations opens whole, new files match
upgraded ones, a newer file is refused, a failed migration leaves the file as it was."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedge_strategy.exchange.events import Side
from hedge_strategy.execution import journal_schema
from hedge_strategy.execution.journal import Intent, Journal, JournalFill, OrderState, new_order
from hedge_strategy.execution.journal_schema import JournalSchemaError, schema_version
from hedge_strategy.execution.journal_store import JournalStore
from hedge_strategy.ops.journals import order_counts, read_fills
from tests.fixtures.execution import JOURNAL_ACCOUNT as ACCOUNT

WATERMARK = "reconcile.trades_watermark_ms"


def raw_rows(path: Path, query: str) -> list[dict[str, Any]]:
    """Rows as a plain connection sees them, by column name (independent of the journal's code)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(query).fetchall()]
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def shape(path: Path) -> dict[str, Any]:
    """Tables with their columns (name, type, not null, default, key position) and indexes with theirs."""
    conn = sqlite3.connect(path)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        tables = [r[0] for r in conn.execute(query)]
        found: dict[str, Any] = {}
        for table in tables:
            columns = [tuple(c[1:]) for c in conn.execute(f"PRAGMA table_info({table})")]
            indexes = {
                i[1]: ([c[2] for c in conn.execute(f"PRAGMA index_info({i[1]})")], i[2], i[4])
                for i in conn.execute(f"PRAGMA index_list({table})")
                if not i[1].startswith("sqlite_autoindex")
            }
            found[table] = (columns, indexes)
        return found
    finally:
        conn.close()


def expected_order(row: dict[str, Any]) -> dict[str, Any]:
    """A raw orders row as the journal must hand it back (text decimals read exactly as written)."""
    decimals = ("size", "price", "filled_size", "filled_quote")
    return {
        **{k: v for k, v in row.items() if k not in (*decimals, "exchange_filled_size")},
        **{k: Decimal(row[k]) for k in decimals},
        "intent": Intent(row["intent"]),
        "side": Side(row["side"]),
        "state": OrderState(row["state"]),
        "reduce_only": bool(row["reduce_only"]),
    }


async def test_a_release_journal_opens_with_every_order_and_fill_as_written(release_journal: Path) -> None:
    orders = raw_rows(release_journal, "SELECT * FROM orders")
    fills = raw_rows(release_journal, "SELECT * FROM fills")
    assert user_version(release_journal) == 0 and len(orders) == 6 and len(fills) == 4  # the fixture as made

    journal = await Journal.open(release_journal, ACCOUNT)
    try:
        assert user_version(release_journal) == schema_version()
        for row in orders:
            order = journal.get(row["client_order_index"])
            assert order is not None
            assert {k: getattr(order, k) for k in expected_order(row)} == expected_order(row)
            assert str(order.size) == row["size"] and str(order.filled_size) == row["filled_size"]
            exchange_filled = journal.exchange_filled_size(order.client_order_index)
            assert exchange_filled == Decimal(row["exchange_filled_size"])
        for row in fills:
            coid = row["client_order_index"]
            (fill,) = [f for f in journal.fills_for(coid) if f.trade_id == row["trade_id"]]
            assert fill == JournalFill(
                trade_id=row["trade_id"], client_order_index=row["client_order_index"],
                account_index=row["account_index"], market_id=row["market_id"], side=Side(row["side"]),
                size=Decimal(row["size"]), price=Decimal(row["price"]), fee=Decimal(row["fee"]),
                is_maker=bool(row["is_maker"]), ts_ms=row["ts_ms"], source=row["source"],
            )  # epoch 0, order index unknown: the release did not store one
            assert str(fill.size) == row["size"] and str(fill.fee) == row["fee"]
        unresolved = {r["client_order_index"] for r in orders if OrderState(r["state"]) in
                      {OrderState.PENDING_SUBMIT, OrderState.PARTIALLY_FILLED, OrderState.UNKNOWN}}
        assert {o.client_order_index for o in journal.unresolved()} == unresolved
        unannounced = [r["trade_id"] for r in fills if not r["announced"]]
        assert [f.trade_id for f in journal.unannounced_fills()] == unannounced == [9]
        netted = journal.orders_for_request("11000000000005-11")
        assert [o.client_order_index for o in netted] == [22000000000002]
        assert journal.get_meta(WATERMARK) == "1767000006500"
        assert journal.next_sequence("maker") == 4 and journal.next_sequence("close") == 2
    finally:
        await journal.close()
    # The orders' rows are untouched by the upgrade, which only added the column of a modify in flight (none
    # was ever sent by that release); the version flags of the release are gone from meta.
    upgraded = raw_rows(release_journal, "SELECT * FROM orders")
    assert [row.pop("modify_price") for row in upgraded] == [None] * len(orders)
    assert upgraded == orders
    assert {r["key"] for r in raw_rows(release_journal, "SELECT key FROM meta")} == {
        "seq:maker", "seq:close", WATERMARK
    }


async def test_an_upgraded_release_journal_takes_new_writes(release_journal: Path) -> None:
    journal = await Journal.open(release_journal, ACCOUNT)
    coid = 11000000000004
    await journal.record_new(new_order(
        client_order_index=coid, account_index=ACCOUNT, market_id=1, intent=Intent.MAKER, side=Side.BUY,
        size=Decimal("0.0002"), price=Decimal("95002.0"), order_type="post_only", now_ms=1767000020000,
    ))
    journal.transition(coid, OrderState.OPEN, order_index=281474976710700)
    new = JournalFill(13, coid, ACCOUNT, 1, Side.BUY, Decimal("0.0002"), Decimal("95002.0"), Decimal(0), True,
                      1767000021000, "ws", order_index=281474976710700)
    assert journal.apply_fill(new) == new
    old = journal.fills_for(11000000000001)[0]
    assert journal.apply_fill(JournalFill(**{**old.__dict__, "source": "rest"})) is None  # known trade
    journal.mark_announced(new.key)
    journal.mark_announced(journal.unannounced_fills()[0].key)  # the release's unannounced trade 9
    await journal.close()

    reopened = await Journal.open(release_journal, ACCOUNT)
    try:
        order = reopened.get(coid)
        assert order is not None and order.state is OrderState.FILLED and order.order_index == 281474976710700
        assert reopened.fills_for(coid) == [new]
        assert reopened.unannounced_fills() == []
        assert len(reopened.fills_for(11000000000001)) == 2
    finally:
        await reopened.close()


async def test_new_and_upgraded_journals_have_one_schema(release_journal: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / "journal_101.sqlite"
    JournalStore(fresh).close()
    JournalStore(release_journal).close()
    assert user_version(fresh) == user_version(release_journal) == schema_version() == 4
    assert shape(fresh) == shape(release_journal)
    columns, _ = shape(fresh)["fills"]
    key = sorted((c[4], c[0]) for c in columns if c[4])
    assert [name for _, name in key] == ["account_index", "market_id", "trade_id", "side", "epoch"]


async def test_a_journal_newer_than_the_code_is_refused_and_left_alone(path: Path) -> None:
    JournalStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema_version() + 1}")
    conn.close()
    with pytest.raises(JournalSchemaError) as refused:
        await Journal.open(path, ACCOUNT)
    message = str(refused.value)
    assert str(path) in message
    assert f"version {schema_version() + 1}" in message and f"this code's {schema_version()}" in message
    assert user_version(path) == schema_version() + 1


def test_a_migration_that_fails_leaves_the_file_at_its_version(
    release_journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    JournalStore(release_journal).close()
    before = raw_rows(release_journal, "SELECT * FROM fills")

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        conn.execute("DELETE FROM fills")
        raise RuntimeError("disk full")

    monkeypatch.setattr(journal_schema, "MIGRATIONS", (*journal_schema.MIGRATIONS, half_done))
    with pytest.raises(RuntimeError, match="disk full"):
        JournalStore(release_journal)
    assert user_version(release_journal) == 4
    assert raw_rows(release_journal, "SELECT name FROM sqlite_master WHERE name = 'half_done'") == []
    assert raw_rows(release_journal, "SELECT * FROM fills") == before

    monkeypatch.undo()
    JournalStore(release_journal).close()  # the code without the failing step opens it as before
    assert user_version(release_journal) == 4


def test_each_migration_is_one_step_from_version_n(tmp_path: Path) -> None:
    """Stopping after any number of migrations gives a file the remaining ones complete."""
    for stop in range(schema_version() + 1):
        path = tmp_path / f"stop_{stop}.sqlite"
        conn = sqlite3.connect(path, isolation_level=None)
        for version, migration in enumerate(journal_schema.MIGRATIONS[:stop]):
            conn.execute("BEGIN")
            migration(conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        conn.close()
        assert user_version(path) == stop
        JournalStore(path).close()
        assert shape(path) == shape(tmp_path / "stop_0.sqlite")


def test_hedgectl_reads_a_release_journal_before_any_process_upgraded_it(release_journal: Path) -> None:
    fills = read_fills([release_journal])
    assert [(f.trade_id, f.size, f.side, f.order_index) for f in fills] == [
        (7, Decimal("0.0002"), "buy", None), (8, Decimal("0.00020"), "buy", None),
        (9, Decimal("0.0001"), "sell", None), (12, Decimal("0.0001"), "buy", None),
    ]
    counts = order_counts(release_journal)
    assert counts["orders"] == 6 and counts["fills"] == 4 and counts["last_fill_ms"] == 1767000007000
    assert counts["orders_by_intent"] == {"maker": 3, "hedge": 2, "close": 1}
    assert user_version(release_journal) == 0  # read-only: upgraded only by a process that writes it

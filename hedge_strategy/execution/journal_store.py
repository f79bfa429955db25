"""SQLite storage behind the journal: the statements it runs, rows by column name (schema: `journal_schema`).

One connection per journal file, WAL mode, `synchronous=NORMAL`: a commit has written its frames to the WAL
file (the operating system holds them) when it returns, and the WAL is fsynced at each checkpoint. The
write-ahead rule (recorded before sent) must survive the crash of the process, a killed A or B (kill -9, OOM,
a bug), and it does: the OS writes the file whatever becomes of the process, and the database stays
consistent. Only a crash of the operating system or a power loss can lose the last commits (never corrupt the
file): a hedge sent just before could then be unknown to the journal, and a request published again (Redis
having lost its outcome too) would be hedged a second time; A's next cycle reads A + B from the exchange and
hedges the imbalance or pauses saying so (`strategy.on_imbalance`): bounded, and seen. The price of FULL was
an fsync per order on the hedge path, its largest step under load (4.9 ms p50 for the record, issue 10;
`bench/README.md`), paid on every hedge against a machine crash that also empties a local Redis.
Commits sitting on the trading path still run in a worker thread (`asyncio.to_thread`): a checkpoint's fsync
can land in any commit. The connection
is shared between that worker and the event loop thread (the short synchronous reads and `next_sequence`),
so every call here takes `self._lock`: sqlite3 connections must not be used from two threads at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedge_strategy.exchange.events import Side
from hedge_strategy.execution.fill_identity import FillKey
from hedge_strategy.execution.journal_schema import INSERT_REQUEST_INDEX, migrate, request_index_rows
from hedge_strategy.execution.models import (
    UNRESOLVED_STATES,
    Intent,
    JournalFill,
    JournalOrder,
    OrderState,
)

# Rows travel as mappings by column name, both ways: written with named parameters, read as sqlite3.Row.
ORDER_COLUMNS = (
    "client_order_index", "account_index", "market_id", "intent", "side", "size", "price", "order_type",
    "reduce_only", "state", "reason", "filled_size", "filled_quote", "exchange_filled_size", "order_index",
    "request_id", "created_ms", "sent_ms", "updated_ms", "modify_price",
)
FILL_COLUMNS = (
    *FillKey._fields, "client_order_index", "order_index", "size", "price", "fee", "is_maker", "ts_ms",
    "source", "announced",
)
_SEQUENCE_PREFIX = "seq:"

Row = Mapping[str, Any]


def _insert(table: str, columns: tuple[str, ...], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"


_INSERT_ORDER = _insert("orders", ORDER_COLUMNS)
_UPSERT_ORDER = _insert("orders", ORDER_COLUMNS, "INSERT OR REPLACE")
# A fill is a fact: once stored it never changes, except for its announced flag.
_INSERT_FILL = _insert("fills", FILL_COLUMNS, "INSERT OR IGNORE")
_FILL_KEY_MATCH = " AND ".join(f"{column} = :{column}" for column in FillKey._fields)
_MARK_ANNOUNCED = f"UPDATE fills SET announced = 1 WHERE {_FILL_KEY_MATCH}"


class DuplicateOrderError(ValueError):
    """The client order index is already in the journal: sending it again could double an order."""


def order_to_row(order: JournalOrder, exchange_filled: Decimal) -> dict[str, Any]:
    return {
        "client_order_index": order.client_order_index,
        "account_index": order.account_index,
        "market_id": order.market_id,
        "intent": order.intent.value,
        "side": order.side.value,
        "size": str(order.size),
        "price": str(order.price),
        "order_type": order.order_type,
        "reduce_only": int(order.reduce_only),
        "state": order.state.value,
        "reason": order.reason,
        "filled_size": str(order.filled_size),
        "filled_quote": str(order.filled_quote),
        "exchange_filled_size": str(exchange_filled),
        "order_index": order.order_index,
        "request_id": order.request_id,
        "created_ms": order.created_ms,
        "sent_ms": order.sent_ms,
        "updated_ms": order.updated_ms,
        "modify_price": str(order.modify_price) if order.modify_price is not None else None,
    }


def order_from_row(row: Row) -> tuple[JournalOrder, Decimal]:
    """The order and the largest filled size the exchange has reported for it."""
    order = JournalOrder(
        client_order_index=row["client_order_index"],
        account_index=row["account_index"],
        market_id=row["market_id"],
        intent=Intent(row["intent"]),
        side=Side(row["side"]),
        size=Decimal(row["size"]),
        price=Decimal(row["price"]),
        order_type=row["order_type"],
        reduce_only=bool(row["reduce_only"]),
        state=OrderState(row["state"]),
        reason=row["reason"],
        filled_size=Decimal(row["filled_size"]),
        filled_quote=Decimal(row["filled_quote"]),
        order_index=row["order_index"],
        request_id=row["request_id"],
        created_ms=row["created_ms"],
        sent_ms=row["sent_ms"],
        updated_ms=row["updated_ms"],
        modify_price=Decimal(row["modify_price"]) if row["modify_price"] is not None else None,
    )
    return order, Decimal(row["exchange_filled_size"])


def fill_to_row(fill: JournalFill, announced: bool) -> dict[str, Any]:
    return {
        **fill.key._asdict(),
        "client_order_index": fill.client_order_index,
        "order_index": fill.order_index,
        "size": str(fill.size),
        "price": str(fill.price),
        "fee": str(fill.fee),
        "is_maker": int(fill.is_maker),
        "ts_ms": fill.ts_ms,
        "source": fill.source,
        "announced": int(announced),
    }


def fill_from_row(row: Row) -> JournalFill:
    return JournalFill(
        trade_id=row["trade_id"],
        client_order_index=row["client_order_index"],
        account_index=row["account_index"],
        market_id=row["market_id"],
        side=Side(row["side"]),
        size=Decimal(row["size"]),
        price=Decimal(row["price"]),
        fee=Decimal(row["fee"]),
        is_maker=bool(row["is_maker"]),
        ts_ms=row["ts_ms"],
        source=row["source"],
        order_index=row["order_index"],
        epoch=row["epoch"],
    )


class JournalStore:
    """The SQLite file. Every method is synchronous and thread-safe; the journal picks the thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what we wrote.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # durable against a process crash: see above
            migrate(self._conn, path)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def insert_order(self, row: Row) -> None:
        """Insert and commit one new order (survives a crash of the process once this returns);
        DuplicateOrderError if the index exists."""
        coid = row["client_order_index"]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(_INSERT_ORDER, row)
                self._conn.executemany(INSERT_REQUEST_INDEX, request_index_rows(coid, row["request_id"]))
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise DuplicateOrderError(f"client order index {coid} is already in the journal") from None
            except BaseException:
                self._rollback_quietly()
                raise

    def set_modify_price(self, client_order_index: int, price: str, updated_ms: int) -> None:
        """Record and commit the price a modify of an order is about to be sent for (write-ahead)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "UPDATE orders SET modify_price = ?, updated_ms = ? WHERE client_order_index = ?",
                    (price, updated_ms, client_order_index))
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback_quietly()
                raise

    def write_batch(
        self,
        orders: Iterable[Row],
        fills: Iterable[Row],
        announced: Iterable[FillKey],
        meta: Iterable[tuple[str, str]],
    ) -> None:
        """Apply one batch of background changes in a single transaction."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_UPSERT_ORDER, orders)
                self._conn.executemany(_INSERT_FILL, fills)
                self._conn.executemany(_MARK_ANNOUNCED, (key._asdict() for key in announced))
                self._conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta)
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback_quietly()
                raise

    def next_sequence(self, name: str) -> int:
        """Increment and commit the named sequence; the returned number is on disk before it is used."""
        key = _SEQUENCE_PREFIX + name
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                found = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                number = (int(found["value"]) if found else 0) + 1
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(number))
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback_quietly()
                raise
        return number

    def load_unresolved(self) -> list[tuple[JournalOrder, Decimal]]:
        states = [s.value for s in UNRESOLVED_STATES]
        placeholders = ", ".join("?" * len(states))
        query = f"SELECT * FROM orders WHERE state IN ({placeholders}) ORDER BY created_ms"
        rows = self._select(query, states)
        return [order_from_row(row) for row in rows]

    def load_order(self, client_order_index: int) -> tuple[JournalOrder, Decimal] | None:
        rows = self._select("SELECT * FROM orders WHERE client_order_index = ?", (client_order_index,))
        return order_from_row(rows[0]) if rows else None

    def orders_for_request(self, request_id: str) -> list[int]:
        """Client order indexes of the orders serving `request_id` (indexed lookup), oldest first."""
        rows = self._select(
            "SELECT client_order_index FROM order_requests WHERE request_id = ? ORDER BY client_order_index",
            (request_id,),
        )
        return [int(row["client_order_index"]) for row in rows]

    def load_fills_for(self, client_order_index: int) -> list[JournalFill]:
        rows = self._select(
            "SELECT * FROM fills WHERE client_order_index = ? ORDER BY ts_ms, trade_id", (client_order_index,)
        )
        return [fill_from_row(row) for row in rows]

    def load_unannounced_fills(self) -> list[JournalFill]:
        rows = self._select("SELECT * FROM fills WHERE announced = 0 ORDER BY ts_ms, trade_id")
        return [fill_from_row(row) for row in rows]

    def fills_under_trade_id(
        self, account_index: int, market_id: int, trade_id: int, side: str
    ) -> list[JournalFill]:
        """Every stored fill the venue reported under this trade id (each epoch), oldest epoch first."""
        rows = self._select(
            "SELECT * FROM fills WHERE account_index = ? AND market_id = ? AND trade_id = ? AND side = ?"
            " ORDER BY epoch",
            (account_index, market_id, trade_id, side),
        )
        return [fill_from_row(row) for row in rows]

    def get_meta(self, key: str) -> str | None:
        rows = self._select("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def _select(self, query: str, parameters: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(query, tuple(parameters)).fetchall()

    def _rollback_quietly(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

"""The journal's schema as a list of migrations, and the code that brings a file up to date when it opens.

The file's version is SQLite's `PRAGMA user_version`: the number of migrations applied. `MIGRATIONS[n]` moves
a file from version n to n + 1 and runs in one transaction together with the version bump, so a crash or an
error leaves the file at n, whole, and the next open tries again. A new file (version 0) runs them all.

A journal written before versions were kept (the releases up to the one that indexed hedge request ids) also
reads version 0: migrations 1 and 2 are written so that they find its tables in place and only add what is
missing, then 3 onwards upgrade it like any other file. A file newer than this code is refused: reading it
could misread its rows and writing it could break the newer code.

To change the schema, append a migration; never edit one that shipped (files in the field already ran it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from loguru import logger

REQUEST_ID_SEPARATOR = ","  # JournalOrder.request_id lists several request ids joined by this


class JournalSchemaError(RuntimeError):
    """The journal file cannot be used by this code (written by a newer version)."""


def split_request_ids(request_id: str | None) -> list[str]:
    """The request ids an order's `request_id` field lists (one, several joined by ',', or none)."""
    return [r for r in (request_id or "").split(REQUEST_ID_SEPARATOR) if r]


def request_index_rows(client_order_index: int, request_id: str | None) -> list[dict[str, object]]:
    """The `order_requests` rows of one order: one per request id it serves."""
    return [
        {"request_id": r, "client_order_index": client_order_index} for r in split_request_ids(request_id)
    ]


INSERT_REQUEST_INDEX = (
    "INSERT OR IGNORE INTO order_requests(request_id, client_order_index)"
    " VALUES (:request_id, :client_order_index)"
)


def _run(conn: sqlite3.Connection, statements: str) -> None:
    """Run `;`-separated statements one by one (executescript would commit the migration's transaction)."""
    for statement in statements.split(";"):
        if statement.strip():
            conn.execute(statement)


def _first_tables(conn: sqlite3.Connection) -> None:
    """1: orders, fills keyed by trade id alone, meta (key/value: sequences, the reconcile watermark)."""
    _run(conn, """
        CREATE TABLE IF NOT EXISTS orders (
            client_order_index   INTEGER PRIMARY KEY,
            account_index        INTEGER NOT NULL,
            market_id            INTEGER NOT NULL,
            intent               TEXT    NOT NULL,
            side                 TEXT    NOT NULL,
            size                 TEXT    NOT NULL,
            price                TEXT    NOT NULL,
            order_type           TEXT    NOT NULL,
            reduce_only          INTEGER NOT NULL,
            state                TEXT    NOT NULL,
            reason               TEXT,
            filled_size          TEXT    NOT NULL,
            filled_quote         TEXT    NOT NULL,
            exchange_filled_size TEXT    NOT NULL,
            order_index          INTEGER,
            request_id           TEXT,
            created_ms           INTEGER NOT NULL,
            sent_ms              INTEGER,
            updated_ms           INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS orders_by_state ON orders(state);
        CREATE TABLE IF NOT EXISTS fills (
            trade_id           INTEGER PRIMARY KEY,
            client_order_index INTEGER NOT NULL,
            account_index      INTEGER NOT NULL,
            market_id          INTEGER NOT NULL,
            side               TEXT    NOT NULL,
            size               TEXT    NOT NULL,
            price              TEXT    NOT NULL,
            fee                TEXT    NOT NULL,
            is_maker           INTEGER NOT NULL,
            ts_ms              INTEGER NOT NULL,
            source             TEXT    NOT NULL,
            announced          INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS fills_by_order ON fills(client_order_index);
        CREATE INDEX IF NOT EXISTS fills_unannounced ON fills(announced) WHERE announced = 0;
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
    """)


def _index_request_ids(conn: sqlite3.Connection) -> None:
    """2: `order_requests`, the hedge request ids each order serves (B's idempotency), filled from the orders.

    Releases before versions were kept marked this backfill with the meta flags `order_requests_indexed`
    and `schema_version`; the version replaces both. The backfill is idempotent: a file that had it is
    unharmed.
    """
    _run(conn, """
        CREATE TABLE IF NOT EXISTS order_requests (
            request_id         TEXT    NOT NULL,
            client_order_index INTEGER NOT NULL,
            PRIMARY KEY (request_id, client_order_index)
        );
        DELETE FROM meta WHERE key IN ('order_requests_indexed', 'schema_version')
    """)
    orders = conn.execute("SELECT client_order_index, request_id FROM orders WHERE request_id IS NOT NULL")
    rows = [r for order in orders.fetchall() for r in request_index_rows(*order)]
    conn.executemany(INSERT_REQUEST_INDEX, rows)


def _key_fills_by_venue_identity(conn: sqlite3.Connection) -> None:
    """3: fills keyed by (account, market, trade id, side, epoch), with the exchange's order index.

    A trade id alone took a new trade for an old one once a restarted venue reused the id (see
    `fill_identity`). Every existing row is kept, as epoch 0 with no order index (none was stored).
    """
    _run(conn, """
        CREATE TABLE fills_keyed (
            account_index      INTEGER NOT NULL,
            market_id          INTEGER NOT NULL,
            trade_id           INTEGER NOT NULL,
            side               TEXT    NOT NULL,
            epoch              INTEGER NOT NULL DEFAULT 0,
            client_order_index INTEGER NOT NULL,
            order_index        INTEGER,
            size               TEXT    NOT NULL,
            price              TEXT    NOT NULL,
            fee                TEXT    NOT NULL,
            is_maker           INTEGER NOT NULL,
            ts_ms              INTEGER NOT NULL,
            source             TEXT    NOT NULL,
            announced          INTEGER NOT NULL,
            PRIMARY KEY (account_index, market_id, trade_id, side, epoch)
        );
        INSERT INTO fills_keyed (account_index, market_id, trade_id, side, epoch, client_order_index,
                                 order_index, size, price, fee, is_maker, ts_ms, source, announced)
            SELECT account_index, market_id, trade_id, side, 0, client_order_index,
                   NULL, size, price, fee, is_maker, ts_ms, source, announced
            FROM fills;
        DROP TABLE fills;
        ALTER TABLE fills_keyed RENAME TO fills;
        CREATE INDEX fills_by_order ON fills(client_order_index);
        CREATE INDEX fills_unannounced ON fills(announced) WHERE announced = 0
    """)


def _record_modify_prices(conn: sqlite3.Connection) -> None:
    """4: `orders.modify_price`, the price a modify of a resting order was sent for (written ahead of it).

    Existing rows get NULL: no modify was ever sent by the code that wrote them.
    """
    conn.execute("ALTER TABLE orders ADD COLUMN modify_price TEXT")


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (
    _first_tables, _index_request_ids, _key_fills_by_venue_identity, _record_modify_prices,
)


def schema_version() -> int:
    """The version a journal has once every migration of this code ran."""
    return len(MIGRATIONS)


def file_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations in order, one transaction each; JournalSchemaError for a newer file.

    `conn` is in autocommit mode (isolation_level=None). The version is read again inside each write
    transaction, so two processes opening one old file at once migrate it once.
    """
    created = file_version(conn) == 0 and not _has_tables(conn)
    while (version := file_version(conn)) != schema_version():
        _refuse_newer(version, path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = file_version(conn)  # another process may have migrated it while we waited
            _refuse_newer(version, path)
            if version < schema_version():
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if version < schema_version() and not created:
            summary = (MIGRATIONS[version].__doc__ or "").splitlines()[0].partition(": ")[2]
            logger.info("journal {}: schema migrated from version {} to {}: {}", path, version, version + 1,
                        summary)
    if created:
        logger.info("journal {}: new file, schema version {}", path, schema_version())


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is not None


def _refuse_newer(version: int, path: Path) -> None:
    if version > schema_version():
        raise JournalSchemaError(
            f"journal {path} has schema version {version}, newer than this code's {schema_version()}:"
            " it was written by a newer release; run that release, or move the file aside to start afresh"
        )

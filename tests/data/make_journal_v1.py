"""Write `journal_v1.sqlite`: a journal exactly as the release before schema migrations left it.

That release (meta `schema_version` '1', `PRAGMA user_version` 0) is the first the journal must upgrade in
place. Its schema below is its `_SCHEMA` verbatim, applied the way it opened a file; the rows are what its
`Journal` wrote (taken from a file that release's code produced through its API, orders in every state, fills
announced and not, a netted hedge, a fill of an unknown order, sequences and the reconcile watermark). The
file was checked to dump identically to that one. This script imports nothing from the bot, so it keeps
writing the same file whatever the code becomes: `python tests/data/make_journal_v1.py` rewrites it.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

RELEASE_SCHEMA = """
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
-- The hedge request ids an order serves (B nets several requests into one order): B's idempotency index.
CREATE TABLE IF NOT EXISTS order_requests (
    request_id         TEXT    NOT NULL,
    client_order_index INTEGER NOT NULL,
    PRIMARY KEY (request_id, client_order_index)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# What the release did after the schema on every open, then the rows its Journal wrote, in that order.
RELEASE_ROWS = """
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
INSERT OR REPLACE INTO meta(key, value) VALUES ('order_requests_indexed', '1');
INSERT INTO meta VALUES ('seq:maker', '3');
INSERT INTO meta VALUES ('seq:close', '1');
INSERT INTO orders VALUES (11000000000001, 101, 1, 'maker', 'buy', '0.0004', '95000.0', 'post_only', 0,
    'filled', NULL, '0.00040', '38.000000', '0', 281474976710657, NULL,
    1767000000000, 1767000000003, 1767000010750);
INSERT INTO orders VALUES (11000000000002, 101, 1, 'maker', 'sell', '0.00020', '95010.5', 'post_only', 0,
    'canceled', 'canceled-post-only', '0.0001', '9.50105', '0.0001', 281474976710660, NULL,
    1767000002000, 1767000002004, 1767000011500);
INSERT INTO orders VALUES (11000000000003, 101, 1, 'maker', 'buy', '0.0002', '94999.9', 'post_only', 0,
    'pending_submit', NULL, '0', '0', '0', NULL, NULL,
    1767000005000, NULL, 1767000005000);
INSERT INTO orders VALUES (22000000000001, 101, 1, 'hedge', 'sell', '0.0004', '94980.1', 'ioc', 1,
    'rejected', 'code 21733: margin', '0', '0', '0', NULL, '11000000000001-7+8',
    1767000003000, 1767000003002, 1767000012000);
INSERT INTO order_requests VALUES ('11000000000001-7+8', 22000000000001);
INSERT INTO orders VALUES (22000000000002, 101, 1, 'hedge', 'buy', '0.0003', '95020', 'ioc', 0,
    'partially_filled', NULL, '0.0001', '0', '0.0001', 281474976710670, '11000000000002-9,11000000000005-11',
    1767000004000, 1767000004001, 1767000012500);
INSERT INTO order_requests VALUES ('11000000000002-9', 22000000000002);
INSERT INTO order_requests VALUES ('11000000000005-11', 22000000000002);
INSERT INTO orders VALUES (33000000000001, 101, 1, 'close', 'sell', '0.0001', '90000', 'market', 1,
    'unknown', 'HTTP 500', '0', '0', '0', NULL, NULL,
    1767000006000, 1767000006001, 1767000013000);
INSERT INTO fills VALUES (7, 11000000000001, 101, 1, 'buy', '0.0002', '95000.0', '0.000532', 1,
    1767000000900, 'ws', 1);
INSERT INTO fills VALUES (8, 11000000000001, 101, 1, 'buy', '0.00020', '95000.0', '0', 1,
    1767000000950, 'rest', 1);
INSERT INTO fills VALUES (9, 11000000000002, 101, 1, 'sell', '0.0001', '95010.5', '-0.000100', 1,
    1767000002500, 'reconcile', 0);
INSERT INTO fills VALUES (12, 999999, 101, 1, 'buy', '0.0001', '95001.2', '0.0000186', 0,
    1767000007000, 'ws', 1);
INSERT INTO meta VALUES ('reconcile.trades_watermark_ms', '1767000006500');
"""

FIXTURE = Path(__file__).with_name("journal_v1.sqlite")


def write(path: Path) -> None:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(RELEASE_SCHEMA)
        conn.executescript(f"BEGIN; {RELEASE_ROWS} COMMIT;")
    finally:
        conn.close()  # the last connection checkpoints the WAL into the file and removes it


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE)

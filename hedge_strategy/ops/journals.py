"""Reading the journals from outside their processes: read-only SQLite, safe while A and B write to them.

Each account has its trading journal (`<journal.dir>/journal_<account>.sqlite`, written by A or B) and the
operator journal of `hedgectl clear` (`<journal.dir>/ops/journal_<account>.sqlite`). A fill can sit in both
(A's stream also sees the operator's close fills of account A), so fills are merged: a fill of one file is
left out when the other holds the same trade (same venue trade id and the same facts, `fill_identity`).

Rows are read by column name, so a file of any schema version this code knows reads the same, including
one a running older release still writes (it is migrated only when this code opens it for writing).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hedge_strategy.config import Config
from hedge_strategy.execution import journal_path
from hedge_strategy.execution.fill_identity import disagreement

OPS_SUBDIR = "ops"


def operator_journal_path(config: Config, account_index: int) -> Path:
    """Where `hedgectl clear` journals its own orders for an account (kept apart from A's and B's)."""
    return journal_path(Path(config.journal.dir) / OPS_SUBDIR, account_index)


def account_journal_paths(config: Config, account_index: int) -> list[Path]:
    return [journal_path(config.journal.dir, account_index), operator_journal_path(config, account_index)]


@dataclass(frozen=True)
class FillRow:
    trade_id: int
    client_order_index: int
    account_index: int
    market_id: int
    side: str  # "buy" | "sell"
    size: Decimal
    price: Decimal
    fee: Decimal
    is_maker: bool
    ts_ms: int
    order_index: int | None = None  # the exchange's order index, when the journal stored it (schema 3 on)

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "buy" else -self.size


def _connect(path: Path) -> sqlite3.Connection | None:
    """A read-only connection with rows by column name, or None when the file does not exist yet."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    conn.row_factory = sqlite3.Row
    return conn


def _fill_row(row: sqlite3.Row) -> FillRow:
    return FillRow(
        trade_id=int(row["trade_id"]),
        client_order_index=int(row["client_order_index"]),
        account_index=int(row["account_index"]),
        market_id=int(row["market_id"]),
        side=str(row["side"]),
        size=Decimal(row["size"]),
        price=Decimal(row["price"]),
        fee=Decimal(row["fee"]),
        is_maker=bool(row["is_maker"]),
        ts_ms=int(row["ts_ms"]),
        order_index=row["order_index"] if "order_index" in row.keys() else None,
    )


def read_fills(paths: list[Path], since_ms: int = 0) -> list[FillRow]:
    """Every fill in `paths` at or after `since_ms`, each trade once, oldest first."""
    found: dict[tuple[int, int, int, str], list[FillRow]] = {}  # by venue id: account, market, trade, side
    for path in paths:
        conn = _connect(path)
        if conn is None:
            continue
        try:
            rows = conn.execute("SELECT * FROM fills WHERE ts_ms >= ?", (since_ms,)).fetchall()
        finally:
            conn.close()
        # Within one file every row is its own trade (the journal keyed it); across files, one trade is
        # recognised by its facts: a reused trade id keeps both trades.
        known = {venue_id: list(fills) for venue_id, fills in found.items()}
        for fill in map(_fill_row, rows):
            venue_id = (fill.account_index, fill.market_id, fill.trade_id, fill.side)
            if not any(disagreement(held, fill) is None for held in known.get(venue_id, [])):
                found.setdefault(venue_id, []).append(fill)
    return sorted((f for fills in found.values() for f in fills), key=lambda f: (f.ts_ms, f.trade_id))


def order_counts(path: Path) -> dict[str, object]:
    """Orders by state and by intent, and the number of fills, of one journal file."""
    conn = _connect(path)
    if conn is None:
        return {"path": str(path), "exists": False}
    try:
        by_state = _counts(conn, "SELECT state AS name, COUNT(*) AS n FROM orders GROUP BY state")
        by_intent = _counts(conn, "SELECT intent AS name, COUNT(*) AS n FROM orders GROUP BY intent")
        totals = conn.execute("SELECT COUNT(*) AS fills, MAX(ts_ms) AS last_fill FROM fills").fetchone()
        fills, last_fill = totals["fills"], totals["last_fill"]
    finally:
        conn.close()
    return {
        "path": str(path),
        "exists": True,
        "orders": sum(by_state.values()),
        "orders_by_state": by_state,
        "orders_by_intent": by_intent,
        "fills": int(fills),
        "last_fill_ms": int(last_fill) if last_fill is not None else None,
    }


def _counts(conn: sqlite3.Connection, query: str) -> dict[str, int]:
    return {str(row["name"]): int(row["n"]) for row in conn.execute(query).fetchall()}

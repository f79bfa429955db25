"""Reading the journals from outside their processes: read-only SQLite, safe while A and B write to them.

Each account has its trading journal (`<journal.dir>/journal_<account>.sqlite`, written by A or B) and the
operator journal of `hedgectl clear` (`<journal.dir>/ops/journal_<account>.sqlite`). A fill can sit in both
(A's stream also sees the operator's close fills of account A), so fills are merged by trade id.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hedge_strategy.config import Config
from hedge_strategy.execution import journal_path

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

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "buy" else -self.size


def _connect(path: Path) -> sqlite3.Connection | None:
    """A read-only connection, or None when the file does not exist (nothing journaled yet)."""
    if not path.exists():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def read_fills(paths: list[Path], since_ms: int = 0) -> list[FillRow]:
    """Every fill in `paths` at or after `since_ms`, once per trade id, oldest first."""
    found: dict[int, FillRow] = {}
    for path in paths:
        conn = _connect(path)
        if conn is None:
            continue
        try:
            rows = conn.execute(
                "SELECT trade_id, client_order_index, account_index, market_id, side, size, price, fee,"
                " is_maker, ts_ms FROM fills WHERE ts_ms >= ?",
                (since_ms,),
            ).fetchall()
        finally:
            conn.close()
        for row in rows:
            found.setdefault(
                int(row[0]),
                FillRow(int(row[0]), int(row[1]), int(row[2]), int(row[3]), str(row[4]), Decimal(row[5]),
                        Decimal(row[6]), Decimal(row[7]), bool(row[8]), int(row[9])),
            )
    return sorted(found.values(), key=lambda f: (f.ts_ms, f.trade_id))


def order_counts(path: Path) -> dict[str, object]:
    """Orders by state and by intent, and the number of fills, of one journal file."""
    conn = _connect(path)
    if conn is None:
        return {"path": str(path), "exists": False}
    try:
        by_state = dict(conn.execute("SELECT state, COUNT(*) FROM orders GROUP BY state").fetchall())
        by_intent = dict(conn.execute("SELECT intent, COUNT(*) FROM orders GROUP BY intent").fetchall())
        fills = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        last_fill = conn.execute("SELECT MAX(ts_ms) FROM fills").fetchone()[0]
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

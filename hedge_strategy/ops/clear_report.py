"""The close-all report of `hedgectl clear`: its fields, the screen view and the JSONL line.

The report keeps the fields of the close-all report operators already read (camelCase): `success`,
`message` (with the retry summary), `totalPositions`, `closedCount`, `failedCount`, `retryCount`,
`retrySuccess` and `results`, one entry per attempt (`attempt` 1 or 2) with the account, market symbol, side,
size, average entry price, unrealized PnL, status, message and error code. Beyond them: `cancels` (resting
orders per account), `bIdle` (what B was doing when held), `supersededRequests` (hedge requests answered
failed instead of hedged), `finalCheck` (both accounts re-read from the exchange at the end), `pause` and
`bHold` (B's release).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hedge_strategy.exchange import PositionSnapshot
from hedge_strategy.ops.closer import CloseResult

ACTION = "close_all_positions"
ACTIONS_FILE = "actions.jsonl"


def result_entry(
    role: str, account_index: int, symbol: str, position: PositionSnapshot, result: CloseResult, attempt: int
) -> dict[str, Any]:
    """One attempt at one position, as the report lists it."""
    if attempt == 1:
        message = result.message if result.closed else f"close failed: {result.message}"
    else:
        message = f"retry succeeded: {result.message}" if result.closed else f"retry failed: {result.message}"
    return {
        "account": role.upper(),
        "accountIndex": account_index,
        "symbol": symbol,
        "side": "long" if position.size > 0 else "short",
        "size": str(abs(position.size)),
        "avgEntryPrice": str(position.avg_entry_price),
        "unrealizedPnl": str(position.unrealized_pnl),
        "status": "success" if result.closed else "failed",
        "message": message,
        "code": None if result.closed else result.code,
        "attempt": attempt,
        "filled": str(result.filled),
        "avgClosePrice": None if result.avg_price is None else str(result.avg_price),
        "orders": list(result.orders),
    }


@dataclass
class ClearReport:
    results: list[dict[str, Any]] = field(default_factory=list)
    total_positions: int = 0
    first_round_closed: int = 0
    retry_count: int = 0
    retry_success: int = 0
    cancels: dict[str, Any] = field(default_factory=dict)
    b_idle: str = ""
    superseded: int = 0  # waiting hedge requests answered failed: clear closed the positions instead
    b_hold: str = ""
    final_check: dict[str, Any] = field(default_factory=dict)
    pause: str = ""

    @property
    def closed_count(self) -> int:
        return self.first_round_closed + self.retry_success

    @property
    def failed_count(self) -> int:
        return self.total_positions - self.closed_count

    @property
    def flat_and_clean(self) -> bool:
        return bool(self.final_check.get("flat")) and not self.final_check.get("resting")

    @property
    def success(self) -> bool:
        return self.failed_count == 0 and self.flat_and_clean

    def message(self) -> str:
        text = f"close-all done: {self.closed_count} closed, {self.failed_count} failed"
        if self.retry_count:
            text += f" (second round: {self.retry_success}/{self.retry_count} closed)"
        if not self.final_check.get("flat", True):
            text += "; NOT FLAT on the exchange afterwards"
        if self.final_check.get("resting"):
            text += f"; {self.final_check['resting']} order(s) still resting"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "message": self.message(),
            "totalPositions": self.total_positions,
            "closedCount": self.closed_count,
            "failedCount": self.failed_count,
            "retryCount": self.retry_count,
            "retrySuccess": self.retry_success,
            "results": self.results,
            "cancels": self.cancels,
            "bIdle": self.b_idle,
            "supersededRequests": self.superseded,
            "finalCheck": self.final_check,
            "pause": self.pause,
            "bHold": self.b_hold,
        }

    def log_line(self, pair: str) -> dict[str, Any]:
        """The JSONL record: timestamp, action, details (the counts), result (status and every attempt)."""
        return {
            "timestamp": datetime.now().astimezone().isoformat(timespec="microseconds"),
            "action": ACTION,
            "pair": pair,
            "details": {
                "totalPositions": self.total_positions,
                "firstRoundSuccess": self.first_round_closed,
                "firstRoundFailed": self.total_positions - self.first_round_closed,
                "retryCount": self.retry_count,
                "finalSuccessCount": self.closed_count,
                "finalFailedCount": self.failed_count,
                "cancels": self.cancels,
                "supersededRequests": self.superseded,
                "finalCheck": self.final_check,
            },
            "result": {
                "status": "completed" if self.success else "incomplete",
                "success": self.success,
                "message": self.message(),
                "results": self.results,
            },
        }


def append_action(log_dir: Path, record: dict[str, Any]) -> Path:
    """Append `record` as one JSON line to `<log_dir>/actions.jsonl` (created with its directory)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / ACTIONS_FILE
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
    return path


def render_report(report: ClearReport, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(_results_table(report))
    for role, cancel in report.cancels.items():
        style = "green" if cancel["ok"] else "bold red"
        console.print(Text(f"resting orders {role}: {cancel['message']}", style=style))
    console.print(Text(f"B: {report.b_idle}"))
    console.print(Text(f"hedge requests superseded (answered failed, never hedged): {report.superseded}",
                       style="yellow" if report.superseded else ""))
    final = report.final_check
    console.print(Text(f"exchange afterwards: {final.get('summary', '?')}",
                       style="green" if report.flat_and_clean else "bold red"))
    console.print(Text(report.message(), style="bold green" if report.success else "bold red"))
    console.print(Text(report.pause, style="yellow"))
    console.print(Text(report.b_hold))


def _results_table(report: ClearReport) -> RenderableType:
    if not report.results:
        return Text("no open positions on A or B")
    table = Table()
    for column in ("try", "account", "market", "side", "size", "entry", "uPnL", "status", "message", "code"):
        table.add_column(column)
    for r in report.results:
        status = Text(r["status"], style="green" if r["status"] == "success" else "bold red")
        table.add_row(str(r["attempt"]), f"{r['account']} #{r['accountIndex']}", r["symbol"], r["side"],
                      r["size"], r["avgEntryPrice"], r["unrealizedPnl"], status, r["message"],
                      "" if r["code"] is None else str(r["code"]))
    return Group(Text(f"close-all: {report.total_positions} position(s)"), table)

"""`hedgectl report --plot FILE.png`: cumulative volume and realized PnL over time, and the latency histogram.

matplotlib with the Agg backend (no display needed); imported only when a plot is asked for.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from hedge_strategy.ops.report_calc import STAGES, AccountFigures


def write_plot(path: Path, figures: dict[str, AccountFigures], latencies: dict[str, list[float]]) -> None:
    fig, (volume_ax, pnl_ax, latency_ax) = plt.subplots(3, 1, figsize=(10, 11))
    try:
        _volume_and_pnl(volume_ax, pnl_ax, figures)
        _latency_histogram(latency_ax, latencies)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)


def _volume_and_pnl(volume_ax: plt.Axes, pnl_ax: plt.Axes, figures: dict[str, AccountFigures]) -> None:
    for role, fig in figures.items():
        if not fig.series:
            continue
        times = [datetime.fromtimestamp(ts / 1000) for ts, _, _ in fig.series]
        volume_ax.step(times, [float(v) for _, v, _ in fig.series], where="post", label=role.upper())
        pnl_ax.step(times, [float(p) for _, _, p in fig.series], where="post", label=role.upper())
    combined = _combined_pnl(figures)
    if combined:
        times = [datetime.fromtimestamp(ts / 1000) for ts, _ in combined]
        pnl_ax.step(times, [float(p) for _, p in combined], where="post", label="A + B", linewidth=2)
    volume_ax.set_title("cumulative volume (quote)")
    pnl_ax.set_title("cumulative realized PnL (FIFO, gross of fees)")
    for ax in (volume_ax, pnl_ax):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()


def _combined_pnl(figures: dict[str, AccountFigures]) -> list[tuple[int, Decimal]]:
    """A + B realized PnL after every fill of either account, in time order."""
    events = sorted((ts, role, pnl) for role, fig in figures.items() for ts, _, pnl in fig.series)
    latest: dict[str, Decimal] = {}
    series: list[tuple[int, Decimal]] = []
    for ts, role, pnl in events:
        latest[role] = pnl
        series.append((ts, sum(latest.values(), Decimal(0))))
    return series


def _latency_histogram(ax: plt.Axes, latencies: dict[str, list[float]]) -> None:
    shown = [(stage, latencies.get(stage, [])) for stage in STAGES if latencies.get(stage)]
    if shown:
        ax.hist([values for _, values in shown], bins=20, label=[stage for stage, _ in shown])
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no hedge latency recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("hedge latency by stage (ms from A's fill on the exchange)")
    ax.set_xlabel("ms")
    ax.grid(True, alpha=0.3)

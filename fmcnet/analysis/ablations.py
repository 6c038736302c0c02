"""Notebook 06 -- ablations: the sweep's rows beside the paper's numbers (the sweep is `fmcnet.sweep`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def plot_ablation_bars(rows: Sequence[Mapping[str, Any]], *, metric: str = "R1") -> Figure:
    """Ours beside the paper's number for each sweep row (see `fmcnet.sweep.collect_sweep`).

    Rows are grouped by table; a row that has not run yet shows only the paper's bar.
    """
    tables = list(dict.fromkeys(str(r.get("table", "")) for r in rows))
    fig = Figure(figsize=(4.2 * len(tables) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, table in zip(axes, tables):
        sel = [r for r in rows if str(r.get("table", "")) == table]
        x = np.arange(len(sel))
        ours = [r.get(metric) if r.get(metric) is not None else np.nan for r in sel]
        paper = [(r.get("paper") or {}).get(metric, np.nan) for r in sel]
        ax.bar(x - 0.2, paper, width=0.4, label="paper (SYSU-MM01)", color="#bbbbbb")
        ax.bar(x + 0.2, ours, width=0.4, label="this run", color="#1f77b4")
        ax.set_xticks(x, [r.get("label") or r["row"] for r in sel], rotation=35, ha="right",
                      fontsize=8)
        ax.set_title(f"Table {table}" if table else "rows")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig

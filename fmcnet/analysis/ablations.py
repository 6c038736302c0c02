"""Notebook 06 -- ablations: the sweep's rows beside the paper's numbers (the sweep is `fmcnet.sweep`).

`plot_ablation_bars` draws one sweep (one seed per row) beside the paper's Tables 2-4;
`plot_study` draws the seeded study's figure (`fmcnet.study`); `plot_ablation_study`
draws that study's JSON (mean +- std over seeds, read by `load_ablation_study`), the
picture `make figures` puts in the README.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fmcnet.utils import FMCNetError

# Rows of a study spec in this table are Base / full model across the thermal coupling.
COUPLING_TABLE = "coupling"


def table_title(table: str, headings: Mapping[str, str] | None = None) -> str:
    """'Table 2' for a paper table's number, the heading the spec gives another group
    (its `headings`), the group's own name without one, 'Rows' for none."""
    if not table:
        return "Rows"
    return f"Table {table}" if table.isdigit() else (headings or {}).get(table, table)


# where the synthetic-benchmark study writes its table (rows of STUDY_KEYS)
ABLATION_STUDY = "results/synthetic_ablations.json"
STUDY_KEYS = ("name", "R1_mean", "R1_std", "mAP_mean", "mAP_std")


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
        spread = [r.get(f"{metric}_std") or 0.0 for r in sel]  # seeds' sample std, if any
        paper = [(r.get("paper") or {}).get(metric, np.nan) for r in sel]
        ax.bar(x - 0.2, paper, width=0.4, label="paper (SYSU-MM01)", color="#bbbbbb")
        ax.bar(x + 0.2, ours, width=0.4, yerr=spread, capsize=3, label="this run",
               color="#1f77b4")
        ax.set_xticks(x, [r.get("label") or r["row"] for r in sel], rotation=35, ha="right",
                      fontsize=8)
        ax.set_title(f"Table {table}" if table else "rows")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def plot_study(rows: Sequence[Mapping[str, Any]], *,
               headings: Mapping[str, str] | None = None) -> Figure:
    """R1 and mAP per row of Tables 2-4 (mean, sample-std error bars, one dot per seed)
    and, when the spec has coupling rows, R1 against the thermal coupling; `headings`:
    the spec's titles of the row groups that are not a paper table."""
    tables = [t for t in dict.fromkeys(str(r.get("table", "")) for r in rows)
              if t != COUPLING_TABLE]
    coupling = [r for r in rows if str(r.get("table", "")) == COUPLING_TABLE]
    panels = len(tables) + (1 if coupling else 0)
    fig = Figure(figsize=(3.9 * panels + 0.6, 4.0), layout="constrained")
    axes = fig.subplots(1, max(panels, 1), squeeze=False)[0]
    colours = {"R1": "#1f77b4", "mAP": "#ff7f0e"}
    for ax, table in zip(axes, tables):
        sel = [r for r in rows if str(r.get("table", "")) == table]
        x = np.arange(len(sel))
        for k, metric in enumerate(("R1", "mAP")):
            pos = x + (k - 0.5) * 0.38
            means = [r.get(metric) if r.get(metric) is not None else np.nan for r in sel]
            stds = [r.get(f"{metric}_std") or 0.0 for r in sel]
            ax.bar(pos, means, width=0.38, yerr=stds, capsize=3, color=colours[metric],
                   alpha=0.8, label=metric)
            for p, r in zip(pos, sel):
                dots = [v[metric] for v in (r.get("per_seed") or {}).values()
                        if v.get(metric) is not None]
                ax.plot([p] * len(dots), dots, "k.", ms=4)
        ax.set_xticks(x, [r.get("label") or r["row"] for r in sel], rotation=35, ha="right",
                      fontsize=8)
        ax.set_title(f"{table_title(table, headings)} (synthetic set)", fontsize=10)
        ax.set_ylabel("% (mean ± std over seeds; dots: seeds)")
        ax.grid(axis="y", alpha=0.3)
    if tables:
        axes[0].legend(fontsize=8)
    if coupling:
        ax = axes[len(tables)]
        for label in dict.fromkeys(r.get("label", "") for r in coupling):
            sel = sorted((r for r in coupling if r.get("label", "") == label), key=coupling_of)
            xs = [coupling_of(r) for r in sel]
            ys = [r.get("R1") if r.get("R1") is not None else np.nan for r in sel]
            es = [r.get("R1_std") or 0.0 for r in sel]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
        ax.set_xlabel("thermal coupling (infrared level follows visible luminance)")
        ax.set_ylabel("all-search R1 (%)")
        ax.set_title("Base vs full across the modality gap", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def coupling_of(row: Mapping[str, Any]) -> float:
    """A study row's thermal coupling (its run configuration's); NaN when unknown."""
    value = (row.get("config") or {}).get("synthetic_thermal_coupling")
    return float(value) if value is not None else float("nan")


def load_ablation_study(path: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, metadata) of an ablation study document.

    The document is a JSON list of rows, or an object with `rows` and any metadata
    (dataset, setting, seeds, ...); each row needs `name`, `R1_mean`, `R1_std`,
    `mAP_mean`, `mAP_std` (percent).
    """
    path = Path(path)
    if not path.is_file():
        raise FMCNetError(f"no ablation study at {path}; the synthetic-benchmark study writes "
                          f"it (rows of {', '.join(STUDY_KEYS)})")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FMCNetError(f"{path} is not JSON ({exc}); expected rows of "
                          f"{', '.join(STUDY_KEYS)}") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    meta = {k: v for k, v in doc.items() if k != "rows"} if isinstance(doc, dict) else {}
    if not isinstance(rows, list) or not rows:
        raise FMCNetError(f"{path} holds no rows; expected a list of {{{', '.join(STUDY_KEYS)}}}")
    for i, row in enumerate(rows):
        missing = [k for k in STUDY_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise FMCNetError(f"{path}: row {i} lacks {missing}; every row needs "
                              f"{', '.join(STUDY_KEYS)}")
    return rows, meta


def study_row_label(row: Mapping[str, Any]) -> str:
    """A row's label; rows across the thermal coupling share theirs ("Base"), so they
    carry their coupling too."""
    label = str(row.get("label") or row["name"])
    if str(row.get("table", "")) == COUPLING_TABLE and row.get("thermal_coupling") is not None:
        label += f" (coupling {row['thermal_coupling']:g})"
    return label


def plot_ablation_study(rows: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """R1 and mAP of each ablation row that has a result, mean with +- std error bars
    (percent), labelled by the row's `label` when it has one. Rows that reuse another
    row's model (`same_as`) or have no result yet are left out."""
    rows = [r for r in rows if r.get("R1_mean") is not None and not r.get("same_as")]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2.5), 4.0), layout="constrained")
    ax = fig.add_subplot()
    top = 0.0
    for offset, metric, color in ((-0.2, "R1", "#1f77b4"), (0.2, "mAP", "#ff7f0e")):
        mean = [float(r[f"{metric}_mean"]) for r in rows]
        std = [0.0 if r[f"{metric}_std"] is None else float(r[f"{metric}_std"]) for r in rows]
        ax.bar(x + offset, mean, width=0.4, yerr=std, capsize=3, label=metric, color=color)
        top = max([top, *(m + s for m, s in zip(mean, std))])
    ax.set_xticks(x, [study_row_label(r) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, max(10.0, 1.2 * top))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "ablations (mean +- std)", fontsize=10)
    return fig

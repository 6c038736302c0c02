"""Notebook 06 -- ablations: the sweep's rows beside the paper's numbers (the sweep is `fmcnet.sweep`).

`plot_ablation_bars` draws one sweep (one seed per row) beside the paper's Tables 2-4;
`plot_study` draws the seeded study's figure from the sweep (`fmcnet.study` writes it
as results/synthetic_ablations.png) and `plot_ablation_study` the same from the study's
JSON (`load_ablation_study`; `make figures` writes figures/ablations.png): both are
`plot_groups`, one panel per table or row group, stacked at the README's width. The
study's numbers as tables for the notebooks: `fmcnet.analysis.study_numbers`.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from fmcnet.utils import FMCNetError

# Rows of a study spec in this table are Base / full model across the thermal coupling.
COUPLING_TABLE = "coupling"
# The row every reading is switched in (the full model as `quick` trains it): its mean is
# drawn as a dashed line in the panels of REFERENCE_GROUPS.
REFERENCE_ROW = "t2_full"
REFERENCE_GROUPS = ("readings",)
METRIC_COLOURS = {"R1": "#1f77b4", "mAP": "#ff7f0e"}


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
               headings: Mapping[str, str] | None = None,
               reference: str | None = REFERENCE_ROW) -> Figure:
    """The seeded study's figure from the sweep's rows (`fmcnet.sweep.collect_sweep`): one
    panel per row group (a paper table or a group the spec's `headings` name), R1 and mAP
    per row as mean ± sample std over the seeds with one dot per seed, and, when the spec
    has coupling rows, R1 against the thermal coupling (`plot_groups`)."""
    return plot_groups([_sweep_record(r) for r in rows], headings=headings, reference=reference)


# ---------------------------------------------------------------------------------------
# The study's figure: one panel per row group, horizontal bars so that long labels read
# ---------------------------------------------------------------------------------------
def _sweep_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep row (`collect_sweep`) in the drawing's terms."""
    return {"name": row.get("row") or row.get("name"), "label": row.get("label") or "",
            "table": str(row.get("table", "")), "same_as": row.get("same_as"),
            "R1": row.get("R1"), "R1_std": row.get("R1_std"),
            "mAP": row.get("mAP"), "mAP_std": row.get("mAP_std"),
            "per_seed": row.get("per_seed") or {}, "coupling": coupling_of(row)}


def _json_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the study's JSON (`fmcnet.study`) in the drawing's terms."""
    coupling = row.get("thermal_coupling")
    return {"name": row.get("name"), "label": row.get("label") or "",
            "table": str(row.get("table", "")), "same_as": row.get("same_as"),
            "R1": row.get("R1_mean"), "R1_std": row.get("R1_std"),
            "mAP": row.get("mAP_mean"), "mAP_std": row.get("mAP_std"),
            "per_seed": row.get("per_seed") or {},
            "coupling": float(coupling) if coupling is not None else float("nan")}


def _bar_label(rec: Mapping[str, Any]) -> str:
    label = rec["label"] or rec["name"]
    if rec.get("same_as"):
        label += f" (= {rec['same_as']})"
    elif rec.get("R1") is None:
        label += " (not run)"
    return "\n".join(textwrap.wrap(label, 38))


def plot_groups(records: Sequence[Mapping[str, Any]], *,
                headings: Mapping[str, str] | None = None,
                reference: str | None = REFERENCE_ROW, width: float = 7.5) -> Figure:
    """One panel per row group, stacked in one column `width` inches wide (the README's
    width at 120 dpi): per row, R1 and mAP as horizontal bars (mean, sample-std error bar,
    one dot per seed); rows of the coupling group as R1 against the thermal coupling.

    `records`: `_sweep_record` / `_json_record` dicts. In the groups of REFERENCE_GROUPS
    the `reference` row's means are dashed lines: each reading against the full model.
    """
    groups = [t for t in dict.fromkeys(r["table"] for r in records) if t != COUPLING_TABLE]
    coupling = [r for r in records if r["table"] == COUPLING_TABLE]
    sizes = [sum(r["table"] == t for r in records) for t in groups] + ([4] if coupling else [])
    if not sizes:
        fig = Figure(figsize=(width, 1.5), layout="constrained")
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no study rows", ha="center", va="center")
        ax.set_axis_off()
        return fig
    heights = [0.9 + 0.42 * n for n in sizes]
    fig = Figure(figsize=(width, sum(heights) + 0.5), layout="constrained")
    axes = fig.subplots(len(sizes), 1, squeeze=False, height_ratios=heights)[:, 0]
    ref = next((r for r in records if r["name"] == reference and r.get("R1") is not None), None)
    top = max([10.0] + [(r.get(m) or 0.0) + (r.get(f"{m}_std") or 0.0)
                        for r in records for m in ("R1", "mAP")])
    for ax, group in zip(axes, groups):
        sel = [r for r in records if r["table"] == group]
        y = np.arange(len(sel))[::-1].astype(float)  # first row on top
        for k, metric in enumerate(("R1", "mAP")):
            pos = y + (0.19 if k == 0 else -0.19)
            means = [r.get(metric) if r.get(metric) is not None else np.nan for r in sel]
            stds = [r.get(f"{metric}_std") or 0.0 for r in sel]
            ax.barh(pos, means, height=0.36, xerr=stds, capsize=2,
                    color=METRIC_COLOURS[metric], alpha=0.85)
            for p, r in zip(pos, sel):
                dots = [v[metric] for v in r["per_seed"].values()
                        if isinstance(v, Mapping) and v.get(metric) is not None]
                ax.plot(dots, [p] * len(dots), "k.", ms=3)
        if ref is not None and group in REFERENCE_GROUPS:
            for metric in ("R1", "mAP"):
                ax.axvline(ref[metric], color=METRIC_COLOURS[metric], linestyle="--", lw=1)
        ax.set_yticks(y, [_bar_label(r) for r in sel], fontsize=8)
        ax.set_ylim(-0.7, len(sel) - 0.3)
        ax.set_xlim(0, math.ceil(top * 1.1))
        ax.set_title("\n".join(textwrap.wrap(table_title(group, headings), 80)), fontsize=9,
                     loc="left")
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    if groups:
        axes[len(groups) - 1].set_xlabel(
            "% on the synthetic set (all-search single-shot, test ids)", fontsize=8)
    if coupling:
        ax = axes[-1]
        for label in dict.fromkeys(r["label"] for r in coupling):
            sel = sorted((r for r in coupling if r["label"] == label), key=lambda r: r["coupling"])
            ax.errorbar([r["coupling"] for r in sel],
                        [r["R1"] if r["R1"] is not None else np.nan for r in sel],
                        yerr=[r["R1_std"] or 0.0 for r in sel], marker="o", capsize=3,
                        label=label)
        ax.set_xlabel("thermal coupling (how much infrared follows visible luminance)", fontsize=8)
        ax.set_ylabel("R1 (%)", fontsize=8)
        ax.set_title("Base and the full model across the modality gap", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if groups:
        handles = [Patch(color=METRIC_COLOURS["R1"], alpha=0.85, label="R1, mean ± std"),
                   Patch(color=METRIC_COLOURS["mAP"], alpha=0.85, label="mAP, mean ± std"),
                   Line2D([], [], color="k", marker=".", linestyle="", label="one training seed")]
        if ref is not None and any(g in REFERENCE_GROUPS for g in groups):
            handles.append(Line2D([], [], color="0.3", linestyle="--",
                                  label=f"{ref['name']} (the full model), in the readings"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7,
                   frameon=False)
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


def study_headings(meta: Mapping[str, Any]) -> dict[str, str]:
    """The titles of the row groups that are no paper table, from the spec a study JSON
    names (`provenance.spec`, under configs/sweeps/); {} when the spec is not there."""
    import yaml

    from fmcnet.analysis.runs import repo_path

    name = (meta.get("provenance") or {}).get("spec")
    path = repo_path(Path("configs") / "sweeps" / name) if name else None
    if path is None or not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    return {str(k): str(v) for k, v in (doc.get("headings") or {}).items()}


def plot_ablation_study(rows: Sequence[Mapping[str, Any]], *, title: str = "",
                        headings: Mapping[str, str] | None = None,
                        reference: str | None = REFERENCE_ROW) -> Figure:
    """The study's JSON rows (`load_ablation_study`) drawn as `plot_study` draws the sweep:
    one panel per table or row group (`plot_groups`); `title` over the whole figure."""
    fig = plot_groups([_json_record(r) for r in rows], headings=headings, reference=reference)
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 90)), fontsize=10)
    return fig

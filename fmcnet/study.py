"""The seeded ablation study on the built-in synthetic set, written up from a sweep.

```bash
python -m fmcnet sweep configs/sweeps/synthetic_study.yaml --report results/synthetic_ablations
```

runs every row x seed of the spec that has no result yet (`fmcnet.sweep`), then writes

* `<prefix>.md`   -- provenance, Tables 2-4 as mean ± sample std over the seeds (a row
  group that is no paper table under the spec's `headings`), the per-feature
  diagnostics, Base vs the full model across the thermal coupling, and the spec's
  spec's `comparisons` as a verdict table that leads the document (`fmcnet.stats.compare`:
  Welch's t-test over the seeds, or a paired one; choices on the validation ids);
* `<prefix>.json` -- the same numbers, one record per row;
* `<prefix>.png`  -- the figure.

A hand-written discussion in `<prefix>.discussion.md`, when present, is copied into the
document under its own heading: the generated part never mixes with prose written for
another commit's numbers. Everything here is labelled synthetic; the paper's SYSU-MM01
numbers appear only for orientation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fmcnet.analysis.ablations import COUPLING_TABLE, coupling_of, table_title
from fmcnet.stats import compare, verdict_lines
from fmcnet.sweep import DISCRIMINATOR_KEYS, SweepSpec, collect_sweep, default_out, load_spec
from fmcnet.utils import atomic_write_json, atomic_write_text


def study_rows(spec: SweepSpec | str | os.PathLike, *, profile: str | None = None,
               out: str | os.PathLike | None = None, seeds: list[int] | None = None
               ) -> list[dict[str, Any]]:
    """The sweep's rows (`collect_sweep`), each with `config`, the configuration of its
    first run that has one (its config.yaml, read by `fmcnet.run_files`; a damaged one
    makes the row "corrupt")."""
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    return collect_sweep(spec, profile=profile, out=out, seeds=seeds)


def series(by_name: Mapping[str, Mapping[str, Any]], side: str, ids: str, metric: str
           ) -> dict[Any, float]:
    """{seed: value} of one side of a comparison: a row's `metric` on the test setting or
    (`ids` = "val") on the validation ids, or with `row:feature` one feature's retrieval."""
    name, _, feature = side.partition(":")
    out = {}
    for seed, rec in (by_name[name].get("per_seed") or {}).items():
        diag = rec.get("diagnostics") or {}
        if feature:
            value = diag.get(f"features/{feature}/{metric}")
        elif ids == "val":
            value = diag.get(f"val/{metric}")
        else:
            value = rec.get(metric)
        if value is not None:
            out[seed] = value
    return out


def comparisons(spec: SweepSpec, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every comparison of the spec, on R1 and on mAP (`fmcnet.stats.compare`)."""
    by_name = {r["row"]: r for r in rows}
    return [{"better": c.better, "worse": c.worse, "what": c.what, "ids": c.ids,
             "paired": c.paired,
             **{m: compare(series(by_name, c.better, c.ids, m), series(by_name, c.worse, c.ids, m),
                           paired=c.paired) for m in ("R1", "mAP")}}
            for c in spec.comparisons]


def _pm(mean: Any, std: Any, digits: int = 1) -> str:
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the JSON document."""
    cfg = row.get("config") or {}
    return {
        "name": row["row"], "label": row.get("label", ""), "table": row.get("table", ""),
        "same_as": row.get("same_as"),
        "status": row["status"], "seeds": row.get("seeds", []), "n": row.get("n", 0),
        "R1_mean": row.get("R1"), "R1_std": row.get("R1_std"),
        "mAP_mean": row.get("mAP"), "mAP_std": row.get("mAP_std"),
        "per_seed": {str(k): v for k, v in (row.get("per_seed") or {}).items()},
        "diagnostics": {k: {"mean": m, "std": s}
                        for k, (m, s) in (row.get("diagnostics") or {}).items()},
        "paper": row.get("paper") or {},
        "thermal_coupling": cfg.get("synthetic_thermal_coupling"),
        "cross_modal_predictability": cfg.get("synthetic_cross_modal_predictability"),
        "wall_s": row.get("wall_s"),
    }


def _feature_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Feature names of results.json["features"] diagnostics ("features/<name>/R1")."""
    names = []
    for row in rows:
        for key in row.get("diagnostics") or {}:
            parts = key.split("/")
            if parts[0] == "features" and parts[-1] == "R1" and len(parts) >= 3:
                names.append("/".join(parts[1:-1]))
    return list(dict.fromkeys(names))


def provenance(spec: SweepSpec, rows: Sequence[Mapping[str, Any]], profile: str | None,
               command: str) -> dict[str, Any]:
    done = [r for r in rows if r.get("n")]
    configs = [r["config"] for r in done if r.get("config")]

    def values(key: str) -> list[Any]:
        return sorted({json.dumps(c.get(key)) for c in configs})

    walls = {}
    for r in done:  # a same_as row reuses its source's runs: count them once
        walls[r["folder"]] = r.get("wall_s") or 0.0
    return {
        "command": command,
        "spec": str(spec.path.name),
        "profile": profile or spec.profile,
        "setting": spec.setting,
        "commits": sorted({c for r in done for c in r.get("commits", [])}),
        "machines": sorted({m for r in done for m in r.get("machines", [])}),
        "devices": sorted({d for r in done for d in r.get("devices", [])}),
        "trials": sorted({r.get("trials") for r in done if r.get("trials") is not None}),
        "seeds": {r["row"]: r.get("seeds") for r in rows if not r.get("same_as")},
        "runs_finished": sum(len(r.get("per_seed") or {}) for r in done
                             if not r.get("same_as")),
        "wall_s_total": round(sum(walls.values()), 1),
        "dataset": {k: [json.loads(v) for v in values(k)] for k in (
            "dataset", "synthetic_identities", "synthetic_thermal_coupling",
            "synthetic_cross_modal_predictability")},
        "model": {k: [json.loads(v) for v in values(k)] for k in (
            "backbone", "height", "width", "epochs", "steps_per_epoch", "optimizer", "lr")},
    }


def _table_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| row | setting | val R1 | val mAP | test R1 | test mAP | seeds | "
             "paper R1 / mAP (SYSU-MM01) | status |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        paper = r.get("paper") or {}
        orient = (f"{paper['R1']:.2f} / {paper['mAP']:.2f}" if {"R1", "mAP"} <= set(paper)
                  else "—")
        status = r["status"] + (f": {r['message']}" if r.get("message") else "")
        diag = r.get("diagnostics") or {}
        val = [_pm(*diag.get(f"val/{m}", (None, None))) for m in ("R1", "mAP")]
        lines.append(f"| {r['row']} | {r.get('label', '')} | {val[0]} | {val[1]} | "
                     f"{_pm(r.get('R1'), r.get('R1_std'))} "
                     f"| {_pm(r.get('mAP'), r.get('mAP_std'))} | {r.get('n', 0)}/"
                     f"{len(r.get('seeds') or [None])} | {orient} | "
                     f"{status.replace('|', '/')} |")
    return lines


def study_markdown(spec: SweepSpec, rows: Sequence[Mapping[str, Any]], prov: Mapping[str, Any],
                   *, figure: str | None = None, discussion: str = "") -> str:
    """The study document (Markdown)."""
    ds = prov["dataset"]
    out = [
        "# Ablation study on the built-in synthetic set",
        "",
        "**Synthetic data, not SYSU-MM01.** The rows of the paper's Tables 2-4 trained on the "
        "built-in synthetic VI-ReID set (SYSU-MM01 layout) at its default modality gap; the "
        "paper's SYSU-MM01 numbers are shown for orientation only, nothing here is tuned "
        "towards them.",
        "",
        "Made by one command (rows that already have results are not trained again):",
        "",
        "```bash",
        prov["command"],
        "```",
        "",
    ]
    found = comparisons(spec, rows)
    if found:
        out += ["## Verdicts", "",
                "Each comparison: the difference of the mean R1 and mAP over the seeds (row "
                "minus the row it is compared with) and the two-sided p-value of Welch's "
                "t-test over the seeds (a paired t-test for two features of the same runs). "
                "**better** / **worse**: p < 0.05; otherwise not resolved. `ids`: **val** -- "
                "the held-out validation identities, where every choice of the study is made; "
                "**test** -- the test identities, for the tables only.", "",
                *verdict_lines(found), ""]
    out += [
        "## Provenance",
        "",
        "| | |",
        "|---|---|",
        f"| spec | `configs/sweeps/{prov['spec']}` |",
        f"| commit(s) of the runs | {', '.join(prov['commits']) or '—'} |",
        f"| profile | `{prov['profile']}` ({_fmt_values(prov['model'])}) |",
        f"| setting | {prov['setting']} (R1 / mAP in %, mean over the evaluation trials) |",
        f"| evaluation trials | {', '.join(map(str, prov['trials'])) or '—'} |",
        f"| data set | {_fmt_values(ds)} |",
        f"| finished runs | {prov['runs_finished']} |",
        f"| machine | {'; '.join(prov['machines'] or prov['devices']) or '—'} |",
        f"| wall time | {prov['wall_s_total'] / 3600:.2f} h of training + evaluation, summed over the runs |",
        "",
        "R1 / mAP: mean ± sample standard deviation (n - 1) over the training seeds; "
        "seeds: finished / asked. The seeds change the initialisation, the batches and the "
        "augmentation; the data set and the test split are the same for every run.",
        "",
    ]
    tables = [t for t in dict.fromkeys(str(r.get("table", "")) for r in rows)
              if t != COUPLING_TABLE]
    for table in tables:
        sel = [r for r in rows if str(r.get("table", "")) == table]
        out += [f"## {table_title(table, spec.headings)}", "", *_table_lines(sel), ""]

    features = _feature_names(rows)
    if features:
        out += ["## Retrieval per feature (diagnostics)", "",
                "R1 of each feature on its own, same runs, same protocol "
                "(results.json `features`):", "",
                "| row | " + " | ".join(features) + " |",
                "|---|" + "---:|" * len(features)]
        for r in rows:
            if str(r.get("table", "")) == COUPLING_TABLE or r.get("same_as"):
                continue
            d = r.get("diagnostics") or {}
            cells = [_pm(*d.get(f"features/{f}/R1", (None, None))) for f in features]
            out.append(f"| {r['row']} | " + " | ".join(cells) + " |")
        out.append("")
        omegas = sorted({k for r in rows for k in (r.get("diagnostics") or {})
                         if k.startswith(("omega/", "hinge/")) or k in DISCRIMINATOR_KEYS})
        if omegas:
            out += ["SFF weights, hinge activity and the discriminators (accuracy: 0.5 = "
                    "chance; loss: 2.77 when D says 0.5 everywhere) at the end of training:",
                    "",
                    "| row | " + " | ".join(f"`{k}`" for k in omegas) + " |",
                    "|---|" + "---:|" * len(omegas)]
            for r in rows:
                d = r.get("diagnostics") or {}
                if any(k in d for k in omegas) and not r.get("same_as"):
                    out.append(f"| {r['row']} | " + " | ".join(
                        _pm(*d.get(k, (None, None)), digits=2) for k in omegas) + " |")
            out.append("")

    coupling = [r for r in rows if str(r.get("table", "")) == COUPLING_TABLE]
    if coupling:
        out += ["## Across the thermal coupling", "",
                "How much a garment's infrared level follows its visible luminance "
                "(`synthetic_thermal_coupling`; 0.95 was the old default, a grey-level copy):",
                "", "| model | coupling | predictability | R1 | mAP | seeds |",
                "|---|---:|---:|---:|---:|---:|"]
        for r in sorted(coupling, key=lambda r: (r.get("label", ""), coupling_of(r))):
            cfg = r.get("config") or {}
            out.append(f"| {r.get('label', '')} | {_knob(cfg.get('synthetic_thermal_coupling'))} | "
                       f"{_knob(cfg.get('synthetic_cross_modal_predictability'))} | "
                       f"{_pm(r.get('R1'), r.get('R1_std'))} | {_pm(r.get('mAP'), r.get('mAP_std'))} "
                       f"| {r.get('n', 0)}/{len(r.get('seeds') or [None])} |")
        out.append("")

    if figure:
        out += [f"![the study]({figure})", ""]
    if discussion.strip():
        out += ["## Discussion (written by hand for these numbers)", "", discussion.strip(), ""]
    return "\n".join(out)


def _knob(x: Any) -> str:
    return "—" if x is None else str(x)


def _fmt_values(values: Mapping[str, list[Any]]) -> str:
    parts = []
    for key, vals in values.items():
        shown = ", ".join(str(v) for v in vals) if vals else "—"
        parts.append(f"{key.removeprefix('synthetic_')} {shown}")
    return "; ".join(parts)


def write_study(spec_path: str | os.PathLike, prefix: str | os.PathLike, *,
                profile: str | None = None, out: str | os.PathLike | None = None,
                seeds: list[int] | None = None, command: str = "") -> dict[str, Path]:
    """Collect the sweep and write `<prefix>.md`, `.json` and `.png`; returns their paths."""
    from fmcnet.analysis import plot_study, repo_path
    from fmcnet.viz.figures import save_figure

    spec = load_spec(spec_path)
    profile = profile or spec.profile
    sweep_dir = repo_path(out) if out else default_out(spec, profile)
    rows = study_rows(spec, profile=profile, out=sweep_dir, seeds=seeds)
    prefix = repo_path(prefix)
    command = command or (f"python -m fmcnet sweep {os.path.relpath(spec.path, repo_path('.'))}"
                          f" --report {os.path.relpath(prefix, repo_path('.'))}")
    prov = provenance(spec, rows, profile, command)
    paths = {"md": prefix.with_suffix(".md"), "json": prefix.with_suffix(".json"),
             "png": prefix.with_suffix(".png")}
    save_figure(plot_study(rows, headings=spec.headings), paths["png"])
    discussion_file = prefix.with_name(prefix.name + ".discussion.md")
    discussion = discussion_file.read_text() if discussion_file.is_file() else ""
    atomic_write_text(paths["md"], study_markdown(spec, rows, prov, figure=paths["png"].name,
                                                  discussion=discussion))
    atomic_write_json(paths["json"], {
        "synthetic": True,
        "note": "built-in synthetic set, NOT SYSU-MM01",
        "provenance": prov,
        "rows": [_record(r) for r in rows],
        "comparisons": comparisons(spec, rows),
    })
    return paths


__all__ = ["provenance", "study_markdown", "study_rows", "write_study"]

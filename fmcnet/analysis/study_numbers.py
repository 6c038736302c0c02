"""The seeded study's numbers in a notebook, rendered from its JSON, never typed.

`study_summary(rows=[...])` reads `results/synthetic_ablations.json` (written by
`fmcnet.study`) and returns the chosen rows -- R1 / mAP on the test ids and on the
validation ids, chosen diagnostics -- and the study's comparisons between them as a
Markdown table that a notebook displays. Notebooks 01-03 and 06 end with it, so their
"what the study measured" sections change when the study is run again, and only then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmcnet.analysis.ablations import ABLATION_STUDY, load_ablation_study
from fmcnet.analysis.runs import repo_root
from fmcnet.stats import verdict_lines
from fmcnet.utils import FMCNetError


@dataclass(repr=False)
class StudySummary:
    """Rows and comparisons of the study's JSON as Markdown; a notebook shows it as a table."""

    markdown: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # the JSON's provenance and comparisons

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.markdown


def _pm(cell: Any, digits: int = 1) -> str:
    """'mean ± std' of a {mean, std} / (mean, std) / number; '—' when absent."""
    if isinstance(cell, Mapping):
        mean, std = cell.get("mean"), cell.get("std")
    elif isinstance(cell, (list, tuple)):
        mean, std = (list(cell) + [None, None])[:2]
    else:
        mean, std = cell, None
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _side_row(side: str) -> str:
    """The row a comparison's side names ("t2_full:fused" is row t2_full's F_fp)."""
    return side.partition(":")[0]


def study_summary(rows: Sequence[str] | None = None, *,
                  comparisons: str | Sequence[str | Sequence[str]] | None = "auto",
                  diagnostics: Sequence[str] = (),
                  path: str | os.PathLike = ABLATION_STUDY) -> StudySummary:
    """What the seeded study measured, for `rows` (names; None: every row), as Markdown.

    * a table: each row's R1 / mAP on the test ids and, where the runs held them out, on
      the validation ids (`val/R1`, `val/mAP`), mean ± std over the seeds, the seed count,
      and one column per key of `diagnostics` (e.g. `features/generated/R1`, `disc_acc`,
      `omega/v_specific`, `hinge/dc`);
    * the study's comparisons: `"auto"` every one between two of `rows`, or a list of
      `"better - worse"` strings / `(better, worse)` pairs, or None -- difference, p and
      verdict as `fmcnet.study` decided them (`fmcnet.stats.compare`).

    Rows or comparisons the JSON does not hold are listed as such (the study may not have
    run them yet); without the JSON at all the summary says how to make it. The numbers
    are the JSON's: a notebook that shows this never types them.
    """
    file = Path(path)
    file = file if file.is_absolute() else repo_root() / file
    shown = _display_path(file)
    if not file.is_file():
        return StudySummary(f"*No study at `{shown}` yet: `python -m fmcnet sweep "
                            "configs/sweeps/synthetic_study.yaml --report "
                            "results/synthetic_ablations` makes it.*")
    all_rows, meta = load_ablation_study(file)
    by_name = {r["name"]: r for r in all_rows}
    names = list(by_name) if rows is None else list(rows)
    missing = [n for n in names if n not in by_name]
    chosen = [by_name[n] for n in names if n in by_name]
    found = _chosen_comparisons(meta.get("comparisons") or [], names, comparisons, missing)

    prov = meta.get("provenance") or {}
    commits = ", ".join(prov.get("commits") or []) or "unknown"
    lines = [f"From `{shown}` (**synthetic set, not SYSU-MM01**; profile "
             f"`{prov.get('profile', '?')}`, setting {prov.get('setting', '?')}, runs at "
             f"commit(s) {commits}). R1 / mAP in %, mean ± sample std over the training seeds.",
             ""]
    has_val = any("val/R1" in (r.get("diagnostics") or {}) for r in chosen)
    head = ["row", "setting", "test R1", "test mAP"] + (["val R1", "val mAP"] if has_val else [])
    head += ["seeds"] + [f"`{k}`" for k in diagnostics]
    lines += ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in chosen:
        diag = r.get("diagnostics") or {}
        label = str(r.get("label") or "") + (f" (= `{r['same_as']}`)" if r.get("same_as") else "")
        cells = [f"`{r['name']}`", label.replace("|", "/"),
                 _pm((r.get("R1_mean"), r.get("R1_std"))),
                 _pm((r.get("mAP_mean"), r.get("mAP_std")))]
        if has_val:
            cells += [_pm(diag.get("val/R1")), _pm(diag.get("val/mAP"))]
        seeds = r.get("seeds") or []
        cells.append(f"{r.get('n', len(r.get('per_seed') or {}))}/{len(seeds) or '?'}")
        for key in diagnostics:
            digits = 1 if key.endswith(("/R1", "/mAP", "/mINP")) else 2
            cells.append(_pm(diag.get(key), digits))
        lines.append("| " + " | ".join(cells) + " |")
    if found:
        lines += ["", *verdict_lines(found)]
    if missing:
        lines += ["", "Not in this study (yet): " + ", ".join(f"`{m}`" for m in missing) + "."]
    return StudySummary("\n".join(lines), chosen, found, missing, dict(meta))


def _chosen_comparisons(available: Sequence[Mapping[str, Any]], names: Sequence[str],
                        wanted: str | Sequence[str | Sequence[str]] | None,
                        missing: list[str]) -> list[dict[str, Any]]:
    """The comparisons of the JSON that `study_summary` shows; adds unknown pairs to `missing`."""
    if wanted is None:
        return []
    if isinstance(wanted, str):
        if wanted != "auto":
            raise FMCNetError(f"comparisons must be 'auto', None or a list of pairs, got {wanted!r}")
        return [dict(c) for c in available
                if _side_row(c["better"]) in names and _side_row(c["worse"]) in names]
    out = []
    for pair in wanted:
        better, worse = ([s.strip() for s in pair.split(" - ")] if isinstance(pair, str)
                         else list(pair))
        hits = [dict(c) for c in available if (c["better"], c["worse"]) == (better, worse)]
        if hits:
            out += hits
        else:
            missing.append(f"{better} − {worse}")
    return out


def _display_path(path: Path) -> str:
    """`path` relative to the checkout when inside it (notebook outputs name no machine)."""
    try:
        return str(path.resolve().relative_to(repo_root().resolve()))
    except ValueError:
        return str(path)


__all__ = ["StudySummary", "study_summary"]

"""The README's pictures, drawn from the reference run by one command (`make figures`).

`python -m fmcnet figures [--run RUN] [--out figures/]` loads the reference run
(`runs/demo`, trained when missing) and writes, each from the same functions the
notebooks call:

* `samples.png` -- every camera's view of the same identities, both modalities (nb 00);
* `decomposition.png` -- shared vs specific features of test identities, SFD trained with
  and without the MD loss side by side (Fig. 4's idea): notebook 01's two short runs
  (`md_runs_dir`, trained when missing), or the reference run alone with `md_runs=None`;
* `real_vs_generated.png` -- real vs generated specific features with a one-line reading
  (Fig. 5's idea, nb 02);
* `cmc.png` -- the CMC curves of every evaluation setting (nb 05);
* `training_curves.png` -- the training log, losses grouped by module (nb 04);
* `ablations.png` -- the synthetic-set ablation study (`results/synthetic_ablations.json`),
  one panel per table; skipped with a message while that study has not been run.

The browser picture (`ranking_browser.png`) is a screenshot of notebook 08 in Chromium,
taken by the real-browser test (`make figures` runs it after this).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from fmcnet.analysis.ablations import (
    ABLATION_STUDY,
    load_ablation_study,
    plot_ablation_study,
    study_headings,
)
from fmcnet.analysis.compensate import plot_real_vs_generated
from fmcnet.analysis.data import samples_by_camera
from fmcnet.analysis.decompose import md_comparison, md_config, md_runs_dir, plot_decomposition
from fmcnet.analysis.features import decomposed_features
from fmcnet.analysis.runs import repo_path
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    from fmcnet.train import TrainResult


@dataclass
class Written:
    """One README picture: its file, or why it was skipped."""

    name: str
    path: Path | None
    note: str = ""


def _where(run: TrainResult) -> str:
    data = "the synthetic set" if run.cfg.dataset == "synthetic" else run.cfg.dataset
    return f"{run.run_dir.name}, {run.cfg.profile} profile, {data}"


_DEFAULT = "default"


def make_figures(run: TrainResult, out_dir: str | os.PathLike, *,
                 ablations: str | os.PathLike | None = ABLATION_STUDY,
                 md_runs: str | os.PathLike | None = _DEFAULT,
                 max_identities: int = 12, samples: int = 8) -> list[Written]:
    """Draw every README picture of `run` into `out_dir`; returns what was written or skipped.

    `md_runs`: the folder of the MD on/off pair for `decomposition.png` (default: notebook
    01's, `md_runs_dir(profile)`, trained there when missing); None draws the reference
    run's features alone."""
    from fmcnet.viz.figures import plot_cmc, plot_sample_grid, plot_training_curves, save_figure

    out_dir = Path(out_dir)
    where = _where(run)
    done: list[Written] = []

    def save(name: str, fig: Figure, note: str = "") -> None:
        done.append(Written(name, save_figure(fig, out_dir / f"{name}.png"), note))

    images, titles = samples_by_camera(run.dataset, n=samples)
    fig = plot_sample_grid(images, n=samples, titles=titles)
    fig.suptitle(f"the same identities in every camera ({where})", fontsize=10)
    save("samples", fig)

    fs = decomposed_features(run.model, run.dataset, run.cfg, source="test",
                             max_identities=max_identities)
    if md_runs is not None:
        cfg = md_config(run.cfg.profile, dataset=run.cfg.dataset,
                        data_root=str(run.cfg.data_root or ""))
        folder = md_runs_dir(run.cfg.profile) if md_runs == _DEFAULT else repo_path(md_runs)
        pair = md_comparison(cfg, folder, source="test", max_identities=max_identities,
                             dataset=run.dataset)
        fig = plot_decomposition(pair)
        fig.suptitle(f"SFD alone, with and without the MD loss: test identities "
                     f"({run.cfg.profile} profile, {folder.name})", fontsize=10)
        save("decomposition", fig)
    elif "specific" in fs.kinds:
        save("decomposition", plot_decomposition({f"{where}: test identities": fs}))
    else:
        done.append(Written("decomposition", None, "the run has no SFD (sfd=false)"))
    if "generated" in fs.kinds:
        fig = plot_real_vs_generated(fs)
        fig.suptitle(where, fontsize=10)
        save("real_vs_generated", fig)
    else:
        done.append(Written("real_vs_generated", None, "the run has no FMC (fmc=false)"))

    if run.results:
        trials = run.results.get("trials")
        save("cmc", plot_cmc(run.results, title=f"CMC, mean of {trials} trials ({where})"))
    else:
        done.append(Written("cmc", None, f"{run.run_dir} has no results.json"))
    fig = plot_training_curves(run.history)
    fig.suptitle(where, fontsize=10)
    save("training_curves", fig)

    if ablations is None:
        done.append(Written("ablations", None, "no ablation study given"))
    else:
        try:
            rows, meta = load_ablation_study(repo_path(ablations))
        except FMCNetError as exc:
            done.append(Written("ablations", None, f"skipped: {exc}"))
        else:
            prov = meta.get("provenance") or {}
            title = (f"the seeded study on the synthetic set (not SYSU-MM01), profile "
                     f"{prov.get('profile', '?')}, {prov.get('setting', 'all/single')}: "
                     f"mean ± std over the training seeds")
            save("ablations", plot_ablation_study(
                rows, title=title, headings=study_headings(meta)))
    return done

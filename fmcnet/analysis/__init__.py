"""What the notebooks compute, so that the notebooks hold only prose, parameters and calls.

One module per notebook stage; every public name is re-exported here, so notebooks and
tests write `from fmcnet import analysis; analysis.separation_stats(...)`:

* `runs` (every notebook): `repo_path`, `run_folder`, `notebook_config`,
  `train_or_resume`, `LiveCurves`, `describe_run`, `loss_history`; the one reference run
  of notebooks 02-05, 07, 08 (`reference_run`, `training_run`, `run_results`,
  `ranking_browser`; `runs/demo`, what `make demo` writes); notebook 08's pair of runs
  (`comparison_runs`, `comparison_browser`: Base and the full model of the reference study);
* `data` (00): `dataset_report`, `samples_by_camera`, `pixel_intensities`,
  `images_per_camera`, `modality_pairs`, `torso_levels`, `plot_torso_levels`;
* `features` (01, 02, 07): `FeatureSet` / `decomposed_features`, `pca_2d`;
* `decompose` (01, SFD): `sample_batch`, `trace_shapes`, `separation_stats`,
  `md_config` / `md_runs_dir` / `md_comparison` (the MD on/off pair), `plot_decomposition`;
* `compensate` (02, FMC): `plot_adversarial_dynamics`, `discriminator_scores`,
  `compensation_stats`, `compensation_reading`, `plot_discriminator_scores`,
  `plot_real_vs_generated`, `real_and_generated`;
* `fuse` (03, SFF): `omega_history`, `feature_variants`, `retrieval_table`,
  `fusion_retrieval`;
* `ablations` (06): `plot_ablation_bars`, `plot_study` (the sweep itself is
  `fmcnet.sweep`, the study document `fmcnet.study`), `load_ablation_study` /
  `plot_ablation_study` (the study's JSON, for `make figures`), `plot_groups`;
* `study_numbers` (01-03, 06): `study_summary`, the study's rows and comparisons as a
  table rendered from its JSON (the notebooks never type a study number);
* `readme_figures`: `make_figures`, the README's pictures from the reference run
  (`make figures`).

Notebook 05's CMC comes from results.json (`fmcnet.viz.figures.plot_cmc`).
Figures are `matplotlib.figure.Figure` objects built without pyplot, like `fmcnet.viz`.
"""

from fmcnet.analysis.ablations import (
    ABLATION_STUDY,
    COUPLING_TABLE,
    load_ablation_study,
    plot_ablation_bars,
    plot_ablation_study,
    plot_groups,
    plot_study,
    study_headings,
)
from fmcnet.analysis.compensate import (
    DIRECTIONS,
    compensation_reading,
    compensation_stats,
    discriminator_scores,
    plot_adversarial_dynamics,
    plot_discriminator_scores,
    plot_real_vs_generated,
    real_and_generated,
)
from fmcnet.analysis.data import (
    dataset_report,
    images_per_camera,
    modality_pairs,
    pixel_intensities,
    plot_torso_levels,
    samples_by_camera,
    torso_levels,
)
from fmcnet.analysis.decompose import (
    MD_SETTINGS,
    Batch,
    MDComparison,
    md_comparison,
    md_config,
    md_runs_dir,
    plot_decomposition,
    sample_batch,
    separation_stats,
    trace_shapes,
)
from fmcnet.analysis.features import FeatureSet, decomposed_features, pca_2d
from fmcnet.analysis.fuse import (
    feature_variants,
    fusion_retrieval,
    omega_history,
    retrieval_table,
)
from fmcnet.analysis.readme_figures import Written, make_figures
from fmcnet.analysis.runs import (
    REFERENCE_RUN,
    LiveCurves,
    clear_run,
    comparison_browser,
    comparison_runs,
    demo_config,
    describe_run,
    loss_history,
    notebook_config,
    open_run,
    ranking_browser,
    reference_run,
    reference_run_dir,
    repo_path,
    repo_root,
    run_folder,
    run_results,
    runs_root,
    train_or_resume,
    training_run,
    with_switches,
)
from fmcnet.analysis.study_numbers import StudySummary, study_summary

__all__ = [
    "ABLATION_STUDY", "COUPLING_TABLE", "DIRECTIONS", "MD_SETTINGS", "REFERENCE_RUN", "Written",
    "Batch", "FeatureSet", "LiveCurves", "MDComparison", "StudySummary",
    "clear_run", "comparison_browser", "comparison_runs", "compensation_reading",
    "compensation_stats", "demo_config",
    "open_run", "ranking_browser",
    "reference_run", "reference_run_dir", "run_results", "training_run", "dataset_report",
    "decomposed_features", "describe_run",
    "discriminator_scores", "feature_variants", "fusion_retrieval", "images_per_camera",
    "load_ablation_study", "loss_history", "make_figures", "md_comparison", "md_config", "md_runs_dir", "modality_pairs",
    "notebook_config", "omega_history", "pca_2d",
    "pixel_intensities", "plot_ablation_bars", "plot_ablation_study", "plot_adversarial_dynamics",
    "plot_decomposition", "plot_discriminator_scores", "plot_real_vs_generated",
    "plot_groups", "plot_study", "study_headings", "plot_torso_levels", "study_summary", "torso_levels",
    "real_and_generated", "repo_path", "repo_root", "retrieval_table", "run_folder",
    "runs_root", "sample_batch", "samples_by_camera", "separation_stats", "trace_shapes",
    "train_or_resume", "with_switches",
]

"""Paths and runs of the notebooks: where a run folder is, its configuration, training it.

Every notebook starts here: `run_folder` and `notebook_config` resolve the papermill
parameters; `train_or_resume` makes a run re-runnable; `LiveCurves` draws it while it
trains; `loss_history` reads its metrics log as a table.

One reference run: notebooks 02-05, 07 and 08 look at the same trained model, the run
`make demo` writes (`runs/demo`). `reference_run` loads it, resumes it when it was
interrupted and trains it (with the demo's configuration, `demo_config`) when it is
missing; only notebook 01's MD on/off pair and notebook 06's sweep train runs of their own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmcnet.config import Config, as_overrides, make_config, plain, validate
from fmcnet.data.base import VIDataset
from fmcnet.run_files import check_run_files, read_metrics, read_results
from fmcnet.run_folder import clear_run, last_checkpoint
from fmcnet.run_lock import hold_run
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    import pandas as pd

    from fmcnet.train import TrainResult
    from fmcnet.viz.browser import RankingBrowser


def repo_root() -> Path:
    """The checkout that holds the package (an editable install), else the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def repo_path(path: str | os.PathLike) -> Path:
    """`path` as given when absolute, else relative to the checkout (notebooks run in notebooks/)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p


def runs_root() -> Path:
    """Where notebook runs go: `$FMCNET_RUNS`, else `<checkout>/runs` (git-ignored)."""
    env = os.environ.get("FMCNET_RUNS")
    return Path(env).expanduser() if env else repo_root() / "runs"


def run_folder(run_name: str, profile: str, run_dir: str | os.PathLike = "") -> Path:
    """`run_dir` when given, else `runs/<run_name>-<profile>`.

    The profile is part of the default name so that a smoke run and a quick run of the
    same notebook never try to resume each other's checkpoints.
    """
    if run_dir:
        return repo_path(run_dir)
    return runs_root() / f"{run_name}-{profile}"


def notebook_config(
    profile: str,
    *,
    dataset: str = "synthetic",
    data_root: str = "",
    config_files: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Config:
    """The notebooks' `make_config`: profile < YAML files < `defaults` < `overrides` < dataset.

    `defaults` are the notebook's own choices (e.g. logging every step); the user's
    `overrides` win over them. YAML paths are relative to the checkout.
    """
    merged = {**(defaults or {}), **as_overrides(overrides)}
    return make_config(
        profile,
        yaml_files=[repo_path(f) for f in config_files],
        overrides=merged,
        dataset=dataset,
        data_root=data_root or None,
    )


def with_switches(cfg: Config, **switches: Any) -> Config:
    """A copy of `cfg` with some fields changed, validated like `make_config`."""
    out = dataclasses.replace(cfg, **switches)
    validate(out)
    return out


def train_or_resume(
    cfg: Config,
    run_dir: str | os.PathLike,
    *,
    resume: bool = True,
    evaluate: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    dataset: VIDataset | None = None,
):
    """`fmcnet.train.train`, re-runnable: continue the run in `run_dir` or start it afresh.

    `resume=True` continues from `checkpoints/last.pt` when it exists (a finished run is
    then only re-evaluated); `resume=False`, or a folder without a checkpoint (a run that
    failed before its first one), deletes the folder's run files first (nothing else: a
    papermill output notebook may live there).
    The returned `TrainResult.history` holds the whole metrics log, not only new records.
    """
    from fmcnet.train import train

    run_dir = Path(run_dir)
    last = last_checkpoint(run_dir)
    with hold_run(run_dir, "train_or_resume"):  # cleared and trained by one writer
        if not resume or not last.exists():
            clear_run(run_dir)
        result = train(cfg, run_dir, resume=last.exists(), dataset=dataset, evaluate=evaluate,
                       callback=callback)
        return dataclasses.replace(result, history=read_metrics(run_dir))


class LiveCurves:
    """A `train(callback=...)` that redraws `fmcnet.viz.figures.plot_training_curves` live.

    Every `every` metrics records the figure in the notebook output is replaced (one
    display slot, so a long run does not stack hundreds of pictures).
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, int(every))
        self.records: list[dict[str, Any]] = []
        self._handle = None

    def __call__(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if len(self.records) % self.every == 0:
            self.show()

    def show(self) -> None:
        from IPython.display import display

        from fmcnet.viz.figures import plot_training_curves

        fig = plot_training_curves(self.records)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def describe_run(run_dir: str | os.PathLike) -> str:
    """The files of a run folder with their sizes, one per line (checkpoints, logs, results)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return f"{run_dir} does not exist yet"
    lines = [str(run_dir)]
    for p in sorted(run_dir.rglob("*")):
        if p.is_file():
            lines.append(f"  {str(p.relative_to(run_dir)):<40} {p.stat().st_size / 1024:10.1f} KiB")
    return "\n".join(lines)


def loss_history(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The metrics log as a table indexed by global step, `loss/` prefixes dropped."""
    import pandas as pd

    rows = [{k.split("/", 1)[1] if k.startswith("loss/") else k: v for k, v in r.items()}
            for r in records]
    frame = pd.DataFrame(rows)
    return frame.set_index("global_step") if "global_step" in frame else frame


# ---------------------------------------------------------------------------------------
# The reference run
# ---------------------------------------------------------------------------------------

REFERENCE_RUN = "demo"  # the folder `make demo` (python -m fmcnet demo) writes under runs/


def reference_run_dir(profile: str = "quick", dataset: str = "synthetic") -> Path:
    """Where the shared run lives: `runs/demo` for the demo's profile and set.

    Another profile or dataset has a folder of its own (`runs/demo-smoke`,
    `runs/demo-sysu-paper`), so nbval's smoke run never touches the demo's checkpoints.
    """
    if (profile, dataset) == ("quick", "synthetic"):
        return runs_root() / REFERENCE_RUN
    parts = [REFERENCE_RUN] + ([dataset] if dataset != "synthetic" else []) + [profile]
    return runs_root() / "-".join(parts)


def demo_config(profile: str = "quick", *, dataset: str = "synthetic", data_root: str = "",
                overrides: Mapping[str, Any] | None = None) -> Config:
    """The reference run's configuration: what `python -m fmcnet demo` trains (`quick`)."""
    return notebook_config(profile, dataset=dataset, data_root=data_root, overrides=overrides)


def _experiment_keys() -> tuple[str, ...]:
    """Keys whose difference makes a saved run another experiment than the one asked for."""
    from fmcnet.checkpoints import resume_keys

    return (*resume_keys(), "epochs")


def open_run(
    run_dir: str | os.PathLike,
    cfg: Config | None = None,
    *,
    expect_config: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    dataset: VIDataset | None = None,
) -> TrainResult:
    """The run in `run_dir`, trained only as far as it is not yet.

    * finished (its last checkpoint is at its last epoch) and evaluated: the model is
      loaded and `results.json` read -- nothing is trained or evaluated again;
    * finished but not evaluated: evaluated;
    * interrupted: resumed where its checkpoint stands;
    * missing: trained with `cfg` (an error without one).

    With `expect_config` a saved run must be the experiment `cfg` describes (the keys a
    resume checks, and the number of epochs); without it any run in the folder is taken
    as it is (a run folder the user named). `callback` sees new metrics records only.
    A damaged run file (results.json, metrics.jsonl, config.yaml, ...) is one
    `fmcnet.run_files.RunFileError` naming it, before anything is loaded.
    """
    from fmcnet.checkpoints import (
        CheckpointMismatch,
        load_checkpoint,
        load_model_from_checkpoint,
    )
    from fmcnet.config import config_from_dict
    from fmcnet.data import dataset_for_config
    from fmcnet.train import TrainResult, train
    from fmcnet.utils import pick_device

    run_dir = Path(run_dir)
    last = last_checkpoint(run_dir)
    if not last.exists():
        if cfg is None:
            raise FMCNetError(f"{run_dir} holds no trained run (no {last}); train one first "
                              "(notebook 04 or python -m fmcnet train) or give another run_dir")
        with hold_run(run_dir, "open_run"):  # cleared and trained by one writer
            if not (run_dir / "results.json").exists():
                # a run stopped before its first checkpoint: nothing in it to keep. A
                # finished run whose checkpoints were deleted is left for train() to refuse.
                clear_run(run_dir)
            result = train(cfg, run_dir, resume=False, dataset=dataset, callback=callback)
            return dataclasses.replace(result, history=read_metrics(run_dir))
    # A damaged results.json, metrics.jsonl, config.yaml, ... is one message now, before
    # anything is loaded, trained or drawn from the run.
    check_run_files(run_dir)
    ckpt = load_checkpoint(last)
    saved = config_from_dict(ckpt["config"])
    if cfg is not None and expect_config:
        differ = [f"{k}: the run has {plain(getattr(saved, k))!r}, asked for "
                  f"{plain(getattr(cfg, k))!r}" for k in _experiment_keys()
                  if plain(getattr(saved, k)) != plain(getattr(cfg, k))]
        if differ:
            raise CheckpointMismatch(
                f"{run_dir} holds another experiment than the one asked for:\n  - "
                + "\n  - ".join(differ)
                + f"\ndelete {run_dir} to train it again with this configuration, or give "
                "run_dir to look at that run as it is")
    finished = ckpt["epoch"] >= saved.epochs
    results_path = run_dir / "results.json"
    if not finished or not results_path.exists():
        # the checkpoint's own configuration: a resume continues the run it was
        result = train(saved, run_dir, resume=True, dataset=dataset, callback=callback)
        return dataclasses.replace(result, history=read_metrics(run_dir))
    device = pick_device(saved.device)
    dataset = dataset or dataset_for_config(saved)
    best = run_dir / "checkpoints" / "best.pt"
    # the model results.json describes: the best validation checkpoint when there is one
    checkpoint = best if saved.validate and best.exists() else last
    model, _ = load_model_from_checkpoint(checkpoint, saved, dataset, device)
    model.eval()
    return TrainResult(run_dir, model, dataset, saved, read_results(results_path),
                       read_metrics(run_dir))


def reference_run(
    profile: str = "quick",
    *,
    run_dir: str | os.PathLike = "",
    dataset: str = "synthetic",
    data_root: str = "",
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """The run notebooks 02-05, 07 and 08 share: loaded, resumed or trained (`open_run`).

    `run_dir` empty: `reference_run_dir(profile, dataset)` with `demo_config` (the run
    `make demo` writes for `quick`). `run_dir` given: that run, as it was trained (it
    must exist: a mistyped folder is an error, not a new demo run).
    """
    if run_dir:
        return open_run(repo_path(run_dir), None, callback=callback)
    folder = reference_run_dir(profile, dataset)
    if not last_checkpoint(folder).exists():
        print(f"training the reference run {folder} (profile {profile}); the other "
              "notebooks reuse it")
    return open_run(folder, demo_config(profile, dataset=dataset, data_root=data_root),
                    callback=callback)


def training_run(
    profile: str,
    *,
    run_dir: str | os.PathLike = "",
    dataset: str = "synthetic",
    data_root: str = "",
    config_files: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    resume: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Notebook 04: the reference run by default, or a run of its own configuration.

    `run_dir` empty: the reference run (`config_files` / `overrides` would make it
    another experiment, so they need a `run_dir`). `run_dir` given: the profile with
    `config_files` and `overrides` there (the sweep's rows). `resume=False` starts the
    folder's run afresh; otherwise a finished run is only loaded.
    """
    if run_dir:
        folder = repo_path(run_dir)
        cfg = notebook_config(profile, dataset=dataset, data_root=data_root,
                              config_files=config_files, overrides=overrides)
    elif config_files or overrides:
        raise FMCNetError(
            f"config_files {list(config_files)} / overrides {dict(overrides or {})} change the "
            f"reference run's configuration; give run_dir (e.g. runs/my-run) for a run of its own")
    else:
        folder = reference_run_dir(profile, dataset)
        cfg = demo_config(profile, dataset=dataset, data_root=data_root)
    if not resume:
        clear_run(folder)
    return open_run(folder, cfg, callback=callback)


def run_results(run: TrainResult, *, tta: bool = False, rerank: bool = False, trials: int = 0,
                reuse: bool = True) -> dict[str, Any]:
    """The run's results with these test-time options (notebook 05).

    When they are the ones the run was evaluated with (`trials=0`: whatever number it
    used), its `results.json` -- nothing is recomputed, unless `reuse=False`; otherwise a
    fresh evaluation written to the folder `evaluation_folder` names under
    `<run>/evaluations/` (results.json, eval/*.npz), the run's own files untouched.
    """
    from fmcnet.evaluation.run import evaluate_run, evaluation_folder
    from fmcnet.utils import pick_device

    have = run.results or {}
    same = (bool(have.get("tta")) == bool(tta) and bool(have.get("rerank")) == bool(rerank)
            and (not trials or have.get("trials") == trials))
    if reuse and have and same:
        return have
    out = evaluation_folder(run.run_dir, run.dataset, settings=None,
                            trials=trials or run.cfg.trials, tta=tta, rerank=rerank)
    with hold_run(run.run_dir, "run_results"):  # written into the run folder: one writer
        return evaluate_run(run.model, run.dataset, run.cfg, out,
                            device=pick_device(run.cfg.device),
                            selection=f"checkpoint of {run.run_dir}", tta=tta, rerank=rerank,
                            trials=trials or None)


REFERENCE_STUDY = "configs/sweeps/synthetic_study.yaml"  # results/synthetic_ablations.md
# the study's rows notebook 08 compares: Base (Table 2) and the full model as `quick` trains it
STUDY_PAIR = (("Base", "t2_base"), ("full", "t2_full"))
BASE_CONFIG = "configs/ablations/t2_base.yaml"


def comparison_runs(profile: str = "quick", *, run_a: str | os.PathLike = "",
                    run_b: str | os.PathLike = "", seed: int = 0) -> dict[str, Path]:
    """Notebook 08's two runs, {label: folder}, run A (Base) first.

    * `run_a` and `run_b` given: those folders (the same folder twice compares two of its
      features, e.g. F_sh against F_fp);
    * else the reference study's Base and full model (`STUDY_PAIR`, training seed `seed`)
      when both were evaluated (`python -m fmcnet sweep configs/sweeps/synthetic_study.yaml`,
      `runs/synthetic-study`, `-<profile>` for another profile than the study's);
    * else, at smoke size (seconds on a CPU): the demo run `runs/demo-smoke` and a Base run
      `runs/demo-smoke-base` (the demo's configuration with Table 2's Base switches), each
      trained here when it is missing. Barely trained models: the mechanics, not a finding.
    """
    if run_a or run_b:
        if not (run_a and run_b):
            raise FMCNetError("give both run_a and run_b (the same folder twice compares two "
                              "of its features), or neither for the reference study's pair")
        a, b = repo_path(run_a), repo_path(run_b)
        label_a = a.name if a != b else f"{a.name} (A)"
        return {label_a: a, (b.name if a != b else f"{b.name} (B)"): b}
    from fmcnet.sweep import default_out, load_spec, row_run_folder

    spec = load_spec(REFERENCE_STUDY)
    out = default_out(spec, profile)
    study = {f"{label} ({row}, seed {seed})": row_run_folder(out, row, seed)
             for label, row in STUDY_PAIR}
    if all(any((f / "eval").glob("*.npz")) for f in study.values()):
        return study
    print(f"no evaluated reference study at {out} (rows {STUDY_PAIR[0][1]}, {STUDY_PAIR[1][1]}, "
          f"seed {seed}): comparing smoke-size runs instead, the demo's full model and a Base run "
          "trained here in seconds -- barely trained, for the mechanics only")
    demo = reference_run("smoke").run_dir
    base = runs_root() / f"{reference_run_dir('smoke').name}-base"
    if not any((base / "eval").glob("*.npz")):
        open_run(base, notebook_config("smoke", config_files=[BASE_CONFIG]))
    return {"Base (smoke)": base, "full (demo, smoke)": demo}


def comparison_browser(profile: str = "quick", *, run_a: str | os.PathLike = "",
                       run_b: str | os.PathLike = "", seed: int = 0, k: int = 10
                       ) -> tuple[RankingBrowser, Path]:
    """Notebook 08: (browser comparing `comparison_runs(...)`, folder for its exports)."""
    from fmcnet.viz.browser import RankingBrowser

    runs = comparison_runs(profile, run_a=run_a, run_b=run_b, seed=seed)
    out = runs_root() / "browser-export"
    for side, (label, folder) in zip("AB", runs.items()):
        print(f"run {side}: {label} ({folder})")
    return RankingBrowser.from_runs(runs, k=k, export_dir=out), out


def ranking_browser(profile: str = "quick", *, run_dir: str | os.PathLike = "",
                    dataset: str = "synthetic", k: int = 10) -> tuple[RankingBrowser, Path]:
    """(one-run browser, folder for its static export) over the reference run (notebook 08
    compares two runs: `comparison_browser`).

    `run_dir` empty: the reference run when it has been evaluated; when there is none
    yet, a toy example (flat drawn figures, not a model), and it says so.
    """
    from fmcnet.utils import cache_dir
    from fmcnet.viz.browser import RankingBrowser, demo_browser

    folder = repo_path(run_dir) if run_dir else reference_run_dir(profile, dataset)
    if run_dir or any((folder / "eval").glob("*.npz")):
        return RankingBrowser.from_run(folder, k=k), folder / "figures"
    print(f"no evaluated run at {folder} yet: showing a TOY example (drawn figures and "
          "made-up features, not a model). Run `make demo` or notebook 04 to browse a "
          "trained model.")
    return demo_browser(seed=0, k=k), cache_dir() / "toy_rankings"

"""Paths and runs of the notebooks: where a run folder is, its configuration, training it.

Every notebook starts here: `run_folder` and `notebook_config` resolve the papermill
parameters; `train_or_resume` makes a run re-runnable; `LiveCurves` draws it while it
trains; `loss_history` reads its metrics log as a table.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmcnet.config import Config, as_overrides, make_config, validate
from fmcnet.data.base import VIDataset

if TYPE_CHECKING:
    import pandas as pd


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
    from fmcnet.train import read_metrics, train

    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    if not resume or not last.exists():
        for stale in ("checkpoints", "eval"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        for stale in ("results.json", "results.md", "metrics.jsonl", "config.yaml",
                      "resumes.jsonl"):
            (run_dir / stale).unlink(missing_ok=True)
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

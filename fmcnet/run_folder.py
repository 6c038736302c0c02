"""The run folder: what makes a folder hold a run, and every file a run keeps there.

```
<run>/.lock              who writes the folder now (fmcnet.run_lock: one writer at a time)
<run>/config.yaml        the run's current configuration (save_config)
<run>/metrics.jsonl      one record per logging interval (append_metrics)
<run>/resumes.jsonl      one line per resume: its step and the keys it changed
<run>/checkpoints/       last.pt, best.pt (with validation), epoch_NNN.pt (keep_snapshots)
<run>/results.json, results.md, eval/<setting>.npz      the evaluation after training
<run>/evaluations/<settings>/                           each later evaluation, its own folder
<run>/figures/, events.out.tfevents.*                    pictures, TensorBoard
```

`train()` refuses a folder that holds a run unless it resumes (`refuse_existing_run`,
`resume_checkpoint`; a run stopped before its first checkpoint is resumed from step 0),
then prepares it (`open_run_folder`: leftovers of killed writers removed, metrics after
the resumed step dropped, the resume recorded, config.yaml written); the CLI refuses to
evaluate into a folder that holds results (`refuse_existing_results`) and `evaluate --run`
a checkpoint that is not the run's (`check_run_checkpoint`); the notebooks start a run
afresh with `clear_run`. One list of names serves them all. Every file is read back
through `fmcnet.run_files`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from fmcnet.checkpoints import (
    RESUME_SAFE_KEYS,
    CheckpointMismatch,
    check_config,
    config_differences,
    load_checkpoint,
    resume_keys,
    saved_value,
)
from fmcnet.config import Config, plain, save_config
from fmcnet.run_files import read_config
from fmcnet.run_lock import hold_run
from fmcnet.utils import FMCNetError, atomic_write_text, remove_orphans, write_error

# What makes a folder hold a run: training refuses to start over any of these.
RUN_MARKERS = ("config.yaml", "metrics.jsonl", "results.json", "checkpoints")
# Everything `clear_run` deletes: the run's own outputs, never other files in the folder.
RUN_FOLDERS = ("checkpoints", "eval", "evaluations", "figures")
RUN_FILES = ("results.json", "results.md", "metrics.jsonl", "config.yaml", "resumes.jsonl")


def last_checkpoint(run_dir: str | os.PathLike) -> Path:
    """`<run>/checkpoints/last.pt`: the checkpoint a resume continues."""
    return Path(run_dir) / "checkpoints" / "last.pt"


def run_contents(run_dir: str | os.PathLike) -> list[str]:
    """The run files `run_dir` holds (of `RUN_MARKERS`); empty for a new or empty folder."""
    run_dir = Path(run_dir)
    return [name for name in RUN_MARKERS if (run_dir / name).exists()]


def stopped_before_first_checkpoint(run_dir: Path) -> bool:
    """A run that `train()` started and that stopped (killed, Ctrl-C, an error) before it
    wrote `checkpoints/last.pt`: its config.yaml is there, no checkpoint, no results."""
    return ((run_dir / "config.yaml").is_file() and not last_checkpoint(run_dir).exists()
            and not (run_dir / "results.json").exists()
            and not (run_dir / "evaluations").exists())


def refuse_existing_run(run_dir: Path) -> None:
    """Training into a folder that holds a run is refused, naming what it holds."""
    found = run_contents(run_dir)
    if not found:
        return
    if last_checkpoint(run_dir).exists():
        advice = "pass --resume to continue it, or choose another --out"
    elif stopped_before_first_checkpoint(run_dir):
        advice = ("it stopped before its first checkpoint (no checkpoints/last.pt): pass "
                  "--resume to train it again from step 0 with the configuration in its "
                  "config.yaml, or choose another --out")
    else:
        advice = ("it has no checkpoints/last.pt to resume from; choose another --out, or "
                  f"delete {run_dir} to start over")
    raise FMCNetError(f"{run_dir} already holds a run ({', '.join(found)}); {advice}")


def refuse_existing_results(out: Path) -> None:
    """An evaluation never writes over a run or another evaluation's results."""
    held = run_contents(out) + [n for n in ("results.json", "eval") if (out / n).exists()]
    if held:
        raise FMCNetError(
            f"{out} already holds {', '.join(dict.fromkeys(held))}; an evaluation never writes "
            "over results: choose another --out, or delete that folder to evaluate again"
        )


def resume_checkpoint(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
    """The checkpoint to resume, checked against `cfg` before any data is touched; None
    for a run stopped before its first checkpoint, which resumes from step 0 (its
    config.yaml must match `cfg` as a checkpoint's configuration would)."""
    last_path = last_checkpoint(run_dir)
    if not last_path.exists():
        found = run_contents(run_dir)
        if stopped_before_first_checkpoint(run_dir):
            differ = config_differences(read_config(run_dir), cfg.to_dict(), resume_keys(),
                                        "its config.yaml", "this run")
            if differ:
                raise CheckpointMismatch(
                    f"--resume: {run_dir} stopped before its first checkpoint with another "
                    "configuration than this one:\n  - " + "\n  - ".join(differ) + "\n"
                    f"resume it with the configuration in {run_dir / 'config.yaml'} (e.g. "
                    f"--config {run_dir / 'config.yaml'}), or train this one into another --out"
                )
            print(f"{run_dir} stopped before its first checkpoint: training it again from "
                  "step 0", file=sys.stderr, flush=True)
            return None
        if not found:
            raise FMCNetError(f"--resume: {run_dir} holds no run (no {last_path}); there is "
                              "nothing to resume: train without --resume")
        why = ("its evaluation is there (results.json or evaluations/): it finished and its "
               "checkpoints were removed since" if (run_dir / "results.json").exists()
               or (run_dir / "evaluations").exists()
               else "nor the config.yaml train() writes first, so it is no run train() left")
        raise FMCNetError(
            f"--resume: {run_dir} holds {', '.join(found)} but no checkpoint {last_path}, "
            f"{why}; there is nothing to resume: train into another --out, or delete "
            f"{run_dir} to train it again"
        )
    ckpt = load_checkpoint(last_path)
    check_config(ckpt, cfg, last_path, resume_keys(), what="the resumed run")
    if cfg.epochs < ckpt["epoch"]:
        raise CheckpointMismatch(
            f"checkpoint {last_path} has completed {ckpt['epoch']} epochs; epochs={cfg.epochs} "
            f"would end the run before that. Resume with epochs >= {ckpt['epoch']}"
        )
    return ckpt


def check_run_checkpoint(run_dir: Path, ckpt: dict[str, Any], path: Path) -> None:
    """`evaluate --run`: the checkpoint is the run's own -- its configuration matches the
    run's config.yaml on every key a resume would check (the data set among them), so an
    evaluation filed under the run describes the run."""
    config = read_config(run_dir, missing_ok=True)
    if config is None:
        raise CheckpointMismatch(
            f"{run_dir} has a checkpoint {path} but no config.yaml, so nothing says the "
            "checkpoint is this run's: evaluate it with --checkpoint (its results go to "
            "runs/evaluations/), not --run"
        )
    differ = config_differences(ckpt["config"], config, resume_keys(), "checkpoint",
                                "config.yaml")
    if differ:
        raise CheckpointMismatch(
            f"checkpoint {path} is not run {run_dir}'s: it does not match "
            f"{run_dir / 'config.yaml'}:\n  - " + "\n  - ".join(differ) + "\n"
            "its evaluation would be filed under a run it does not describe (another run's "
            "checkpoint copied there?): evaluate it with --checkpoint (its results go to "
            "runs/evaluations/), or put the run's own checkpoint back"
        )


def open_run_folder(run_dir: Path, cfg: Config, ckpt: dict[str, Any] | None, *,
                    restart: bool = False) -> None:
    """Make the folder ready to train into: created, the temporary files of killed writers
    removed; on a resume the metrics after the checkpoint's step dropped and the resume
    recorded; on a `restart` (a run stopped before its first checkpoint) the stopped
    attempt's files removed; config.yaml written."""
    if restart:
        clear_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for folder in (run_dir, run_dir / "checkpoints"):
        remove_orphans(folder)  # temporary files of writers that were killed
    if ckpt is not None:
        truncate_metrics(run_dir / "metrics.jsonl", int(ckpt["global_step"]))
        record_resume(run_dir, ckpt, cfg)
    save_config(cfg, run_dir / "config.yaml")


def _append_line(path: Path, record: dict[str, Any]) -> None:
    """One JSON line at the end of `path`; a full disk names the file."""
    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise write_error(path, exc, kept=False) from None


def record_resume(run_dir: Path, ckpt: dict[str, Any], cfg: Config) -> None:
    """config.yaml holds the run's current configuration; every resume appends what it
    changed (only `RESUME_SAFE_KEYS` can differ) to resumes.jsonl, so the history stays
    honest."""
    changed = {k: [saved_value(ckpt["config"], k), plain(getattr(cfg, k))]
               for k in RESUME_SAFE_KEYS
               if saved_value(ckpt["config"], k) != plain(getattr(cfg, k))}
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "epoch": ckpt["epoch"],
              "global_step": ckpt["global_step"], "changed": changed}
    _append_line(run_dir / "resumes.jsonl", record)


def truncate_metrics(path: Path, global_step: int) -> None:
    """Drop the records of steps after the resumed checkpoint (they are trained again)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            if json.loads(line)["global_step"] <= global_step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut by a kill: dropped
            continue
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(f"{line}\n" for line in keep))


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """One record (a logging interval) at the end of metrics.jsonl."""
    _append_line(run_dir / "metrics.jsonl", record)


def clear_run(run_dir: str | os.PathLike) -> None:
    """Delete a run folder's checkpoints, logs and evaluation outputs, nothing else.

    A papermill output notebook (the sweep's) or the user's own files may live there.
    Refused while another process writes the folder (`fmcnet.run_lock`).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return
    with hold_run(run_dir, "clear_run"):
        for stale in RUN_FOLDERS:
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        for stale in RUN_FILES:
            (run_dir / stale).unlink(missing_ok=True)
        for events in run_dir.glob("events.out.tfevents.*"):
            events.unlink()

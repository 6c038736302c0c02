"""TensorBoard event files from the training loop's metrics records (`tensorboard --logdir runs`).

The same records that go to `metrics.jsonl` (per-term losses `loss/<term>`, `lr`,
`omega/...`, `disc_acc`, `hinge/...`, `images_per_s`, `val_mAP`, ...): every numeric key
becomes a scalar of the same name at the record's `global_step`, so a key the trainer
adds later shows up without an edit here. Events go into the run folder itself, as
torchreid and fast-reid do, so `tensorboard --logdir runs` lists runs by folder name.

Optional: without the `tensorboard` package (torch's writer needs it) training runs as
before; `tensorboard=false` in the configuration switches the files off.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# record keys that are the x axis, not a curve
STEP_KEYS = frozenset({"epoch", "step", "global_step"})


def available() -> bool:
    """Whether torch's SummaryWriter can be used (the `tensorboard` package is installed)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The record's finite numeric values by key, step keys left out (they are the x axis)."""
    out = {}
    for key, value in record.items():
        if key in STEP_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


class TensorBoardLog:
    """Writes metrics records as TensorBoard scalars into `log_dir` (the run folder).

    `purge_step`: on a resumed run, events at or after this step from an earlier
    (interrupted) attempt are dropped, so the curves do not fold back on themselves.
    """

    def __init__(self, log_dir: str | os.PathLike, *, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    @classmethod
    def open(cls, log_dir: str | os.PathLike, *, enabled: bool = True,
             purge_step: int | None = None) -> TensorBoardLog | None:
        """A writer, or None when switched off or when `tensorboard` is not installed."""
        if not enabled or not available():
            return None
        return cls(log_dir, purge_step=purge_step)

    def write(self, record: Mapping[str, Any]) -> None:
        """One metrics record: each numeric key at `record["global_step"]`."""
        step = int(record["global_step"])
        for key, value in scalars(record).items():
            self._writer.add_scalar(key, value, step)
        # records come every log interval (seconds apart): on disk at once, so a run
        # that stops on an error or a kill loses none of its curves
        self._writer.flush()

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `log_dir`: {tag: [(step, value), ...]} by step.

    For tests and notebooks that want the curves back without starting TensorBoard.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: sorted((e.step, e.value) for e in acc.Scalars(tag))
            for tag in acc.Tags()["scalars"]}

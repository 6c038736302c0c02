"""The types every dataset loader returns.

A loader (SYSU-MM01, RegDB, LLCM; the synthetic set is read by the SYSU-MM01 loader)
turns an owner's directory tree into a `VIDataset`: a training set per modality and
one `EvalSplit` per evaluation setting. Images are referenced by path; pixels come
from the pre-processing cache (`fmcnet.data.cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmcnet.utils import FMCNetError

MODALITIES = ("visible", "infrared")


class DatasetError(FMCNetError):
    """A dataset on disk that does not match its owners' layout (names the file)."""


@dataclass
class ImageSet:
    """Images of one modality: paths plus per-image identity, camera and label.

    `pids` are the dataset's own identity numbers; `labels` are the re-indexed
    training labels 0..C-1 (equal to `pids` for evaluation sets).
    """

    paths: list[str]
    pids: np.ndarray
    cams: np.ndarray
    modality: str
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.pids = np.asarray(self.pids, dtype=np.int64)
        self.cams = np.asarray(self.cams, dtype=np.int64)
        self.labels = self.pids.copy() if self.labels is None else np.asarray(self.labels, np.int64)
        if not (len(self.paths) == len(self.pids) == len(self.cams) == len(self.labels)):
            raise ValueError("ImageSet fields have different lengths")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: np.ndarray) -> ImageSet:
        index = np.asarray(index, dtype=np.int64)
        return ImageSet(
            [self.paths[i] for i in index], self.pids[index], self.cams[index], self.modality,
            self.labels[index],
        )

    @property
    def num_identities(self) -> int:
        return len(np.unique(self.pids))


@dataclass
class TrainSet:
    """Training images of both modalities with labels re-indexed to 0..C-1 jointly."""

    visible: ImageSet
    infrared: ImageSet
    num_classes: int


@dataclass
class EvalSplit:
    """One evaluation setting: queries, a gallery pool, and per-trial gallery rows.

    `trials[t]` indexes rows of `gallery` used in trial t; query features are
    extracted once and each trial only re-selects gallery rows. `protocol` names the
    removal rule of `fmcnet.evaluation.rank_metrics` ("sysu" | "regdb" | "llcm").
    """

    name: str
    protocol: str
    query: ImageSet
    gallery: ImageSet
    trials: list[np.ndarray]


@dataclass
class VIDataset:
    name: str  # "sysu" | "regdb" | "llcm" (the synthetic set is "sysu"-layout)
    root: Path
    train: TrainSet
    splits: dict[str, EvalSplit] = field(default_factory=dict)
    sampler: str = "seeded"  # how galleries were drawn: "owners" | "seeded" | "fixed"
    trial: int | None = None  # RegDB: the split this object was loaded for
    val: TrainSet | None = None  # held-out validation ids (SYSU-MM01 val_id), when asked


def reindex(pids_v: np.ndarray, pids_i: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Map the identities of both modalities jointly to 0..C-1 in ascending pid order."""
    uniq = np.unique(np.concatenate([pids_v, pids_i]))
    return np.searchsorted(uniq, pids_v), np.searchsorted(uniq, pids_i), len(uniq)

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


SAMPLED_SIDES = ("gallery", "query")


@dataclass
class EvalSplit:
    """One evaluation setting: queries, a gallery pool, and per-trial rows.

    `trials[t]` indexes the rows of the `sampled` side used in trial t -- the gallery
    (every protocol but one), or the queries (LLCM "visible -> infrared" as DEEN's code
    scores it: sampled infrared images against every visible image); the other side is
    used whole. Features are extracted once and each trial only re-selects rows.
    `protocol` names the rule set of `fmcnet.evaluation.rank_metrics` ("sysu" |
    "regdb" | "llcm" | "llcm_literal"); `sampler` says how `trials` were drawn
    ("owners" | "agw" | "seeded" | "deen" | "fixed", docs/datasets.md).
    """

    name: str
    protocol: str
    query: ImageSet
    gallery: ImageSet
    trials: list[np.ndarray]
    sampler: str = "unspecified"  # every loader names its draw
    sampled: str = "gallery"

    def __post_init__(self) -> None:
        if self.sampled not in SAMPLED_SIDES:
            raise ValueError(f"sampled must be one of {SAMPLED_SIDES}, got {self.sampled!r}")

    def trial_rows(self, t: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(query rows, gallery rows) of trial t; None where the whole side is used."""
        rows = np.asarray(self.trials[t], dtype=np.int64)
        return (rows, None) if self.sampled == "query" else (None, rows)


@dataclass
class VIDataset:
    name: str  # "sysu" | "regdb" | "llcm" (the synthetic set is "sysu"-layout)
    root: Path
    train: TrainSet
    splits: dict[str, EvalSplit] = field(default_factory=dict)
    # How the trials were drawn: one name ("owners" | "agw" | "seeded" | "deen" | "fixed")
    # when every split shares it, else `describe_samplers` of the splits.
    sampler: str = "seeded"
    trial: int | None = None  # RegDB: the split this object was loaded for
    val: TrainSet | None = None  # held-out validation ids (SYSU-MM01 val_id), when asked
    llcm_protocol: str | None = None  # LLCM: "deen" | "literal"
    notes: list[str] = field(default_factory=list)  # warnings raised while loading


def describe_samplers(splits: dict[str, EvalSplit]) -> str:
    """One sampler name, or "agw: all/single, indoor/single; seeded: all/multi, ..."."""
    groups: dict[str, list[str]] = {}
    for name, split in splits.items():
        groups.setdefault(split.sampler, []).append(name)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{sampler}: {', '.join(names)}" for sampler, names in groups.items())


def reindex(pids_v: np.ndarray, pids_i: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Map the identities of both modalities jointly to 0..C-1 in ascending pid order."""
    uniq = np.unique(np.concatenate([pids_v, pids_i]))
    return np.searchsorted(uniq, pids_v), np.searchsorted(uniq, pids_i), len(uniq)

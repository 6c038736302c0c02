"""The features a model gives a few identities' images, and the PCA plane they are drawn in.

Shared by notebooks 01 (decomposition), 02 (compensation) and 07 (feature maps):
`decomposed_features` returns a `FeatureSet` of every kind the model has (shared,
specific, generated, fused); `pca_2d` and the colour / legend helpers draw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fmcnet.config import Config
from fmcnet.data.base import VIDataset
from fmcnet.utils import FMCNetError


@dataclass
class FeatureSet:
    """Per-image features of both modalities (visible rows first), as numpy arrays.

    `kinds` maps "shared", "specific", "generated", "fused" (those the model has) to
    [N, D]; "generated" of a visible image is F'_sp,I (the compensated infrared-specific
    feature), of an infrared image F'_sp,V.
    """

    kinds: dict[str, np.ndarray]
    pids: np.ndarray
    cams: np.ndarray
    modalities: np.ndarray

    def rows(self, modality: str) -> np.ndarray:
        return np.flatnonzero(self.modalities == modality)


def _pick_identities(pids_v: np.ndarray, pids_i: np.ndarray, max_identities: int | None
                     ) -> np.ndarray:
    common = np.intersect1d(pids_v, pids_i)
    if len(common) == 0:
        raise FMCNetError("no identity has images in both modalities")
    return common if not max_identities else common[:max_identities]


def decomposed_features(
    model: torch.nn.Module, dataset: VIDataset, cfg: Config, *, source: str = "test",
    max_identities: int | None = 12, max_per_identity: int | None = 10,
) -> FeatureSet:
    """`model.extract` features of a few identities' images, both modalities.

    `source="test"`: the first evaluation setting's queries and gallery pool (identities
    the model never saw); `"train"`: the training images.
    """
    from fmcnet.data.cache import load_images
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.utils import pick_device

    if source == "train":
        sets = [dataset.train.visible, dataset.train.infrared]
    elif source == "test":
        split = next(iter(dataset.splits.values()))
        sets = sorted([split.query, split.gallery], key=lambda s: s.modality != "visible")
    else:
        raise FMCNetError(f"source must be 'train' or 'test', got {source!r}")
    ids = _pick_identities(sets[0].pids, sets[1].pids, max_identities)
    device = pick_device(cfg.device)
    parts, pids, cams, mods = [], [], [], []
    for images in sets:
        keep = np.flatnonzero(np.isin(images.pids, ids))
        if max_per_identity:
            rank = np.zeros(len(keep), dtype=np.int64)
            for p in np.unique(images.pids[keep]):
                sel = images.pids[keep] == p
                rank[sel] = np.arange(sel.sum())
            keep = keep[rank < max_per_identity]
        subset = images.subset(keep)
        pixels = load_images(subset, cfg.image_size, progress=False)
        feats = extract_features(model, pixels, images.modality, device=device,
                                 batch_size=cfg.eval_batch_size, amp=cfg.amp, parts=True)
        parts.append({k: v.numpy() for k, v in feats.items()})
        pids.append(subset.pids)
        cams.append(subset.cams)
        mods.append(np.full(len(subset), images.modality))
    kinds = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return FeatureSet(kinds, np.concatenate(pids), np.concatenate(cams), np.concatenate(mods))


def _normed(x: np.ndarray) -> torch.Tensor:
    return F.normalize(torch.as_tensor(np.asarray(x), dtype=torch.float64), dim=1)


def _centers(x: torch.Tensor, pids: np.ndarray, ids: np.ndarray) -> torch.Tensor:
    return torch.stack([x[torch.as_tensor(pids == p)].mean(0) for p in ids])


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal components of `x` [N, D] (deterministic signs)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    comps = comps * np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])[:, None]
    xy = x @ comps.T
    return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1]))) if xy.shape[1] < 2 else xy


def _identity_colors(pids: np.ndarray) -> np.ndarray:
    import matplotlib

    uniq = {p: i for i, p in enumerate(np.unique(pids))}
    cmap = matplotlib.colormaps["tab20"]
    return np.array([cmap(uniq[p] % 20) for p in pids])


def _marker_legend(ax: Any, entries: Sequence[tuple[str, str]]) -> None:
    """A legend of marker shapes only (the colours stand for identities)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=m, linestyle="", color="0.3", label=label)
               for m, label in entries]
    ax.legend(handles=handles, fontsize=8, loc="best")

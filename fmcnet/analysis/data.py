"""Notebook 00: the data -- what a dataset holds, per camera and modality, and how it looks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fmcnet.config import Config
from fmcnet.data.base import ImageSet, VIDataset
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    import pandas as pd


def dataset_report(cfg: Config) -> str:
    """`fmcnet.data.info` summary of the dataset `cfg` names (the synthetic set by default)."""
    from fmcnet.data.info import dataset_info, format_dataset_info

    if cfg.dataset == "synthetic":
        from fmcnet.data.synthetic import ensure_synthetic

        return format_dataset_info(dataset_info("sysu", ensure_synthetic(cfg)), synthetic=True)
    if not cfg.data_root:
        raise FMCNetError(f"dataset={cfg.dataset} needs data_root (the folder of your copy)")
    trial = cfg.trial if cfg.dataset == "regdb" else None
    return format_dataset_info(dataset_info(cfg.dataset, cfg.data_root, trial=trial))


def _all_images(dataset: VIDataset) -> list[tuple[str, ImageSet]]:
    """(part, images) for the training set and every distinct evaluation image set."""
    parts = [("train", dataset.train.visible), ("train", dataset.train.infrared)]
    seen: set[tuple[str, ...]] = set()
    for split in dataset.splits.values():
        for images in (split.query, split.gallery):
            key = tuple(images.paths)
            if key not in seen:
                seen.add(key)
                parts.append(("test", images))
    return parts


def images_per_camera(dataset: VIDataset) -> pd.DataFrame:
    """Images and identities per (part, modality, camera); test images counted once."""
    import pandas as pd

    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for part, images in _all_images(dataset):
        for cam in np.unique(images.cams):
            sel = images.cams == cam
            key = (part, images.modality, int(cam))
            row = rows.setdefault(key, {"paths": set(), "ids": set()})
            row["paths"].update(p for p, s in zip(images.paths, sel) if s)
            row["ids"].update(images.pids[sel].tolist())
    return pd.DataFrame(
        [{"part": k[0], "modality": k[1], "camera": f"cam{k[2]}", "images": len(v["paths"]),
          "identities": len(v["ids"])}
         for k, v in sorted(rows.items(), key=lambda kv: (kv[0][2], kv[0][0]))]
    )


def samples_by_camera(
    dataset: VIDataset, *, n: int = 8, size: tuple[int, int] = (128, 64)
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """The same `n` training identities seen by every camera: ({group: images}, {group: titles}).

    Groups are "cam<c> · <modality>"; identities are those present in most cameras. A
    camera that never saw an identity shows a grey tile. Pass both to
    `fmcnet.viz.figures.plot_sample_grid(images, titles=titles)`.
    """
    from fmcnet.data.cache import load_images

    sets = [dataset.train.visible, dataset.train.infrared]
    cams = sorted({(int(c), s.modality) for s in sets for c in np.unique(s.cams)})
    pids = np.concatenate([s.pids for s in sets])
    cam_of = np.concatenate([s.cams for s in sets])
    coverage = {int(p): len(np.unique(cam_of[pids == p])) for p in np.unique(pids)}
    chosen = sorted(coverage, key=lambda p: (-coverage[p], p))[:n]
    blank = np.full((*size, 3), 128, dtype=np.uint8)
    images: dict[str, np.ndarray] = {}
    titles: dict[str, list[str]] = {}
    for cam, modality in cams:
        s = next(s for s in sets if s.modality == modality)
        first = {}
        for i, (p, c) in enumerate(zip(s.pids.tolist(), s.cams.tolist())):
            if c == cam and p in chosen and p not in first:
                first[p] = i
        found = [first[p] for p in chosen if p in first]
        pixels = load_images(s.subset(np.asarray(found, dtype=np.int64)), size, progress=False)
        lookup = dict(zip([p for p in chosen if p in first], pixels))
        group = f"cam{cam} · {modality}"
        images[group] = np.stack([lookup.get(p, blank) for p in chosen])
        titles[group] = [f"id {p}" if p in lookup else f"id {p}: none" for p in chosen]
    return images, titles


def pixel_intensities(
    dataset: VIDataset, *, per_camera: int = 24, pixels_per_image: int = 200,
    size: tuple[int, int] = (64, 32), seed: int = 0,
) -> pd.DataFrame:
    """A long table of sampled training pixels: modality, camera, channel, value (0..255).

    Infrared images are stored as three equal channels; their rows carry channel "gray".
    """
    import pandas as pd

    from fmcnet.data.cache import load_images

    rng = np.random.default_rng(seed)
    frames = []
    for images in (dataset.train.visible, dataset.train.infrared):
        for cam in np.unique(images.cams):
            idx = np.flatnonzero(images.cams == cam)
            idx = np.sort(rng.choice(idx, size=min(per_camera, len(idx)), replace=False))
            pixels = load_images(images.subset(idx), size, progress=False).reshape(len(idx), -1, 3)
            take = rng.integers(0, pixels.shape[1], size=(len(idx), pixels_per_image))
            values = np.take_along_axis(pixels, take[..., None], axis=1).reshape(-1, 3)
            channels = ("gray",) if images.modality == "infrared" else ("R", "G", "B")
            for c, name in enumerate(channels):
                frames.append(pd.DataFrame({
                    "modality": images.modality, "camera": f"cam{int(cam)}", "channel": name,
                    "value": values[:, c].astype(np.int64),
                }))
    return pd.concat(frames, ignore_index=True)

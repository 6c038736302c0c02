"""Notebook 00: the data -- what a dataset holds, per camera and modality, and how it looks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

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


# The mid-torso patch of a pedestrian crop (fractions of height and width): the upper
# garment in every synthetic image and in most real detector crops.
TORSO_ROWS, TORSO_COLS = (0.25, 0.42), (0.40, 0.60)
_LUMA = np.array([0.299, 0.587, 0.114])


def _identities_in_both(dataset: VIDataset, n: int | None) -> list[int]:
    """Training identities with images in both modalities (the first `n`, by pid)."""
    both = np.intersect1d(dataset.train.visible.pids, dataset.train.infrared.pids)
    return [int(p) for p in both[:n]] if n is not None else [int(p) for p in both]


def _first_images(images: ImageSet, pids: list[int]) -> np.ndarray:
    """Index of the first image of each pid in `images`."""
    first: dict[int, int] = {}
    for i, p in enumerate(images.pids.tolist()):
        first.setdefault(int(p), i)
    return np.asarray([first[p] for p in pids], dtype=np.int64)


def modality_pairs(dataset: VIDataset, *, n: int = 8, size: tuple[int, int] = (128, 64)
                   ) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """The same `n` training identities in both modalities, and what a grey-level copy
    of the visible image would look like: ({row: images}, {row: titles}) for
    `fmcnet.viz.figures.plot_sample_grid`.

    Rows: "visible", "visible as grey (luminance)" and "infrared". Where the infrared row
    differs from the grey row, intensity does not follow colour: only shape, cut,
    patterns and accessories cross the gap.
    """
    from fmcnet.data.cache import load_images

    pids = _identities_in_both(dataset, n)
    vis = load_images(dataset.train.visible.subset(_first_images(dataset.train.visible, pids)),
                      size, progress=False)
    ir = load_images(dataset.train.infrared.subset(_first_images(dataset.train.infrared, pids)),
                     size, progress=False)
    grey = np.repeat(np.rint(vis.astype(np.float64) @ _LUMA).clip(0, 255).astype(np.uint8)[..., None],
                     3, axis=-1)
    titles = [f"id {p}" for p in pids]
    return ({"visible": vis, "visible as grey (luminance)": grey, "infrared": ir},
            {"visible": titles, "visible as grey (luminance)": titles, "infrared": titles})


def torso_levels(dataset: VIDataset, *, per_identity: int = 4, size: tuple[int, int] = (64, 32),
                 max_identities: int | None = None) -> pd.DataFrame:
    """Per training identity present in both modalities: the mean luminance (0..255) of the
    mid-torso patch in its visible images and in its infrared images (up to
    `per_identity` images each). Columns: pid, visible, infrared.

    Across identities, the correlation of the two columns is how much infrared intensity
    follows visible brightness (the synthetic set's `thermal_coupling` sets it).
    """
    import pandas as pd

    from fmcnet.data.cache import load_images

    pids = _identities_in_both(dataset, max_identities)
    h0, h1 = (int(round(f * size[0])) for f in TORSO_ROWS)
    w0, w1 = (int(round(f * size[1])) for f in TORSO_COLS)
    levels = {}
    for images in (dataset.train.visible, dataset.train.infrared):
        keep = np.concatenate([np.flatnonzero(images.pids == p)[:per_identity] for p in pids])
        pixels = load_images(images.subset(keep), size, progress=False)
        patch = (pixels[:, h0:h1, w0:w1].astype(np.float64) @ _LUMA).mean(axis=(1, 2))
        owner = images.pids[keep]
        levels[images.modality] = [float(patch[owner == p].mean()) for p in pids]
    return pd.DataFrame({"pid": pids, "visible": levels["visible"],
                         "infrared": levels["infrared"]})


def plot_torso_levels(levels: pd.DataFrame) -> Figure:
    """Visible mid-torso luminance against infrared level, one dot per identity, with r."""
    r = float(np.corrcoef(levels["visible"], levels["infrared"])[0, 1])
    fig = Figure(figsize=(4.2, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(levels["visible"], levels["infrared"], s=12, alpha=0.7)
    ax.set_xlabel("visible: mid-torso luminance")
    ax.set_ylabel("infrared: mid-torso level")
    ax.set_title(f"one dot per identity; r = {r:.2f}", fontsize=10)
    ax.grid(alpha=0.3)
    return fig

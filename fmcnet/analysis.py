"""What the notebooks compute, so that the notebooks hold only prose, parameters and calls.

Sections follow the notebooks:

* paths and runs (every notebook): `repo_path`, `run_folder`, `notebook_config`,
  `train_or_resume`, `LiveCurves`;
* 00 data: `dataset_report`, `samples_by_camera`, `pixel_intensities`, `images_per_camera`;
* 01 SFD: `sample_batch`, `trace_shapes`, `FeatureSet` / `decomposed_features`,
  `separation_stats`, `md_comparison`, `plot_decomposition`;
* 02 FMC: `plot_adversarial_dynamics`, `discriminator_scores`, `compensation_stats`,
  `plot_discriminator_scores`, `plot_real_vs_generated`;
* 03 SFF: `omega_history`, `feature_variants`, `retrieval_table`, `fusion_retrieval`;
* 05 evaluation: the CMC comes from results.json (`viz.figures.plot_cmc`);
* 06 ablations: `plot_ablation_bars` (the sweep itself is `fmcnet.sweep`).

Figures are `matplotlib.figure.Figure` objects built without pyplot, like `fmcnet.viz`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from fmcnet.config import Config, as_overrides, make_config, validate
from fmcnet.data.base import EvalSplit, ImageSet, VIDataset
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    import pandas as pd

# ---------------------------------------------------------------------------------------
# Paths and runs
# ---------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The checkout that holds the package (an editable install), else the working directory."""
    here = Path(__file__).resolve().parents[1]
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


# ---------------------------------------------------------------------------------------
# 00 -- the data
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# 01 -- SFD: a real batch through the network, decomposed features
# ---------------------------------------------------------------------------------------


@dataclass
class Batch:
    """One P x K cross-modality batch: uint8 NHWC pictures and normalised NCHW inputs."""

    images_v: np.ndarray
    images_i: np.ndarray
    x_v: torch.Tensor
    x_i: torch.Tensor
    labels_v: torch.Tensor
    labels_i: torch.Tensor


def sample_batch(dataset: VIDataset, cfg: Config, *, seed: int = 0) -> Batch:
    """The first batch `CrossModalitySampler` draws for `seed` (no augmentation)."""
    from fmcnet.data.augment import normalize
    from fmcnet.data.cache import load_images
    from fmcnet.data.sampler import CrossModalitySampler

    train = dataset.train
    sampler = CrossModalitySampler(train.visible.labels, train.infrared.labels,
                                   cfg.num_identities, cfg.num_instances, seed=seed,
                                   batches_per_epoch=1)
    idx_v, idx_i = next(iter(sampler))
    size = cfg.image_size
    img_v = np.array(load_images(train.visible, size, progress=False)[idx_v])
    img_i = np.array(load_images(train.infrared, size, progress=False)[idx_i])
    return Batch(
        img_v, img_i,
        normalize(torch.from_numpy(img_v).permute(0, 3, 1, 2)),
        normalize(torch.from_numpy(img_i).permute(0, 3, 1, 2)),
        torch.from_numpy(train.visible.labels[idx_v]),
        torch.from_numpy(train.infrared.labels[idx_i]),
    )


# output key -> (paper symbol, how it is computed, equation)
_SYMBOLS = {
    "shared": ("F_sh,{m}", "E_sh(F_{m})", "Eq. 1"),
    "specific": ("F_sp,{m}", "E^{m}_sp(F_{m})", "Eq. 1"),
    "logits_shared": ("S_sh,{m}", "P_sh(F_sh,{m})", "Eq. 2"),
    "logits_specific": ("S_sp,{m}", "P^{m}_sp(F_sp,{m})", "Eq. 2"),
    "generated": ("F'_sp,{o}", "G_{m}->{o}(F_sh,{m})", "Eq. 11"),
    "logits_generated": ("S'_sp,{o}", "P^{o}_sp(F'_sp,{o})", "Eq. 14"),
    "disc_fake": ("D_{m}->{o}(F'_sp,{o})", "logit of the discriminator", "Eq. 12"),
    "fused": ("F_fp,{m}", "Cat(F_sh,{m}, w1 F_sp,{m} + w2 F'_sp,{o})", "Eqs. 15-16"),
    "logits_fused": ("S_fp,{m}", "P_fp(F_fp,{m})", "Eq. 16"),
}
# the model's output keys name the modality of the *target* for generated features
_TARGET_KEYS = ("generated", "logits_generated", "disc_fake")


def trace_shapes(model: torch.nn.Module, x_v: torch.Tensor, x_i: torch.Tensor
                 ) -> pd.DataFrame:
    """Every tensor on the way through `FMCNet` for one batch, with its paper symbol and shape."""
    import pandas as pd

    was_training = model.training
    model.eval()
    rows = []
    try:
        with torch.no_grad():
            out = model(x_v, x_i)
            for m, x in (("V", x_v), ("I", x_i)):
                rows.append({"symbol": f"X_{m}", "computed as": "input batch", "eq.": "",
                             "shape": tuple(x.shape)})
                front = model.sfd.front(x, "visible" if m == "V" else "infrared")
                rows.append({"symbol": f"F_{m}", "computed as": f"E_{m}(X_{m}) (stem..layer2)",
                             "eq.": "Eq. 1", "shape": tuple(front.shape)})
                other = "I" if m == "V" else "V"
                for base, (sym, how, eq) in _SYMBOLS.items():
                    # generated_i comes from the visible image (F'_sp,I = G_V->I(F_sh,V))
                    key = f"{base}_{other.lower() if base in _TARGET_KEYS else m.lower()}"
                    if key in out:
                        fmt = {"m": m, "o": other}
                        rows.append({"symbol": sym.format(**fmt), "computed as": how.format(**fmt),
                                     "eq.": eq, "shape": tuple(out[key].shape)})
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


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


def separation_stats(fs: FeatureSet) -> dict[str, float]:
    """How far SFD has pulled shared and specific features apart (L2-normalised features).

    * `cos(F_sh, F_sp)`: mean cosine between an image's shared and specific features
      (the tails start as copies of one network, so 1.0 at initialisation);
    * `kind 1-NN accuracy`: share of features whose nearest other feature is of the same
      kind (shared vs specific); 0.5 means the two clouds are mixed, 1.0 apart;
    * `Eq. 4 margin`: mean over identities and modalities of min_j |C^p_sp - C^j_sh| -
      max_d |C^p_sp - C^d_sp|: positive when every specific center lies farther from all
      shared centers than the specific centers spread (what L_dc asks for, with rho1);
    * `shared modality gap`: mean |C^p_sh,V - C^p_sh,I| over the mean distance to other
      identities' shared centers of the other modality; below 1 the shared features of an
      identity agree across modalities (what L_shs asks for).
    """
    if "specific" not in fs.kinds:
        raise FMCNetError("separation_stats needs specific features (a model with sfd=true)")
    sh, sp = _normed(fs.kinds["shared"]), _normed(fs.kinds["specific"])
    stats = {"cos(F_sh, F_sp)": float((sh * sp).sum(1).mean())}
    both = torch.cat([sh, sp])
    kind = torch.cat([torch.zeros(len(sh)), torch.ones(len(sp))])
    d = torch.cdist(both, both)
    d.fill_diagonal_(float("inf"))
    stats["kind 1-NN accuracy"] = float((kind[d.argmin(1)] == kind).double().mean())
    margins = []
    ids = np.intersect1d(fs.pids[fs.rows("visible")], fs.pids[fs.rows("infrared")])
    centers = {}
    for m in ("visible", "infrared"):
        r = fs.rows(m)
        c_sp = _centers(sp[r], fs.pids[r], ids)
        c_sh = _centers(sh[r], fs.pids[r], ids)
        centers[m] = c_sh
        margins.append(torch.cdist(c_sp, c_sh).amin(1) - torch.cdist(c_sp, c_sp).amax(1))
    stats["Eq. 4 margin"] = float(torch.cat(margins).mean())
    cross = torch.cdist(centers["visible"], centers["infrared"])
    own = cross.diagonal()
    if len(ids) > 1:
        others = cross[~torch.eye(len(ids), dtype=torch.bool)].mean()
        stats["shared modality gap"] = float(own.mean() / others.clamp_min(1e-12))
    else:
        stats["shared modality gap"] = float("nan")
    return stats


# The two short runs of notebook 01: SFD alone (no FMC, no fusion), MD loss on and off.
MD_SETTINGS: dict[str, dict[str, Any]] = {
    "with MD loss": {"shs": True, "sps": True, "dc": True},
    "without MD loss": {"shs": False, "sps": False, "dc": False},
}


@dataclass
class MDComparison:
    features: dict[str, FeatureSet]
    stats: Any  # pandas.DataFrame: one row per setting
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    run_dirs: dict[str, Path] = field(default_factory=dict)


def md_comparison(
    cfg: Config, runs_dir: str | os.PathLike, *, resume: bool = True, source: str = "train",
    max_identities: int | None = 12, dataset: VIDataset | None = None,
) -> MDComparison:
    """Train SFD twice, with and without the MD loss (Eq. 7), and compare the features.

    Both runs use `cfg` with fmc off and retrieval on F_sh (the paper's Base+SFD), so
    only the MD terms differ. Runs go to `<runs_dir>/md_on` and `<runs_dir>/md_off`.
    """
    import pandas as pd

    runs_dir = Path(runs_dir)
    features, stats, histories, dirs = {}, {}, {}, {}
    for name, md in MD_SETTINGS.items():
        run_cfg = with_switches(cfg, sfd=True, fmc=False, fusion="none", gan=False, ic=False,
                                fc=False, **md)
        run_dir = runs_dir / ("md_on" if md["shs"] else "md_off")
        result = train_or_resume(run_cfg, run_dir, resume=resume, evaluate=False, dataset=dataset)
        dataset = result.dataset
        features[name] = decomposed_features(result.model, result.dataset, run_cfg,
                                             source=source, max_identities=max_identities)
        stats[name] = separation_stats(features[name])
        histories[name], dirs[name] = result.history, run_dir
    return MDComparison(features, pd.DataFrame(stats).T, histories, dirs)


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


def plot_decomposition(comparison: MDComparison) -> Figure:
    """Fig. 4's idea: shared (o) and specific (^) features in one PCA plane per setting."""
    names = list(comparison.features)
    fig = Figure(figsize=(4.6 * len(names), 4.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        fs = comparison.features[name]
        sh, sp = _normed(fs.kinds["shared"]).numpy(), _normed(fs.kinds["specific"]).numpy()
        xy = pca_2d(np.concatenate([sh, sp]))
        colors = _identity_colors(fs.pids)
        n = len(sh)
        ax.scatter(xy[:n, 0], xy[:n, 1], c=colors, marker="o", s=18)
        ax.scatter(xy[n:, 0], xy[n:, 1], c=colors, marker="^", s=18)
        st = comparison.stats.loc[name]
        ax.set_title(f"{name}\ncos(F_sh, F_sp) {st['cos(F_sh, F_sp)']:.2f} · "
                     f"Eq. 4 margin {st['Eq. 4 margin']:.2f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    _marker_legend(axes[0], [("o", "shared F_sh"), ("^", "specific F_sp")])
    return fig


# ---------------------------------------------------------------------------------------
# 02 -- FMC: adversarial dynamics, generated vs real specific features
# ---------------------------------------------------------------------------------------


def loss_history(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The metrics log as a table indexed by global step, `loss/` prefixes dropped."""
    import pandas as pd

    rows = [{k.split("/", 1)[1] if k.startswith("loss/") else k: v for k, v in r.items()}
            for r in records]
    frame = pd.DataFrame(rows)
    return frame.set_index("global_step") if "global_step" in frame else frame


def plot_adversarial_dynamics(records: Iterable[Mapping[str, Any]]) -> Figure:
    """Generator vs discriminator loss (Eq. 12), L_IC / L_FC, and D's accuracy over steps."""
    h = loss_history(records)
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        (axes[0], [("gan_g", "generators: -log D(G(F_sh))"), ("gan_d", "discriminators")],
         "adversarial loss (Eq. 12)"),
        (axes[1], [("ic", "L_IC (Eq. 14)"), ("fc", "L_FC (Eq. 13)")], "compensation losses"),
        (axes[2], [("disc_acc", "D accuracy")], "discriminator accuracy"),
    ]
    for ax, series, title in panels:
        for key, label in series:
            if key in h:
                ax.plot(h.index, h[key], marker=".", label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[2].axhline(0.5, color="gray", linestyle="--", linewidth=1)
    axes[2].set_ylim(0, 1.02)
    return fig


# direction -> (source modality of the generated features, target modality, discriminator)
DIRECTIONS = {
    "V->I": ("visible", "infrared", "discriminator_v2i"),
    "I->V": ("infrared", "visible", "discriminator_i2v"),
}


def discriminator_scores(model: torch.nn.Module, fs: FeatureSet) -> dict[str, dict[str, np.ndarray]]:
    """D(real F_sp) and D(generated F'_sp) as probabilities, per direction.

    For V->I: D_{V->I} on the infrared images' real F_sp,I and on F'_sp,I = G_{V->I}(F_sh,V)
    generated from the visible images.
    """
    if getattr(model, "fmc", None) is None or "generated" not in fs.kinds:
        raise FMCNetError("discriminator_scores needs a model with FMC (fmc=true)")
    out = {}
    with torch.no_grad():
        for name, (src, tgt, attr) in DIRECTIONS.items():
            disc = getattr(model.fmc, attr)
            dev = next(disc.parameters()).device
            real = torch.as_tensor(fs.kinds["specific"][fs.rows(tgt)], device=dev).float()
            fake = torch.as_tensor(fs.kinds["generated"][fs.rows(src)], device=dev).float()
            out[name] = {"real": torch.sigmoid(disc(real)).cpu().numpy(),
                         "generated": torch.sigmoid(disc(fake)).cpu().numpy()}
    return out


def compensation_stats(fs: FeatureSet, scores: Mapping[str, Mapping[str, np.ndarray]] | None = None
                       ) -> pd.DataFrame:
    """Do generated features look like the real specific features of their identity?

    Per direction (V->I: F'_sp,I from visible images vs real F_sp,I of infrared images),
    on L2-normalised features:
    * `identity hit rate`: share of generated features whose nearest real identity
      center is their own identity (chance: 1 / #identities) -- Eq. 14's goal;
    * `to own center` / `to nearest other center`: mean distances -- Eq. 13's goal;
    * `D(real)`, `D(generated)`: mean discriminator probabilities when `scores` is given
      (0.5 for both: D cannot tell them apart, Eq. 12's equilibrium).
    """
    import pandas as pd

    rows = {}
    for name, (src, tgt, _) in DIRECTIONS.items():
        rs, rt = fs.rows(src), fs.rows(tgt)
        ids = np.intersect1d(fs.pids[rs], fs.pids[rt])
        gen = _normed(fs.kinds["generated"][rs])
        real = _normed(fs.kinds["specific"][rt])
        centers = _centers(real, fs.pids[rt], ids)
        keep = np.isin(fs.pids[rs], ids)
        d = torch.cdist(gen[torch.as_tensor(keep)], centers)
        own = torch.as_tensor(np.searchsorted(ids, fs.pids[rs][keep]))
        own_d = d[torch.arange(len(own)), own]
        other = d.clone()
        other[torch.arange(len(own)), own] = float("inf")
        row = {
            "identities": len(ids),
            "identity hit rate": float((d.argmin(1) == own).double().mean()),
            "chance": 1.0 / len(ids),
            "to own center": float(own_d.mean()),
            "to nearest other center": float(other.amin(1).mean()) if len(ids) > 1 else float("nan"),
        }
        if scores is not None:
            row["D(real)"] = float(np.mean(scores[name]["real"]))
            row["D(generated)"] = float(np.mean(scores[name]["generated"]))
        rows[name] = row
    return pd.DataFrame(rows).T


def plot_discriminator_scores(scores: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """Histograms of D's probability for real and generated specific features, per direction."""
    fig = Figure(figsize=(4.4 * len(scores), 3.2), layout="constrained")
    axes = fig.subplots(1, len(scores), squeeze=False)[0]
    bins = np.linspace(0, 1, 21)
    for ax, (name, s) in zip(axes, scores.items()):
        target = "I" if name.endswith("I") else "V"
        ax.hist(s["real"], bins=bins, alpha=0.6, label=f"real F_sp,{target}")
        ax.hist(s["generated"], bins=bins, alpha=0.6, label=f"generated F'_sp,{target}")
        ax.axvline(0.5, color="gray", linestyle="--", linewidth=1)
        ax.set_title(f"D_{{{name}}}")
        ax.set_xlabel("D(feature) = P(real)")
        ax.legend(fontsize=8)
    return fig


def plot_real_vs_generated(fs: FeatureSet) -> Figure:
    """Fig. 5's idea: real (o) vs generated (x) specific features in one PCA plane per target."""
    fig = Figure(figsize=(9.2, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (name, (src, tgt, _)) in zip(axes, DIRECTIONS.items()):
        rs, rt = fs.rows(src), fs.rows(tgt)
        real = _normed(fs.kinds["specific"][rt]).numpy()
        gen = _normed(fs.kinds["generated"][rs]).numpy()
        xy = pca_2d(np.concatenate([real, gen]))
        t = tgt[0].upper()
        colors = _identity_colors(np.concatenate([fs.pids[rt], fs.pids[rs]]))
        ax.scatter(xy[: len(real), 0], xy[: len(real), 1], c=colors[: len(real)], marker="o", s=18)
        ax.scatter(xy[len(real):, 0], xy[len(real):, 1], c=colors[len(real):], marker="x", s=22)
        ax.set_title(f"{name}: {tgt}-specific features, colour = identity", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        _marker_legend(ax, [("o", f"real F_sp,{t} ({tgt} images)"),
                            ("x", f"generated F'_sp,{t} (from {src} images)")])
    return fig


def real_and_generated(fs: FeatureSet, *, target: str = "infrared"
                       ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Real F_sp of `target` images stacked with F'_sp generated from the other modality.

    Returns ({kind: features}, pids, labels "real ..." / "generated ...") for
    `fmcnet.viz.embedding.plot_feature_map` (Fig. 5: do generated features land where
    the real ones of the same identity are?).
    """
    source = next((s for s, t, _ in DIRECTIONS.values() if t == target), None)
    if source is None or "generated" not in fs.kinds:
        raise FMCNetError(f"target must be 'visible' or 'infrared' and the model needs FMC, "
                          f"got target={target!r}, kinds {list(fs.kinds)}")
    rt, rs = fs.rows(target), fs.rows(source)
    t = target[0].upper()
    kind = f"F_sp,{t} real + F'_sp,{t} generated"
    feats = np.concatenate([fs.kinds["specific"][rt], fs.kinds["generated"][rs]])
    labels = np.array([f"real ({target} images)"] * len(rt)
                      + [f"generated (from {source} images)"] * len(rs))
    return {kind: feats}, np.concatenate([fs.pids[rt], fs.pids[rs]]), labels


# ---------------------------------------------------------------------------------------
# 03 -- SFF: omega, and what fusion does to retrieval
# ---------------------------------------------------------------------------------------


def omega_history(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The SFF weights over training: columns "w1 (V)", "w2 (V)", "w1 (I)", "w2 (I)"."""
    import pandas as pd

    rows = []
    for r in records:
        row = {"step": r.get("global_step")}
        for k, v in r.items():
            if k.startswith("omega/"):
                parts = k.split("/")  # omega/sff/omega_v/1
                m = "V" if parts[-2].endswith("_v") else "I"
                row[f"w{parts[-1]} ({m})"] = v
        if len(row) > 1:
            rows.append(row)
    if not rows:
        raise FMCNetError("no omega values in these records: was the run trained with fusion=sff?")
    return pd.DataFrame(rows).set_index("step")


def feature_variants(parts: Mapping[str, torch.Tensor | np.ndarray]) -> dict[str, torch.Tensor]:
    """Retrieval features one can build from `model.extract` parts of one image batch.

    F_sh (Base), F_sp, Cat(F_sh, F_sp) (no compensation), Cat(F_sh, F_sp, F'_sp) (Table 2's
    plain concatenation), F_fu = w1 F_sp + w2 F'_sp and F_fp = Cat(F_sh, F_fu) (SFF).
    """
    p = {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).float()
         for k, v in parts.items()}
    out = {"F_sh": p["shared"]}
    if "specific" in p:
        out["F_sp"] = p["specific"]
        out["Cat(F_sh, F_sp)"] = torch.cat([p["shared"], p["specific"]], 1)
    if "generated" in p:
        out["Cat(F_sh, F_sp, F'_sp)"] = torch.cat([p["shared"], p["specific"], p["generated"]], 1)
    if "fused" in p and p["fused"].shape[1] == 2 * p["shared"].shape[1]:
        out["F_fu = w1 F_sp + w2 F'_sp"] = p["fused"][:, p["shared"].shape[1]:]
        out["F_fp = Cat(F_sh, F_fu)"] = p["fused"]
    return out


def retrieval_table(q_parts: Mapping[str, Any], g_parts: Mapping[str, Any], split: EvalSplit,
                    *, trials: int | None = None, max_rank: int = 20) -> pd.DataFrame:
    """R1 / R10 / mAP / mINP (percent, mean over trials) of each feature variant on `split`.

    `q_parts` / `g_parts`: `model.extract` parts of the split's queries and whole gallery
    pool; each trial selects its gallery rows, as `evaluate_dataset` does.
    """
    import pandas as pd

    from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

    qv, gv = feature_variants(q_parts), feature_variants(g_parts)
    n = len(split.trials) if trials is None else min(trials, len(split.trials))
    q, g = split.query, split.gallery
    rows = {}
    for name in qv:
        d = pairwise_distance(qv[name], gv[name])
        per = []
        for t in range(n):
            r = np.asarray(split.trials[t], dtype=np.int64)
            m = rank_metrics(d[:, torch.as_tensor(r)], q.pids, g.pids[r], q.cams, g.cams[r],
                             protocol=split.protocol, max_rank=max_rank)
            per.append([m["cmc"][0], m["cmc"][min(9, max_rank - 1)], m["mAP"], m["mINP"]])
        rows[name] = dict(zip(("R1", "R10", "mAP", "mINP"), (100 * np.mean(per, 0)).tolist()))
    return pd.DataFrame(rows).T


def fusion_retrieval(model: torch.nn.Module, dataset: VIDataset, cfg: Config, *,
                     setting: str | None = None, trials: int | None = None
                     ) -> pd.DataFrame:
    """`retrieval_table` for a trained model on one evaluation setting (default: the first)."""
    from fmcnet.data.cache import load_images
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.utils import pick_device

    name = setting or next(iter(dataset.splits))
    split = dataset.splits[name]
    device = pick_device(cfg.device)
    parts = [
        extract_features(model, load_images(s, cfg.image_size, progress=False), s.modality,
                         device=device, batch_size=cfg.eval_batch_size, amp=cfg.amp, parts=True)
        for s in (split.query, split.gallery)
    ]
    return retrieval_table(parts[0], parts[1], split, trials=trials or cfg.trials,
                           max_rank=max(cfg.max_rank, 20))


# ---------------------------------------------------------------------------------------
# 06 -- ablations
# ---------------------------------------------------------------------------------------


def plot_ablation_bars(rows: Sequence[Mapping[str, Any]], *, metric: str = "R1") -> Figure:
    """Ours beside the paper's number for each sweep row (see `fmcnet.sweep.collect_sweep`).

    Rows are grouped by table; a row that has not run yet shows only the paper's bar.
    """
    tables = list(dict.fromkeys(str(r.get("table", "")) for r in rows))
    fig = Figure(figsize=(4.2 * len(tables) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, table in zip(axes, tables):
        sel = [r for r in rows if str(r.get("table", "")) == table]
        x = np.arange(len(sel))
        ours = [r.get(metric) if r.get(metric) is not None else np.nan for r in sel]
        paper = [(r.get("paper") or {}).get(metric, np.nan) for r in sel]
        ax.bar(x - 0.2, paper, width=0.4, label="paper (SYSU-MM01)", color="#bbbbbb")
        ax.bar(x + 0.2, ours, width=0.4, label="this run", color="#1f77b4")
        ax.set_xticks(x, [r.get("label") or r["row"] for r in sel], rotation=35, ha="right",
                      fontsize=8)
        ax.set_title(f"Table {table}" if table else "rows")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig

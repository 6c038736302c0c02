"""Notebook 01 -- SFD: a real batch through the network, and what the MD loss (Eq. 7) does.

`sample_batch` / `trace_shapes` follow one batch through Eqs. 1-16 with the paper's
symbols; `separation_stats` measures how far shared and specific features are apart;
`md_comparison` trains SFD with and without the MD loss (`md_config`, in `md_runs_dir`)
and `plot_decomposition` draws both side by side (Fig. 4's idea; `make figures` too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from matplotlib.figure import Figure

from fmcnet.analysis.features import (
    FeatureSet,
    _centers,
    _identity_colors,
    _marker_legend,
    _normed,
    decomposed_features,
    pca_2d,
)
from fmcnet.analysis.runs import notebook_config, run_folder, train_or_resume, with_switches
from fmcnet.config import Config
from fmcnet.data.base import VIDataset
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    import pandas as pd


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


# Where notebook 01 keeps the pair: runs/<MD_RUN_NAME>-<profile>/md_on and md_off.
MD_RUN_NAME = "01_decompose_features"


def md_config(profile: str, *, dataset: str = "synthetic", data_root: str = "",
              overrides: Mapping[str, Any] | None = None) -> Config:
    """The configuration notebook 01 trains its MD on/off pair from (`md_comparison`
    switches FMC off and the MD terms on or off); `make figures` asks for the same runs."""
    # short runs: only the last epoch is kept
    return notebook_config(profile, dataset=dataset, data_root=data_root, overrides=overrides,
                           defaults={"checkpoint_every": 1000})


def md_runs_dir(profile: str, run_dir: str | os.PathLike = "") -> Path:
    """The pair's folder: `run_dir`, else `runs/01_decompose_features-<profile>`."""
    return run_folder(MD_RUN_NAME, profile, run_dir)


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


def plot_decomposition(comparison: MDComparison | Mapping[str, FeatureSet]) -> Figure:
    """Fig. 4's idea: shared (o) and specific (^) features in one PCA plane per setting.

    `comparison`: notebook 01's MD on/off pair, or {name: FeatureSet} (e.g. the
    reference run's features for `make figures`), whose statistics are computed here.
    """
    if isinstance(comparison, MDComparison):
        features = comparison.features
        stats = {name: comparison.stats.loc[name] for name in features}
    else:
        features = dict(comparison)
        stats = {name: separation_stats(fs) for name, fs in features.items()}
    names = list(features)
    fig = Figure(figsize=(4.6 * len(names), 4.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        fs = features[name]
        sh, sp = _normed(fs.kinds["shared"]).numpy(), _normed(fs.kinds["specific"]).numpy()
        xy = pca_2d(np.concatenate([sh, sp]))
        colors = _identity_colors(fs.pids)
        n = len(sh)
        ax.scatter(xy[:n, 0], xy[:n, 1], c=colors, marker="o", s=18)
        ax.scatter(xy[n:, 0], xy[n:, 1], c=colors, marker="^", s=18)
        st = stats[name]
        ax.set_title(f"{name}\ncos(F_sh, F_sp) {st['cos(F_sh, F_sp)']:.2f} · "
                     f"Eq. 4 margin {st['Eq. 4 margin']:.2f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    _marker_legend(axes[0], [("o", "shared F_sh"), ("^", "specific F_sp")])
    return fig

"""Notebook 02 -- FMC: adversarial dynamics, and generated vs real specific features.

Eq. 12's game over training (`plot_adversarial_dynamics`), the discriminators' verdict on
real and generated features (`discriminator_scores`), whether a generated feature lands
near its identity's real ones (`compensation_stats`, Eqs. 13-14, and its one-sentence
`compensation_reading`), and Fig. 5's picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    pca_2d,
)
from fmcnet.analysis.runs import loss_history
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    import pandas as pd


# The generators' side of Eq. 12 as each `generator_loss` trains it.
GENERATOR_LABELS = {"nonsaturating": "generators: -log D(G(F_sh))",
                    "minimax": "generators: log(1 - D(G(F_sh)))"}


def plot_adversarial_dynamics(records: Iterable[Mapping[str, Any]],
                              generator_loss: str | None = None) -> Figure:
    """Generator vs discriminator loss (Eq. 12), L_IC / L_FC, and D's accuracy over steps;
    `generator_loss` (the run's `cfg.generator_loss`) names the generators' curve."""
    h = loss_history(records)
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    g_label = GENERATOR_LABELS.get(generator_loss, "generators")
    panels = [
        (axes[0], [("gan_g", g_label), ("gan_d", "discriminators")],
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


def compensation_reading(stats: pd.DataFrame) -> str:
    """One sentence that says what `compensation_stats` shows: per direction, the share of
    generated features whose nearest real identity centre is their own, against chance.

    The verdict: above twice chance in both directions, compensation carries identity
    across the gap; at most 1.5 times chance in both, it does not (yet); otherwise the
    two directions differ or the evidence is weak.
    """
    hits = {name: (float(row["identity hit rate"]), float(row["chance"]))
            for name, row in stats.iterrows()}
    shares = ", ".join(f"{name.replace('->', '→')} {hit:.0%}" for name, (hit, _) in hits.items())
    chance = max(c for _, c in hits.values())
    if all(hit > 2 * c for hit, c in hits.values()):
        verdict = "the generated features carry identity across the modality gap"
    elif all(hit <= 1.5 * c for hit, c in hits.values()):
        verdict = "the generated features are no nearer their own identity than chance"
    else:
        verdict = "only weak or one-sided evidence that they carry identity across the gap"
    return (f"Generated features nearest their own identity's real centre: {shares} "
            f"(chance {chance:.0%}) -- {verdict}.")


def plot_real_vs_generated(fs: FeatureSet, *, reading: bool = True) -> Figure:
    """Fig. 5's idea: real (o) vs generated (x) specific features in one PCA plane per
    target; with `reading`, `compensation_reading` of these features under the panels."""
    fig = Figure(figsize=(9.2, 4.5 if reading else 4.2), layout="constrained")
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
        ax.set_title(f"{name.replace('->', '→')}: {tgt}-specific features, colour = identity",
                     fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        _marker_legend(ax, [("o", f"real F_sp,{t} ({tgt} images)"),
                            ("x", f"generated F'_sp,{t} (from {src} images)")])
    if reading:
        fig.supxlabel(compensation_reading(compensation_stats(fs)), fontsize=9)
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

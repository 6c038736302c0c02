"""Every loss of FMCNet, one function per equation (docs/method.md, sections 1-4).

Center losses take identity centers [P, D] (Eq. 3, `class_centers`) whose rows are the
same identities in the same order for both modalities; sums run over the P identities
and norms are Euclidean, not squared. `fmcnet_loss` composes L = L_SFD + L_FMC + L_SFF
from the model's output dict under the ablation switches; `discriminator_loss` is the
discriminators' side of Eq. 12.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def _safe_norm(diff: Tensor) -> Tensor:
    """Euclidean norm over the last dim, exact at 0 and with gradient 0 there (not NaN).

    The "max over d" of Eq. 4 includes d = p, a zero distance whose plain sqrt gradient is
    NaN; the masked branch keeps the value exactly 0 (a clamp floor would bias every term).
    """
    d2 = diff.pow(2).sum(-1)
    return torch.where(d2 > 0, d2.clamp_min(1e-30).sqrt(), torch.zeros_like(d2))


def _distances(a: Tensor, b: Tensor) -> Tensor:
    """[P, Q] Euclidean distances; by differences (not the Gram trick) so d(x, x) is exact."""
    return _safe_norm(a[:, None, :] - b[None, :, :])


def _off_diagonal(d: Tensor) -> Tensor:
    """`d` with its diagonal at +inf, so a row minimum runs over j != p."""
    eye = torch.eye(d.shape[0], d.shape[1], dtype=torch.bool, device=d.device)
    return d.masked_fill(eye, float("inf"))


def _check_centers(**centers: Tensor) -> None:
    shapes = {name: tuple(c.shape) for name, c in centers.items()}
    first = next(iter(shapes.values()))
    if len(first) != 2 or any(s != first for s in shapes.values()):
        raise ValueError(
            f"expected identity centers of one shape [P, D] (rows = the same identities in "
            f"both modalities), got {shapes}"
        )


def class_centers(feats: Tensor, labels: Tensor) -> Tensor:
    """Eq. 3: C^p = (1/K) sum_k F^{k,p}; rows in ascending label order -> [P, D]."""
    if feats.ndim != 2 or labels.ndim != 1 or len(feats) != len(labels):
        raise ValueError(
            f"class_centers needs features [N, D] and labels [N], got {tuple(feats.shape)} "
            f"and {tuple(labels.shape)}"
        )
    ids, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    sums = feats.new_zeros(len(ids), feats.shape[1]).index_add(0, inverse, feats)
    counts = torch.bincount(inverse, minlength=len(ids)).to(feats.dtype)
    return sums / counts[:, None]


def _check_same_identities(labels_v: Tensor, labels_i: Tensor) -> None:
    ids_v, ids_i = torch.unique(labels_v), torch.unique(labels_i)
    if ids_v.shape != ids_i.shape or not torch.equal(ids_v, ids_i):
        raise ValueError(
            "the visible and infrared halves of a batch must hold the same identities (the "
            f"center losses pair C^p_V with C^p_I); got {ids_v.tolist()} and {ids_i.tolist()}. "
            "Use fmcnet.data.sampler.CrossModalitySampler."
        )


def decorrelation_hinges(sp_v: Tensor, sh_v: Tensor, sp_i: Tensor, sh_i: Tensor,
                         margin: float = 1.0) -> Tensor:
    """Eq. 4's hinge arguments [2, P] (rows V, I): spread - nearest shared center + rho1."""
    _check_centers(sp_v=sp_v, sh_v=sh_v, sp_i=sp_i, sh_i=sh_i)

    def one_modality(sp: Tensor, sh: Tensor) -> Tensor:
        spread = _distances(sp, sp).amax(dim=1)  # d runs over all P, p included
        closest_shared = _distances(sp, sh).amin(dim=1)
        return spread - closest_shared + margin

    return torch.stack([one_modality(sp_v, sh_v), one_modality(sp_i, sh_i)])


def decorrelation_loss(sp_v: Tensor, sh_v: Tensor, sp_i: Tensor, sh_i: Tensor,
                       margin: float = 1.0) -> Tensor:
    """Eq. 4, L_dc: sum_p max(max_d |C^p_sp - C^d_sp| - min_j |C^p_sp - C^j_sh| + rho1, 0), V + I."""
    return F.relu(decorrelation_hinges(sp_v, sh_v, sp_i, sh_i, margin)).sum()


def specific_separation_hinges(sp_v: Tensor, sp_i: Tensor, margin: float = 0.7) -> Tensor:
    """Eq. 5's hinge arguments [2, P] (rows V, I): rho2 - nearest other specific center."""
    _check_centers(sp_v=sp_v, sp_i=sp_i)

    def one_modality(sp: Tensor) -> Tensor:
        return margin - _off_diagonal(_distances(sp, sp)).amin(dim=1)

    return torch.stack([one_modality(sp_v), one_modality(sp_i)])


def specific_separation_loss(sp_v: Tensor, sp_i: Tensor, margin: float = 0.7) -> Tensor:
    """Eq. 5, L_sps: sum_p max(rho2 - min_{j!=p} |C^p_sp,m - C^j_sp,m|, 0) over m = V, I."""
    return F.relu(specific_separation_hinges(sp_v, sp_i, margin)).sum()


def _cross_modality_hinges(c_v: Tensor, c_i: Tensor, margin: float) -> Tensor:
    """The margin terms of Eqs. 6 and 17 [2, P]: rho - nearest j != p (in V and I), from V and I."""
    d_vi = _off_diagonal(_distances(c_v, c_i))
    nearest_from_v = torch.minimum(_off_diagonal(_distances(c_v, c_v)).amin(1), d_vi.amin(1))
    nearest_from_i = torch.minimum(_off_diagonal(_distances(c_i, c_i)).amin(1), d_vi.amin(0))
    return torch.stack([margin - nearest_from_v, margin - nearest_from_i])


def _cross_modality_centers(c_v: Tensor, c_i: Tensor, margin: float, weight: float) -> Tensor:
    """The shared form of Eqs. 6 and 17: pull C^p_V to C^p_I, push both from j != p in V and I."""
    pull = weight * _safe_norm(c_v - c_i)
    return pull.sum() + F.relu(_cross_modality_hinges(c_v, c_i, margin)).sum()


def shared_separation_hinges(sh_v: Tensor, sh_i: Tensor, margin: float = 0.7) -> Tensor:
    """Eq. 6's hinge arguments [2, P] (rows: from C_sh,V, from C_sh,I)."""
    _check_centers(sh_v=sh_v, sh_i=sh_i)
    return _cross_modality_hinges(sh_v, sh_i, margin)


def shared_separation_loss(sh_v: Tensor, sh_i: Tensor, margin: float = 0.7,
                           alpha: float = 2.0) -> Tensor:
    """Eq. 6, L_shs: sum_p alpha|C^p_sh,V - C^p_sh,I| + two margin terms over j != p, m in {V, I}."""
    _check_centers(sh_v=sh_v, sh_i=sh_i)
    return _cross_modality_centers(sh_v, sh_i, margin, alpha)


def hinge_activity(hinges: Tensor) -> Tensor:
    """Fraction of hinge arguments > 0: the share of max(., 0) terms whose margin binds.

    0 means every margin already holds (the term gives no gradient); 1 means none does.
    """
    return (hinges.detach() > 0).float().mean()


def md_loss(sp_v: Tensor, sh_v: Tensor, sp_i: Tensor, sh_i: Tensor, *, lambda1: float = 0.5,
            lambda2: float = 0.5, shs: bool = True, sps: bool = True, dc: bool = True,
            rho1: float = 1.0, rho2: float = 0.7, rho3: float = 0.7, alpha: float = 2.0
            ) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 7, L_MD = L_shs + lambda1 L_dc + lambda2 L_sps (centers in).

    Returns (total, terms) with the *unweighted* value of each active term (Table 3
    switches) and, for each, "hinge/<term>": the fraction of its hinges that are active
    (`hinge_activity`).
    """
    _check_centers(sp_v=sp_v, sh_v=sh_v, sp_i=sp_i, sh_i=sh_i)
    terms: dict[str, Tensor] = {}
    total = sp_v.new_zeros(())
    if shs:
        hinges = shared_separation_hinges(sh_v, sh_i, rho3)
        terms["shs"] = alpha * _safe_norm(sh_v - sh_i).sum() + F.relu(hinges).sum()
        terms["hinge/shs"] = hinge_activity(hinges)
        total = total + terms["shs"]
    if dc:
        hinges = decorrelation_hinges(sp_v, sh_v, sp_i, sh_i, rho1)
        terms["dc"] = F.relu(hinges).sum()
        terms["hinge/dc"] = hinge_activity(hinges)
        total = total + lambda1 * terms["dc"]
    if sps:
        hinges = specific_separation_hinges(sp_v, sp_i, rho2)
        terms["sps"] = F.relu(hinges).sum()
        terms["hinge/sps"] = hinge_activity(hinges)
        total = total + lambda2 * terms["sps"]
    return total, terms


def identity_loss(logits_shared_v: Tensor, logits_shared_i: Tensor, labels_v: Tensor,
                  labels_i: Tensor, logits_specific_v: Tensor | None = None,
                  logits_specific_i: Tensor | None = None) -> Tensor:
    """Eq. 8, L_ID = CE(S_sh,V) + CE(S_sh,I) + CE(S_sp,V) + CE(S_sp,I); "Base" has no S_sp."""
    loss = F.cross_entropy(logits_shared_v, labels_v) + F.cross_entropy(logits_shared_i, labels_i)
    if logits_specific_v is not None:
        loss = loss + F.cross_entropy(logits_specific_v, labels_v)
    if logits_specific_i is not None:
        loss = loss + F.cross_entropy(logits_specific_i, labels_i)
    return loss


GENERATOR_LOSSES = ("nonsaturating", "minimax")


def generator_adversarial_loss(fake_logits: Tensor, form: str = "nonsaturating") -> Tensor:
    """Eq. 12, generator side. "nonsaturating" (the usual GAN practice): mean -log D(G(F_sh))
    = BCE(logit, 1); "minimax" (the equation as written): mean log(1 - D(G(F_sh))) =
    -softplus(logit), whose gradient vanishes where D rejects the generated feature."""
    if form == "minimax":
        return -F.softplus(fake_logits).mean()
    if form != "nonsaturating":
        raise ValueError(f"generator loss form must be one of {GENERATOR_LOSSES}, got {form!r}")
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_adversarial_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Eq. 12, D side: -mean[log D(F_sp) + log(1 - D(G(F_sh)))] = BCE(real, 1) + BCE(fake, 0)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def feature_consistency_loss(generated: Tensor, real: Tensor, labels: Tensor,
                             real_labels: Tensor | None = None, *,
                             detach_centers: bool = True) -> Tensor:
    """Eq. 13, L_FC = mean_k,p |F'^{k,p}_sp - C^p_sp|_1.

    `labels` are the generated samples' (source) identities; the centers are of `real`
    grouped by `real_labels` (default: `labels`, as when both halves share the order).
    Reading (`fc_detach_centers`): the real centers are targets, detached (default), or
    L_FC also pulls the real specific features toward the generated ones.
    """
    real_labels = labels if real_labels is None else real_labels
    if generated.ndim != 2 or real.ndim != 2 or generated.shape[1] != real.shape[1] \
            or len(generated) != len(labels):
        raise ValueError(
            f"feature_consistency_loss needs generated [N, D] with labels [N] and real [M, D], "
            f"got {tuple(generated.shape)}, {tuple(labels.shape)}, {tuple(real.shape)}"
        )
    centers = class_centers(real.detach() if detach_centers else real, real_labels)
    ids = torch.unique(real_labels)
    row = torch.searchsorted(ids, labels).clamp_max(len(ids) - 1)
    if not torch.equal(ids[row], labels):
        raise ValueError("every generated sample's identity must have real features in the batch")
    return (generated - centers[row]).abs().sum(dim=1).mean()


def identity_consistency_loss(logits_generated: Tensor, source_labels: Tensor) -> Tensor:
    """Eq. 14, L_IC = CE(P^I_sp(F'_sp,I), Y_V): generated features keep their source identity."""
    return F.cross_entropy(logits_generated, source_labels)


def cross_modality_center_loss(fp_v: Tensor, fp_i: Tensor, margin: float = 0.7,
                               beta: float = 2.0) -> Tensor:
    """Eq. 17, L_MC: Eq. 6's form on the fused-feature centers C_fp (rho4, beta)."""
    _check_centers(fp_v=fp_v, fp_i=fp_i)
    return _cross_modality_centers(fp_v, fp_i, margin, beta)


def fused_identity_loss(logits_fused_v: Tensor, logits_fused_i: Tensor, labels_v: Tensor,
                        labels_i: Tensor) -> Tensor:
    """Eq. 18, L_FID = CE(S_fp,V, Y_V) + CE(S_fp,I, Y_I)."""
    return F.cross_entropy(logits_fused_v, labels_v) + F.cross_entropy(logits_fused_i, labels_i)


def _full_precision(x: Tensor) -> Tensor:
    """bf16/fp16 features (autocast) -> fp32: center distances sum thousands of squares."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _require(out: dict[str, Tensor], keys: tuple[str, ...], switch: str) -> None:
    missing = [k for k in keys if k not in out]
    if missing:
        raise ValueError(f"config has {switch} but the model output lacks {missing}; build the "
                         "model from the same config (FMCNet.from_config(cfg, ...))")


FEATURE_SPACES = ("raw", "l2", "scaled")

# The features the distance-based terms see (Eqs. 4-6, 13, 17); logits are never touched.
_FEATURE_KEYS = frozenset({
    "shared_v", "shared_i", "specific_v", "specific_i", "generated_v", "generated_i",
    "fused_v", "fused_i",
})


def to_feature_space(x: Tensor, space: str, scale: float = 1.0) -> Tensor:
    """Features [N, D] as a loss sees them: "raw" as they are, "l2" unit length, "scaled"
    `scale` times unit length (a sphere of radius `scale`).

    docs/method_readings.md ("The feature space of the losses"): GAP after ReLU is
    non-negative, so unit-length centres lie at most sqrt(2) apart and Eqs. 4 and 5
    cannot both hold there; raw features or a sphere of radius >= 1.5 can satisfy both.
    """
    if space == "raw":
        return x
    if space == "l2":
        return F.normalize(x, dim=1)
    if space == "scaled":
        return scale * F.normalize(x, dim=1)
    raise ValueError(f"feature space must be one of {FEATURE_SPACES}, got {space!r}")


def _in_space(out: dict[str, Tensor], space: str, scale: float) -> dict[str, Tensor]:
    return {k: to_feature_space(v, space, scale) if k in _FEATURE_KEYS else v
            for k, v in out.items()}


def loss_inputs(out: dict[str, Tensor], cfg: Any) -> dict[str, Tensor]:
    """The model outputs as the centre losses (Eqs. 4-6, 17) see them: fp32, and the
    features in `cfg.center_loss_space` (raw | l2 | scaled by `cfg.center_loss_scale`);
    logits stay raw. L_FC (Eq. 13) has its own space, `cfg.fc_loss_space`."""
    out = {k: _full_precision(v) for k, v in out.items()}
    return _in_space(out, getattr(cfg, "center_loss_space", "raw"),
                     getattr(cfg, "center_loss_scale", 1.0))


def fmcnet_loss(out: dict[str, Tensor], labels_v: Tensor, labels_i: Tensor, cfg: Any,
                *, align_weight: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """L = L_SFD + L_FMC + L_SFF (Eqs. 10, 12-14, 19) under the config's ablation switches.

    L_FMC = fmc_weight * sum over both directions of (L_GAN(G side) + L_IC + L_FC). The
    generator-side GAN logits come from D with frozen parameters (the model computes them),
    so this loss never writes D's grads. With fusion="concat" there is no SFF loss. The
    centre losses see the features in `center_loss_space`, L_FC in `fc_loss_space`.
    Terms are detached, unweighted equation values of the active terms plus "total", and
    "hinge/<term>" (shs, dc, sps, mc): the fraction of that term's hinges that are active.
    `align_weight` scales the centre and alignment terms (L_MD, L_GAN, L_FC, L_MC) in the
    total, not the identity losses (the `id_warmup_epochs` ramp; 1 is the paper's loss).
    """
    _check_same_identities(labels_v, labels_i)
    raw = {k: _full_precision(v) for k, v in out.items()}
    out = loss_inputs(raw, cfg)
    sfd = getattr(cfg, "sfd", True)
    fmc = getattr(cfg, "fmc", True)
    terms: dict[str, Tensor] = {}
    if not sfd:  # the paper's "Base": ID loss on the shared classifier only
        total = terms["id"] = identity_loss(out["logits_shared_v"], out["logits_shared_i"],
                                            labels_v, labels_i)
    else:
        _require(out, ("specific_v", "specific_i"), "sfd=True")
        terms["id"] = identity_loss(out["logits_shared_v"], out["logits_shared_i"], labels_v,
                                    labels_i, out["logits_specific_v"], out["logits_specific_i"])
        md, md_terms = md_loss(
            class_centers(out["specific_v"], labels_v), class_centers(out["shared_v"], labels_v),
            class_centers(out["specific_i"], labels_i), class_centers(out["shared_i"], labels_i),
            lambda1=getattr(cfg, "lambda1", 0.5), lambda2=getattr(cfg, "lambda2", 0.5),
            shs=getattr(cfg, "shs", True), sps=getattr(cfg, "sps", True),
            dc=getattr(cfg, "dc", True), rho1=getattr(cfg, "rho1", 1.0),
            rho2=getattr(cfg, "rho2", 0.7), rho3=getattr(cfg, "rho3", 0.7),
            alpha=getattr(cfg, "alpha", 2.0),
        )
        terms.update(md_terms)
        total = terms["id"] + align_weight * md
    if fmc:
        _require(out, ("generated_v", "generated_i", "disc_fake_v"), "fmc=True")
        fmc_total = out["generated_i"].new_zeros(())
        if getattr(cfg, "gan", True):
            form = getattr(cfg, "generator_loss", "nonsaturating")
            terms["gan_g"] = (generator_adversarial_loss(out["disc_fake_i"], form)
                              + generator_adversarial_loss(out["disc_fake_v"], form))
            fmc_total = fmc_total + align_weight * terms["gan_g"]
        if getattr(cfg, "ic", True):  # F'_sp,I comes from visible images: Y_V (and back)
            terms["ic"] = (identity_consistency_loss(out["logits_generated_i"], labels_v)
                           + identity_consistency_loss(out["logits_generated_v"], labels_i))
            fmc_total = fmc_total + terms["ic"]
        if getattr(cfg, "fc", True):
            fc = _in_space(raw, getattr(cfg, "fc_loss_space", "l2"),
                           getattr(cfg, "fc_loss_scale", 1.0))
            detach = getattr(cfg, "fc_detach_centers", True)
            terms["fc"] = (
                feature_consistency_loss(fc["generated_i"], fc["specific_i"], labels_v, labels_i,
                                         detach_centers=detach)
                + feature_consistency_loss(fc["generated_v"], fc["specific_v"], labels_i, labels_v,
                                           detach_centers=detach)
            )
            fmc_total = fmc_total + align_weight * terms["fc"]
        total = total + getattr(cfg, "fmc_weight", 1.0) * fmc_total
    if getattr(cfg, "fusion", "sff") == "sff":
        _require(out, ("fused_v", "logits_fused_v"), "fusion='sff'")
        c_v, c_i = class_centers(out["fused_v"], labels_v), class_centers(out["fused_i"], labels_i)
        hinges = _cross_modality_hinges(c_v, c_i, getattr(cfg, "rho4", 0.7))
        # = cross_modality_center_loss (Eq. 17), with its hinges kept for the activity
        terms["mc"] = getattr(cfg, "beta", 2.0) * _safe_norm(c_v - c_i).sum() + F.relu(hinges).sum()
        terms["hinge/mc"] = hinge_activity(hinges)
        terms["fid"] = fused_identity_loss(out["logits_fused_v"], out["logits_fused_i"],
                                           labels_v, labels_i)
        total = total + align_weight * terms["mc"] + terms["fid"]
    terms["total"] = total
    return total, {k: v.detach().float() for k, v in terms.items()}


def discriminator_loss(model: torch.nn.Module, out: dict[str, Tensor]
                       ) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 12, D side for D_{V->I} (real F_sp,I vs F'_sp,I) and D_{I->V}, on detached features.

    Only the discriminators receive gradients. Terms: "gan_d" and "disc_acc" (fraction of
    real features scored real and generated ones scored fake; 0.5 = D is fooled).
    """
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):  # DDP / torch.compile
        model = getattr(model, "module", None) or model._orig_mod
    fmc = getattr(model, "fmc", None)
    if fmc is None:
        raise ValueError("discriminator_loss needs a model with the FMC module (fmc=True)")
    loss = out["specific_i"].new_zeros(())
    correct, count = 0, 0
    for real_key, fake_key, disc in (("specific_i", "generated_i", fmc.discriminator_v2i),
                                     ("specific_v", "generated_v", fmc.discriminator_i2v)):
        real_logits = disc(out[real_key].detach())
        fake_logits = disc(out[fake_key].detach())
        loss = loss + discriminator_adversarial_loss(real_logits, fake_logits)
        correct = correct + (real_logits > 0).sum() + (fake_logits <= 0).sum()
        count += real_logits.numel() + fake_logits.numel()
    terms = {"gan_d": loss.detach().float(), "disc_acc": (correct / count).detach().float()}
    return loss, terms

"""Each loss against a plain-loop transcription of its equation (docs/method.md, sections 1-3)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from fmcnet import losses

CASES = [(2, 1, 3, 0.01), (3, 4, 8, 1.0), (5, 2, 16, 10.0)]  # P, K, D, feature scale


def norm(x: torch.Tensor) -> float:
    return math.sqrt(sum(float(v) ** 2 for v in x))


def ref_centers(feats, labels):
    out = []
    for p in sorted(set(labels.tolist())):
        rows = [feats[n] for n in range(len(labels)) if labels[n] == p]
        out.append(sum(rows) / len(rows))
    return torch.stack(out)


def ref_dc(sp_v, sh_v, sp_i, sh_i, rho1):
    total, P = 0.0, len(sp_v)
    for sp, sh in ((sp_v, sh_v), (sp_i, sh_i)):
        for p in range(P):
            far = max(norm(sp[p] - sp[d]) for d in range(P))
            near = min(norm(sp[p] - sh[j]) for j in range(P))
            total += max(far - near + rho1, 0.0)
    return total


def ref_sps(sp_v, sp_i, rho2):
    total, P = 0.0, len(sp_v)
    for sp in (sp_v, sp_i):
        for p in range(P):
            near = min([norm(sp[p] - sp[j]) for j in range(P) if j != p], default=math.inf)
            total += max(rho2 - near, 0.0)
    return total


def ref_center_pair(c_v, c_i, rho, weight):
    """Eq. 6 / Eq. 17 written out."""
    total, P = 0.0, len(c_v)
    for p in range(P):
        total += weight * norm(c_v[p] - c_i[p])
        for anchor in (c_v[p], c_i[p]):
            near = min([norm(anchor - c[j]) for c in (c_v, c_i) for j in range(P) if j != p],
                       default=math.inf)
            total += max(rho - near, 0.0)
    return total


def random_batch(P, K, D, scale, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randperm(P * 10, generator=g)[:P].repeat_interleave(K)
    labels = labels[torch.randperm(len(labels), generator=g)]  # unsorted on purpose
    feats = [scale * torch.randn(P * K, D, generator=g, dtype=torch.float64) for _ in range(4)]
    return labels, feats


@pytest.mark.parametrize("P,K,D,scale", CASES)
def test_center_losses_match_plain_loops(P, K, D, scale):
    labels, (a, b, c, d) = random_batch(P, K, D, scale, seed=P * 7 + K)
    sp_v, sh_v, sp_i, sh_i = (losses.class_centers(x, labels) for x in (a, b, c, d))
    assert torch.allclose(sp_v, ref_centers(a, labels))
    rho = 0.7 * scale  # margins on the features' scale so the hinges are sometimes active
    close = dict(rtol=1e-7, atol=1e-9 * scale)
    assert math.isclose(float(losses.decorrelation_loss(sp_v, sh_v, sp_i, sh_i, rho)),
                        ref_dc(sp_v, sh_v, sp_i, sh_i, rho), **{"rel_tol": 1e-7, "abs_tol": 1e-9})
    got = losses.specific_separation_loss(sp_v, sp_i, 3 * rho)
    assert torch.allclose(got, torch.tensor(ref_sps(sp_v, sp_i, 3 * rho), dtype=got.dtype), **close)
    got = losses.shared_separation_loss(sh_v, sh_i, 3 * rho, alpha=2.0)
    want = ref_center_pair(sh_v, sh_i, 3 * rho, 2.0)
    assert torch.allclose(got, torch.tensor(want, dtype=got.dtype), **close)
    got = losses.cross_modality_center_loss(sp_v, sh_i, 3 * rho, beta=1.5)
    want = ref_center_pair(sp_v, sh_i, 3 * rho, 1.5)
    assert torch.allclose(got, torch.tensor(want, dtype=got.dtype), **close)


def test_hinges_are_exercised_both_ways():
    """Guard the loop comparison above: the margins must be both active and inactive."""
    c_v = torch.tensor([[0.0, 0.0], [0.5, 0.0], [5.0, 0.0]], dtype=torch.float64)
    c_i = c_v + torch.tensor([0.0, 0.1], dtype=torch.float64)
    # Only identities 0 and 1 are closer than the margin: 2 anchors x 2 modalities active.
    got = float(losses.cross_modality_center_loss(c_v, c_i, margin=0.7, beta=0.0))
    assert math.isclose(got, ref_center_pair(c_v, c_i, 0.7, 0.0))
    assert got == pytest.approx(4 * (0.7 - 0.5))
    assert float(losses.specific_separation_loss(c_v * 10, c_i * 10, 0.7)) == 0.0
    far_shared = c_v + 100.0  # min_j |C_sp - C_sh| >> spread + rho1: L_dc's hinge is off
    assert float(losses.decorrelation_loss(c_v, far_shared, c_i, far_shared + 0.1)) == 0.0
    got = float(losses.decorrelation_loss(c_v, c_v + 1.0, c_i, c_i))  # sh = sp for I: on
    assert math.isclose(got, ref_dc(c_v, c_v + 1.0, c_i, c_i, 1.0)) and got > 0


@pytest.mark.parametrize("switches", [(True, True, True), (True, False, False), (False, True, True)])
def test_md_loss_weights_and_switches(switches):
    shs, sps, dc = switches
    labels, feats = random_batch(4, 2, 6, 1.0, seed=3)
    sp_v, sh_v, sp_i, sh_i = (losses.class_centers(x, labels) for x in feats)
    total, terms = losses.md_loss(sp_v, sh_v, sp_i, sh_i, lambda1=0.3, lambda2=0.2,
                                  shs=shs, sps=sps, dc=dc, rho2=2.0, rho3=2.0)
    want = (shs * ref_center_pair(sh_v, sh_i, 2.0, 2.0) + dc * 0.3 * ref_dc(sp_v, sh_v, sp_i, sh_i, 1.0)
            + sps * 0.2 * ref_sps(sp_v, sp_i, 2.0))
    assert math.isclose(float(total), want, rel_tol=1e-9)
    on = {n for n, on in zip(("shs", "sps", "dc"), switches) if on}
    assert set(terms) == on | {f"hinge/{n}" for n in on}


def test_hinge_activity_counts_the_binding_margins():
    """hinge/<term>: the share of max(., 0) arguments > 0, on centres laid out by hand."""
    c_v = torch.tensor([[0.0, 0.0], [0.5, 0.0], [5.0, 0.0]], dtype=torch.float64)
    c_i = c_v + torch.tensor([0.0, 0.1], dtype=torch.float64)
    # Eq. 6 / 17: 3 identities x 2 anchors; ids 0 and 1 are 0.5 apart (< 0.7): 4 of 6 bind.
    _, terms = losses.md_loss(c_v, c_v, c_i, c_i, shs=True, sps=False, dc=False, rho3=0.7)
    assert float(terms["hinge/shs"]) == pytest.approx(4 / 6)
    assert float(terms["hinge/shs"]) == float(losses.hinge_activity(
        losses.shared_separation_hinges(c_v, c_i, 0.7)))
    # Eq. 5 per modality: ids 0 and 1 bind (nearest other 0.5 < 0.7), id 2 does not.
    _, terms = losses.md_loss(c_v, c_v, c_i, c_i, shs=False, sps=True, dc=False, rho2=0.7)
    assert float(terms["hinge/sps"]) == pytest.approx(4 / 6)
    _, terms = losses.md_loss(10 * c_v, c_v, 10 * c_i, c_i, shs=False, sps=True, dc=False)
    assert float(terms["hinge/sps"]) == 0.0  # 5.0 apart: every margin holds
    # Eq. 4: shared centres far from every specific one -> no hinge binds; shared = specific
    # (distance 0) -> spread + rho1 > 0 binds for all 3 x 2.
    _, terms = losses.md_loss(c_v, c_v + 100.0, c_i, c_i + 100.0, shs=False, sps=False)
    assert float(terms["hinge/dc"]) == 0.0
    _, terms = losses.md_loss(c_v, c_v, c_i, c_i, shs=False, sps=False)
    assert float(terms["hinge/dc"]) == 1.0
    # One of 6: a shared centre at (10, 0) is 5 from C^2_sp,V, whose spread is 5 (to
    # C^0): 5 - 5 + 1 > 0 binds; C^0 (spread 5, 10 away) and C^1 (4.5, 9.5) do not.
    sh_v = c_v + 100.0
    sh_v[2] = torch.tensor([10.0, 0.0], dtype=torch.float64)
    _, terms = losses.md_loss(c_v, sh_v, c_i, c_i + 100.0, shs=False, sps=False)
    assert float(terms["hinge/dc"]) == pytest.approx(1 / 6)


@pytest.mark.parametrize("scale", [0.01, 1.0, 10.0])
def test_feature_consistency_matches_eq13(scale):
    g = torch.Generator().manual_seed(1)
    labels_v = torch.tensor([4, 4, 9, 2, 9, 2])
    labels_i = torch.tensor([9, 2, 2, 4, 4, 9, 9])  # other order and count than the V half
    generated = scale * torch.randn(6, 5, generator=g, dtype=torch.float64)
    real = scale * torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    centers = {p: ref_centers(real.detach(), labels_i)[r]
               for r, p in enumerate(sorted(set(labels_i.tolist())))}
    want = sum(float((generated[n] - centers[int(labels_v[n])]).abs().sum())
               for n in range(6)) / 6
    got = losses.feature_consistency_loss(generated, real, labels_v, labels_i)
    assert math.isclose(float(got), want, rel_tol=1e-9)
    assert not got.requires_grad  # the real centers are detached targets
    with pytest.raises(ValueError, match="identity"):
        losses.feature_consistency_loss(generated, real, labels_v.clone().fill_(7), labels_i)


def test_cross_entropy_and_adversarial_terms():
    g = torch.Generator().manual_seed(2)
    logits = [torch.randn(6, 5, generator=g, dtype=torch.float64) for _ in range(4)]
    y_v, y_i = torch.tensor([0, 0, 1, 1, 4, 4]), torch.tensor([1, 4, 0, 1, 4, 0])

    def ce(s, y):  # mean over samples of -log softmax at the true class
        return sum(-float(torch.log_softmax(s[n], 0)[y[n]]) for n in range(len(y))) / len(y)

    want = ce(logits[0], y_v) + ce(logits[1], y_i) + ce(logits[2], y_v) + ce(logits[3], y_i)
    got = losses.identity_loss(logits[0], logits[1], y_v, y_i, logits[2], logits[3])
    assert math.isclose(float(got), want, rel_tol=1e-9)
    base = losses.identity_loss(logits[0], logits[1], y_v, y_i)
    assert math.isclose(float(base), ce(logits[0], y_v) + ce(logits[1], y_i), rel_tol=1e-9)
    assert math.isclose(float(losses.identity_consistency_loss(logits[2], y_v)),
                        ce(logits[2], y_v), rel_tol=1e-9)
    assert math.isclose(float(losses.fused_identity_loss(logits[0], logits[3], y_v, y_i)),
                        ce(logits[0], y_v) + ce(logits[3], y_i), rel_tol=1e-9)

    real, fake = 10 * logits[0][:, 0], logits[1][:, 0]  # large logits: stability matters
    sig = torch.sigmoid
    want_d = -sum(math.log(sig(r)) + math.log(1 - sig(f)) for r, f in zip(real, fake)) / 6
    assert math.isclose(float(losses.discriminator_adversarial_loss(real, fake)), want_d,
                        rel_tol=1e-7)
    want_g = -sum(math.log(sig(f)) for f in fake) / 6
    assert math.isclose(float(losses.generator_adversarial_loss(fake)), want_g, rel_tol=1e-9)


def test_zero_distance_gives_finite_gradients():
    centers = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)  # all identical
    total, _ = losses.md_loss(centers, centers, centers, centers)
    (total + losses.cross_modality_center_loss(centers, centers)).backward()
    assert torch.isfinite(centers.grad).all()
    one = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)  # P = 1: no negatives
    loss = losses.specific_separation_loss(one, one) + losses.shared_separation_loss(one, one)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(one.grad).all()


def test_bad_inputs_raise_clear_errors():
    a = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"\[P, D\]"):
        losses.decorrelation_loss(a, a, a, torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"\[P, D\]"):
        losses.shared_separation_loss(a, torch.randn(2, 4))
    with pytest.raises(ValueError, match="labels"):
        losses.class_centers(a, torch.tensor([0, 1]))
    out = {"logits_shared_v": torch.randn(2, 3), "logits_shared_i": torch.randn(2, 3)}
    with pytest.raises(ValueError, match="same identities"):
        losses.fmcnet_loss(out, torch.tensor([0, 1]), torch.tensor([0, 2]),
                           SimpleNamespace(sfd=False, fmc=False, fusion="none"))


def _model_output(seed: int) -> dict[str, torch.Tensor]:
    """A hand-made FMCNet output dict for a batch of 4 (no model needed)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    out = {k: r(4, 6) for k in ("shared_v", "shared_i", "specific_v", "specific_i",
                                "generated_v", "generated_i")}
    out.update({k: r(4, 3) for k in ("logits_shared_v", "logits_shared_i", "logits_specific_v",
                                      "logits_specific_i", "logits_generated_v",
                                      "logits_generated_i", "logits_fused_v", "logits_fused_i")})
    out.update(disc_fake_v=r(4), disc_fake_i=r(4), fused_v=r(4, 12), fused_i=r(4, 12))
    return out


def test_fmcnet_loss_composes_the_active_terms():
    """L = L_SFD + L_FMC + L_SFF on a hand-made output dict (no model needed)."""
    y = torch.tensor([0, 0, 2, 2])
    out = _model_output(seed=5)
    full = SimpleNamespace(sfd=True, fmc=True, fusion="sff", fmc_weight=0.5,
                           center_loss_space="raw", fc_loss_space="raw")
    total, terms = losses.fmcnet_loss(out, y, y, full)
    hinges = {"hinge/shs", "hinge/sps", "hinge/dc", "hinge/mc"}
    assert set(terms) == {"id", "shs", "sps", "dc", "gan_g", "ic", "fc", "mc", "fid",
                          "total"} | hinges
    assert all(0.0 <= float(terms[k]) <= 1.0 for k in hinges)
    want = (terms["id"] + terms["shs"] + 0.5 * terms["dc"] + 0.5 * terms["sps"]
            + 0.5 * (terms["gan_g"] + terms["ic"] + terms["fc"]) + terms["mc"] + terms["fid"])
    assert torch.allclose(total.float(), want) and torch.equal(terms["total"], total.float())
    want_fc = (losses.feature_consistency_loss(out["generated_i"], out["specific_i"], y)
               + losses.feature_consistency_loss(out["generated_v"], out["specific_v"], y))
    assert math.isclose(float(terms["fc"]), float(want_fc), rel_tol=1e-6)
    # Default (the paper profile's reading): centre losses on the raw features, L_FC on
    # unit vectors -- two separate settings.
    _, unit = losses.fmcnet_loss(out, y, y, SimpleNamespace(sfd=True, fmc=True, fusion="sff"))
    n = lambda k: F.normalize(out[k], dim=1)  # noqa: E731
    want_fc = (losses.feature_consistency_loss(n("generated_i"), n("specific_i"), y)
               + losses.feature_consistency_loss(n("generated_v"), n("specific_v"), y))
    assert math.isclose(float(unit["fc"]), float(want_fc), rel_tol=1e-6)
    assert not math.isclose(float(unit["fc"]), float(terms["fc"]), rel_tol=1e-3)
    for k in ("shs", "sps", "dc", "mc"):
        assert torch.equal(unit[k], terms[k]), k
    assert torch.equal(unit["id"], terms["id"])  # classifier logits are untouched
    _, terms = losses.fmcnet_loss(out, y, y, SimpleNamespace(sfd=True, fmc=True, fusion="concat",
                                                             gan=False, dc=False))
    assert set(terms) == {"id", "shs", "sps", "ic", "fc", "total", "hinge/shs", "hinge/sps"}
    base = SimpleNamespace(sfd=False, fmc=False, fusion="none")
    total, terms = losses.fmcnet_loss(out, y, y, base)
    assert set(terms) == {"id", "total"}
    want = F.cross_entropy(out["logits_shared_v"], y) + F.cross_entropy(out["logits_shared_i"], y)
    assert torch.allclose(total, want)


def test_align_weight_scales_the_centre_and_alignment_terms_only():
    """`id_warmup_epochs`: at align_weight 0 the total is the identity losses alone
    (L_id, L_IC, the fused ID loss); the reported terms stay the unweighted values."""
    y = torch.tensor([0, 0, 2, 2])
    out = _model_output(seed=7)
    cfg = SimpleNamespace(sfd=True, fmc=True, fusion="sff", center_loss_space="raw")
    full, terms = losses.fmcnet_loss(out, y, y, cfg)
    off, off_terms = losses.fmcnet_loss(out, y, y, cfg, align_weight=0.0)
    half, _ = losses.fmcnet_loss(out, y, y, cfg, align_weight=0.5)
    identity = terms["id"] + terms["ic"] + terms["fid"]
    assert torch.allclose(off.float(), identity)
    assert torch.allclose(half.float(), (full.float() + identity) / 2)
    for k in ("shs", "sps", "dc", "gan_g", "fc", "mc"):
        assert torch.equal(off_terms[k], terms[k]), k
    assert float(full) > float(half) > float(off)  # the scaled terms are not all zero
    assert torch.equal(losses.fmcnet_loss(out, y, y, cfg, align_weight=1.0)[0], full)


def test_align_factor_ramps_over_the_identity_warm_up():
    from fmcnet.config import make_config
    from fmcnet.optim import align_factor

    assert align_factor(make_config("paper"), 0, 100) == 1.0  # the paper: no warm-up
    cfg = make_config("smoke", id_warmup_epochs=2)
    assert [align_factor(cfg, s, 10) for s in (0, 5, 10, 19, 20, 50)] == [
        0.0, 0.25, 0.5, 0.95, 1.0, 1.0]
    # `align_weight` is where the ramp ends, and the constant weight without one
    cfg = make_config("smoke", id_warmup_epochs=2, align_weight=0.1)
    assert [align_factor(cfg, s, 10) for s in (0, 10, 20, 50)] == pytest.approx(
        [0.0, 0.05, 0.1, 0.1])
    assert align_factor(make_config("smoke", align_weight=0.25), 0, 10) == 0.25


def test_fmcnet_loss_uses_the_configured_constants():
    """Non-default lambdas, margins and weights must reach the equations."""
    g = torch.Generator().manual_seed(7)
    y = torch.tensor([0, 0, 1, 1, 3, 3])
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    out = {k: r(6, 5) for k in ("shared_v", "shared_i", "specific_v", "specific_i",
                                "generated_v", "generated_i", "fused_v", "fused_i")}
    out.update({k: r(6, 4) for k in ("logits_shared_v", "logits_shared_i", "logits_specific_v",
                                     "logits_specific_i", "logits_generated_v",
                                     "logits_generated_i", "logits_fused_v", "logits_fused_i")})
    out.update(disc_fake_v=r(6), disc_fake_i=r(6))
    cfg = SimpleNamespace(sfd=True, fmc=True, fusion="sff", lambda1=0.3, lambda2=0.2,
                          rho1=0.4, rho2=1.5, rho3=1.2, alpha=3.0, rho4=0.9, beta=1.5,
                          fmc_weight=0.25, center_loss_space="scaled", center_loss_scale=2.5)
    total, terms = losses.fmcnet_loss(out, y, y, cfg)
    seen = losses.loss_inputs(out, cfg)
    assert torch.allclose(seen["shared_v"].norm(dim=1), torch.full((6,), 2.5, dtype=torch.float64))
    c = {k: losses.class_centers(seen[k], y) for k in seen if not k.startswith(("logits", "disc"))}
    assert math.isclose(float(terms["shs"]), float(losses.shared_separation_loss(
        c["shared_v"], c["shared_i"], 1.2, 3.0)), rel_tol=1e-6)
    assert math.isclose(float(terms["sps"]), float(losses.specific_separation_loss(
        c["specific_v"], c["specific_i"], 1.5)), rel_tol=1e-6)
    assert math.isclose(float(terms["dc"]), float(losses.decorrelation_loss(
        c["specific_v"], c["shared_v"], c["specific_i"], c["shared_i"], 0.4)), rel_tol=1e-6)
    assert math.isclose(float(terms["mc"]), float(losses.cross_modality_center_loss(
        c["fused_v"], c["fused_i"], 0.9, 1.5)), rel_tol=1e-6)
    want = (terms["id"] + terms["shs"] + 0.3 * terms["dc"] + 0.2 * terms["sps"]
            + 0.25 * (terms["gan_g"] + terms["ic"] + terms["fc"]) + terms["mc"] + terms["fid"])
    assert math.isclose(float(total), float(want), rel_tol=1e-5)


def _optimise_features_under_md(space: str, scale: float, steps: int = 200, *,
                                dc: bool = True) -> dict:
    """Non-negative features (GAP follows a ReLU) optimised alone under L_MD (Eq. 7)."""
    P, K, D = 4, 2, 32
    y = torch.arange(P).repeat_interleave(K)
    torch.manual_seed(0)
    theta = [torch.randn(P * K, D, requires_grad=True) for _ in range(4)]
    opt = torch.optim.Adam(theta, lr=1e-2)
    for _ in range(steps):
        c = [losses.class_centers(losses.to_feature_space(F.relu(t), space, scale), y)
             for t in theta]
        total, terms = losses.md_loss(c[0], c[1], c[2], c[3], dc=dc)
        opt.zero_grad()
        total.backward()
        opt.step()
    return {k: float(v.detach()) for k, v in terms.items()}


@pytest.mark.parametrize("profile", ["paper", "quick"])
def test_the_profiles_md_geometry_is_satisfiable(profile):
    """The MD terms each profile switches on can all hold in its centre-loss space:
    optimising the features alone drives every L_sps (and, when on, L_dc) hinge to 0
    (docs/method_readings.md)."""
    from fmcnet.config import make_config

    cfg = make_config(profile)
    terms = _optimise_features_under_md(cfg.center_loss_space, cfg.center_loss_scale, dc=cfg.dc)
    assert terms["hinge/sps"] == 0.0 and terms["sps"] == 0.0
    if cfg.dc:
        assert terms["hinge/dc"] == 0.0 and terms["dc"] == 0.0
    else:
        assert "dc" not in terms


def test_md_geometry_on_the_unit_sphere_is_not_satisfiable():
    """Unit-length non-negative centres are <= sqrt(2) apart: Eq. 5's spread >= 0.7 and
    Eq. 4's specific-to-shared >= spread + 1 cannot both hold, whatever the optimiser does."""
    terms = _optimise_features_under_md("l2", 1.0)
    assert terms["hinge/dc"] == 1.0 and terms["dc"] > 1.0

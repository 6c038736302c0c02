"""The readings of the paper that are configuration keys (docs/method_readings.md): each
switch changes what the equation computes, checked against a plain formula."""

import pytest
import torch
import torch.nn.functional as F

from fmcnet.config import make_config
from fmcnet.losses import feature_consistency_loss, fmcnet_loss, generator_adversarial_loss
from fmcnet.model import FMCNet

LABELS = torch.tensor([0, 0, 3, 3])


def tiny(**kw) -> FMCNet:
    torch.manual_seed(0)
    return FMCNet(4, backbone="resnet18", generator_hidden=32, **kw).eval()


@pytest.mark.parametrize("weighs", ["kind", "role"])
def test_omega_weighs_the_kind_or_the_role(weighs):
    """Eq. 15 under each reading: "kind" weighs (V-specific, I-specific), "role" weighs
    (the image's real F_sp, the generated F'_sp), for visible and infrared images."""
    model = tiny(omega_weighs=weighs)
    with torch.no_grad():
        model.sff.omega.copy_(torch.tensor([0.8, 0.3]))  # unequal: the readings differ
        x = torch.randn(3, 3, 32, 16)
        for modality in ("visible", "infrared"):
            parts = model.extract(x, modality)
            real, generated = parts["specific"], parts["generated"]
            if weighs == "role" or modality == "visible":
                expected = 0.8 * real + 0.3 * generated
            else:  # an infrared image's V-specific kind is the generated F'_sp,V
                expected = 0.8 * generated + 0.3 * real
            dim = model.sfd.dim
            torch.testing.assert_close(parts["fused"][:, dim:], expected)
    names = {"kind": {"v_specific", "i_specific"}, "role": {"real", "generated"}}[weighs]
    assert set(model.sff.omega_values()) == names


def test_generator_loss_forms_follow_eq_12():
    logits = torch.tensor([[-3.0], [0.0], [2.5]], requires_grad=True)
    d = torch.sigmoid(logits)
    torch.testing.assert_close(generator_adversarial_loss(logits, "nonsaturating"),
                               -torch.log(d).mean())
    minimax = generator_adversarial_loss(logits, "minimax")
    torch.testing.assert_close(minimax, torch.log(1 - d).mean())
    # minimax saturates where D rejects the generated feature: a far smaller gradient there
    (g_min,) = torch.autograd.grad(minimax, logits)
    (g_ns,) = torch.autograd.grad(generator_adversarial_loss(logits, "nonsaturating"), logits)
    assert abs(g_min[0].item()) < 0.1 * abs(g_ns[0].item())
    with pytest.raises(ValueError, match="nonsaturating"):
        generator_adversarial_loss(logits, "wasserstein")


@pytest.mark.parametrize("detach", [True, False])
def test_fc_centres_are_targets_or_pulled(detach):
    generated = torch.randn(4, 6, requires_grad=True)
    real = torch.randn(4, 6, requires_grad=True)
    loss = feature_consistency_loss(generated, real, LABELS, detach_centers=detach)
    centres = torch.stack([real[:2].mean(0), real[:2].mean(0), real[2:].mean(0), real[2:].mean(0)])
    torch.testing.assert_close(loss, (generated - centres).abs().sum(1).mean())
    loss.backward()
    assert generated.grad.abs().sum() > 0
    assert (real.grad is None) == detach


def test_the_reading_keys_reach_the_loss():
    """The configuration keys, not only the functions, switch the readings."""
    torch.manual_seed(0)
    base = make_config("smoke", backbone_width=16, generator_loss="nonsaturating")
    model = FMCNet.from_config(base, 4).train()
    out = model(torch.randn(4, 3, 32, 16), torch.randn(4, 3, 32, 16))
    terms = {}
    for name, cfg in (("base", base), ("minimax", make_config("smoke"))):  # minimax: paper's
        _, t = fmcnet_loss(out, LABELS, LABELS, cfg)
        terms[name] = t["gan_g"]
    logits = torch.cat([out["disc_fake_i"], out["disc_fake_v"]])
    assert terms["base"] > 0 > terms["minimax"]  # -log D > 0 > log(1 - D)
    assert F.softplus(logits).mean() > 0
    role = FMCNet.from_config(make_config("smoke", omega_weighs="role"), 4)
    assert role.sff.weighs == "role"

"""FMCNet: shapes, gradient routing of each loss, weights loading, ablation rows."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision

from fmcnet.config import make_config
from fmcnet.losses import (
    discriminator_loss,
    feature_consistency_loss,
    fmcnet_loss,
    generator_adversarial_loss,
    identity_consistency_loss,
)
from fmcnet.model import FMCNet, build_model
from fmcnet.model.backbone import check_pretrained
from fmcnet.utils import FMCNetError

ROWS = sorted((Path(__file__).resolve().parents[1] / "configs" / "ablations").glob("*.yaml"))
LABELS = torch.tensor([0, 0, 3, 3])


def tiny(**kw) -> FMCNet:
    torch.manual_seed(0)
    return FMCNet(4, backbone="resnet18", generator_hidden=32, **kw)


def images(n: int = 4, h: int = 32, w: int = 16) -> torch.Tensor:
    return torch.randn(n, 3, h, w)


def grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def reached(module: torch.nn.Module) -> bool:
    return any(g is not None and g.abs().sum() > 0 for g in grads(module))


def untouched(module: torch.nn.Module) -> bool:
    return all(g is None for g in grads(module))


@pytest.fixture(scope="module")
def full() -> FMCNet:
    return tiny()


def fresh_forward(model: FMCNet) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model.train()
    return model(images(), images())


def test_discriminator_step_reaches_only_the_discriminators(full):
    loss, terms = discriminator_loss(full, fresh_forward(full))
    loss.backward()
    assert reached(full.fmc.discriminator_v2i) and reached(full.fmc.discriminator_i2v)
    for part in (full.fmc.generator_v2i, full.fmc.generator_i2v, full.sfd, full.sff):
        assert untouched(part)
    assert set(terms) == {"gan_d", "disc_acc"} and 0.0 <= float(terms["disc_acc"]) <= 1.0


def test_generator_adversarial_loss_moves_g_not_d(full):
    """Choice: the model scores G's output with D's weights detached, so D's grads stay None."""
    out = fresh_forward(full)
    generator_adversarial_loss(out["disc_fake_i"]).backward()
    assert reached(full.fmc.generator_v2i) and reached(full.sfd.shared_encoder)
    for part in (full.fmc.discriminator_v2i, full.fmc.discriminator_i2v,
                 full.fmc.generator_i2v, full.sfd.specific_encoder_i):
        assert untouched(part)


def test_identity_consistency_reaches_generator_and_infrared_classifier(full):
    out = fresh_forward(full)
    identity_consistency_loss(out["logits_generated_i"], LABELS).backward()
    assert reached(full.fmc.generator_v2i) and reached(full.sfd.classifier_specific_i)
    # (E_I is reached: E_sh's BatchNorm normalises the V and I halves together.)
    for part in (full.sfd.classifier_specific_v, full.fmc.discriminator_v2i,
                 full.fmc.generator_i2v, full.sfd.specific_encoder_i):
        assert untouched(part)


@pytest.mark.parametrize("detached", [False, True])
def test_fmc_detach_input_keeps_the_compensation_losses_out_of_the_shared_encoder(detached):
    """`fmc_detach_input`: L_GAN, L_IC and L_FC train the generators either way; they reach
    E_sh and the fronts only when the generators read F_sh attached (the default)."""
    model = tiny(fmc_detach_input=detached)
    out = fresh_forward(model)
    loss = (generator_adversarial_loss(out["disc_fake_i"])
            + identity_consistency_loss(out["logits_generated_i"], LABELS)
            + feature_consistency_loss(out["generated_i"], out["specific_i"], LABELS))
    loss.backward()
    assert reached(model.fmc.generator_v2i)
    for part in (model.sfd.shared_encoder, model.sfd.encoder_v):
        assert untouched(part) if detached else reached(part)
    # the choice of each profile (docs/method_readings.md): `paper` reads the paper literally
    assert make_config("quick").fmc_detach_input and not make_config("paper").fmc_detach_input
    assert FMCNet.from_config(make_config("smoke", fmc_detach_input=True), 4).fmc_detach_input


def test_feature_consistency_targets_are_detached(full):
    out = fresh_forward(full)
    feature_consistency_loss(out["generated_i"], out["specific_i"], LABELS).backward()
    assert reached(full.fmc.generator_v2i) and reached(full.sfd.encoder_v)
    assert untouched(full.sfd.specific_encoder_i) and untouched(full.sfd.classifier_specific_i)


def test_parameter_groups_partition_the_model(full):
    groups = full.parameter_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(full.parameters()))
    assert {id(p) for p in groups["discriminator"]} == {
        id(p) for d in (full.fmc.discriminator_v2i, full.fmc.discriminator_i2v)
        for p in d.parameters()}
    new = {id(p) for p in groups["new"]}
    assert id(full.sff.omega) in new
    assert all(id(p) in new for p in full.fmc.generator_i2v.parameters())
    assert {id(p) for p in groups["pretrained"]} == {
        id(p) for m in full.sfd.backbone_modules() for p in m.parameters()}


@pytest.mark.parametrize("kw,dim,keys", [
    # ResNet-50 gives 4096 / 6144 / 2048 (2048 per branch); ResNet-18 512 per branch.
    ({}, 1024, {"shared", "specific", "generated", "fused"}),
    ({"fusion": "concat"}, 1536, {"shared", "specific", "generated", "fused"}),
    ({"fmc": False, "fusion": "none"}, 512, {"shared", "specific"}),
    ({"sfd": False, "fmc": False, "fusion": "none"}, 512, {"shared"}),
])
def test_embed_dimensions_per_ablation(kw, dim, keys):
    model = tiny(**kw).eval()
    with torch.no_grad():
        for modality in ("visible", "infrared"):
            for n in (1, 3):  # odd batches: the generators' BN uses running stats at eval
                assert model.embed(images(n), modality).shape == (n, dim) == (n, model.feature_dim)
        feats = model.extract(images(3), "infrared")
    assert set(feats) == keys
    if "fused" in keys and "fusion" not in kw:  # F_fp,I = Cat(F_sh,I, w1 F'_sp,V + w2 F_sp,I)
        w1, w2 = model.sff.omega
        want = torch.cat([feats["shared"], w1 * feats["generated"] + w2 * feats["specific"]], 1)
        assert torch.allclose(feats["fused"], want, atol=1e-6)
    if kw.get("fusion") == "concat":  # Cat(F_sh,I, V-specific slot, I-specific slot)
        want = torch.cat([feats["shared"], feats["generated"], feats["specific"]], 1)
        assert torch.equal(feats["fused"], want)


class PerfectGenerator(torch.nn.Module):
    """A stand-in G that returns exactly the real specific feature of the target modality."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target

    def forward(self, shared: torch.Tensor) -> torch.Tensor:
        return self.target


@pytest.mark.parametrize("fusion", ["sff", "concat"])
def test_a_perfect_generator_gives_equal_fused_features_across_modalities(fusion):
    """Like with like: one identity's visible and infrared images fuse to the same feature
    when G reproduces the missing modality's real specific feature (Eqs. 15-16, Table 2)."""
    model = tiny(fusion=fusion).eval()
    if fusion == "sff":
        with torch.no_grad():
            model.sff.omega.copy_(torch.tensor([0.8, 0.3]))  # unequal: kinds must not swap
    x_v, x_i = images(3), images(3)
    with torch.no_grad():
        real_v = model.extract(x_v, "visible")["specific"]  # F_sp,V of the visible images
        real_i = model.extract(x_i, "infrared")["specific"]  # F_sp,I of the infrared images
        model.fmc.generator_v2i = PerfectGenerator(real_i)  # F'_sp,I = F_sp,I
        model.fmc.generator_i2v = PerfectGenerator(real_v)  # F'_sp,V = F_sp,V
        fused_v = model.extract(x_v, "visible")["fused"]
        fused_i = model.extract(x_i, "infrared")["fused"]
    dim = model.sfd.dim
    # The shared halves differ (different images through E_V / E_I); the specific parts match.
    torch.testing.assert_close(fused_v[:, dim:], fused_i[:, dim:])
    assert not torch.allclose(real_v, real_i)  # the test would be void if they were equal


def test_omega_receives_gradient_from_the_fused_losses(full):
    out = fresh_forward(full)
    cfg = make_config("smoke")
    loss, _ = fmcnet_loss(out, LABELS, LABELS, cfg)
    loss.backward()
    grad = full.sff.omega.grad
    assert grad is not None and grad.shape == (2,) and torch.isfinite(grad).all()
    assert (grad.abs() > 0).all()  # both kinds' weights are in the graph
    assert set(full.sff.omega_values()) == {"v_specific", "i_specific"}


def test_bad_inputs_raise_value_errors(full):
    with pytest.raises(ValueError, match="modality"):
        full.embed(images(2), "thermal")
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        full(images(2), torch.randn(2, 1, 32, 16))
    with pytest.raises(ValueError, match="fusion"):
        FMCNet(4, backbone="resnet18", fmc=False, fusion="sff")


def test_last_stride_one_keeps_resolution():
    m1, m2 = tiny(fmc=False, fusion="none", last_stride=1), tiny(fmc=False, fusion="none", last_stride=2)
    maps = m1.sfd.encoder_v(images(2, 64, 32))
    size = lambda m: m.sfd.shared_encoder.layer4(m.sfd.shared_encoder.layer3(maps)).shape[-2:]  # noqa: E731
    assert tuple(size(m1)) == (4, 2) and tuple(size(m2)) == (2, 1)


def assert_all_parts_equal(model: FMCNet, state: dict[str, torch.Tensor]) -> None:
    for part in model.sfd.backbone_modules():
        for key, value in part.state_dict().items():
            assert torch.equal(value, state[key]), key


def test_pretrained_from_file_loads_every_resnet_part(tmp_path):
    reference = torchvision.models.resnet18(weights=None).state_dict()
    torch.save({"state_dict": reference}, tmp_path / "r18.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit file must not warn
        model = tiny(pretrained_path=str(tmp_path / "r18.pt"))
    assert model.pretrained_source == f"file:{tmp_path / 'r18.pt'}"
    assert_all_parts_equal(model, reference)
    assert tiny().pretrained_source == "random"

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pt")
    with pytest.raises(FMCNetError, match=r"r50\.pt.*(unexpected|shape)"):
        tiny(pretrained_path=str(tmp_path / "r50.pt"))
    with pytest.raises(FMCNetError, match="nothere.pt"):
        tiny(pretrained_path=str(tmp_path / "nothere.pt"))


class _NotAStateDict:
    """An object torch.load(weights_only=True) refuses to unpickle."""


def test_an_unusable_pretrained_file_is_explained_without_torch_advice(tmp_path):
    """torch's error for such a file advises weights_only=False, which would run code from
    the file: the message names the file and what it must hold instead."""
    torch.save({"conv1.weight": _NotAStateDict()}, tmp_path / "objects.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    torch.save([1, 2, 3], tmp_path / "list.pt")
    unpickling = "it is not a torch.save file of tensors only: corrupt, another format, or holding"
    for name, found in [("objects.pt", unpickling), ("garbage.pt", unpickling),
                        ("truncated.pt", "RuntimeError: PytorchStreamReader failed reading zip "
                                         "archive: failed finding central directory; it is "
                                         "truncated"),
                        ("list.pt", "does not hold a ResNet state dict")]:
        with pytest.raises(FMCNetError) as err:
            tiny(pretrained_path=str(tmp_path / name))
        message = str(err.value)
        assert f"pretrained_path='{tmp_path / name}'" in message and found in message, message
        assert "the file must hold a torchvision ResNet state dict as torch.save(" in message
        assert "weights_only" not in message and "\n" not in message, message


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """An empty torch hub cache and a loader that fails the test if it is ever called."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls: list[str] = []

    def refuse(url, *args, **kwargs):
        calls.append(url)  # recorded, since the loader may catch what we raise
        raise RuntimeError("offline")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)
    return tmp_path / "torch" / "hub" / "checkpoints", calls


def test_missing_imagenet_weights_stop_with_where_torchvision_looks(no_network):
    cache, calls = no_network
    with pytest.raises(FMCNetError) as err:
        tiny(pretrained=True)
    message = str(err.value)
    file_name = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    assert file_name in message and str(cache) in message  # the file and where it goes
    assert "pretrained=false" in message and "pretrained_path" in message
    assert calls == []  # no download was even attempted
    with pytest.raises(FMCNetError, match=file_name):
        check_pretrained("resnet18", pretrained=True)
    assert check_pretrained("resnet18", pretrained=False) == "random"


def test_imagenet_weights_read_from_the_hub_cache(no_network, monkeypatch):
    reference = torchvision.models.resnet18(weights=None).state_dict()
    cache = no_network[0]
    cache.mkdir(parents=True)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    torch.save(reference, cache / url.rsplit("/", 1)[1])
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url",
                        torch.hub.load_state_dict_from_url)  # the file exists: no download
    model = tiny(pretrained=True)
    assert model.pretrained_source == f"imagenet:{url.rsplit('/', 1)[1]}"
    assert check_pretrained("resnet18", pretrained=True) == model.pretrained_source
    assert_all_parts_equal(model, reference)


def test_bnneck_classifiers():
    model = tiny(bnneck=True)
    head = model.sfd.classifier_shared
    assert head.linear.bias is None and not head.bnneck.bias.requires_grad
    out = model(images(), images())
    loss, _ = fmcnet_loss(out, LABELS, LABELS, make_config("smoke", bnneck=True))
    loss.backward()
    assert reached(head.bnneck) and torch.isfinite(loss)


@pytest.mark.parametrize("row", ROWS, ids=[p.stem for p in ROWS])
def test_every_ablation_row_trains_one_step(row):
    cfg = make_config("smoke", yaml_files=[row])
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=4).train()
    groups = model.parameter_groups()
    opt = torch.optim.SGD(groups["pretrained"] + groups["new"], lr=0.01, momentum=0.9)
    before = [p.detach().clone() for p in groups["new"]]
    out = model(images(4, cfg.height, cfg.width), images(4, cfg.height, cfg.width))
    loss, terms = fmcnet_loss(out, LABELS, LABELS, cfg)
    assert torch.isfinite(loss) and float(terms["total"]) > 0
    loss.backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, groups["new"]))
    expected = {"fused_v"} if cfg.fusion != "none" else set()
    assert expected <= set(out) and (("generated_i" in out) == cfg.fmc)
    if cfg.fmc and cfg.gan:
        d_loss, _ = discriminator_loss(model, out)
        assert torch.isfinite(d_loss)


@pytest.mark.slow
def test_resnet50_full_model_forward_backward_at_paper_size():
    torch.manual_seed(0)
    model = FMCNet(4, backbone="resnet50").train()
    out = model(images(2, 288, 144), images(2, 288, 144))
    assert out["shared_v"].shape == (2, 2048) and out["fused_v"].shape == (2, 4096)
    assert out["logits_fused_i"].shape == (2, 4) and model.feature_dim == 4096
    labels = torch.tensor([0, 1])
    loss, _ = fmcnet_loss(out, labels, labels, make_config("paper"))
    loss.backward()
    trained = model.parameter_groups()["pretrained"] + model.parameter_groups()["new"]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained
               if p.requires_grad)


def test_backbone_width_scales_every_stage_and_the_features():
    from fmcnet.model.backbone import feature_dim, narrow_resnet

    standard = narrow_resnet("resnet18", 64)
    reference = torchvision.models.resnet18(weights=None)
    assert {k: v.shape for k, v in standard.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}  # 64 is torchvision's network
    narrow = narrow_resnet("resnet18", 16)
    assert narrow.conv1.out_channels == 16
    assert [getattr(narrow, f"layer{i}")[-1].conv2.out_channels for i in range(1, 5)] == [
        16, 32, 64, 128]
    assert feature_dim("resnet18", 16) == 128 and feature_dim("resnet50", 32) == 1024
    torch.manual_seed(0)
    model = FMCNet(4, backbone="resnet18", backbone_width=16, generator_hidden=32).eval()
    assert model.sfd.dim == 128 and model.feature_dim == 256
    with torch.no_grad():
        out = model(images(), images())
        assert out["shared_v"].shape == (4, 128) and out["fused_v"].shape == (4, 256)
        assert model.embed(images(), "visible").shape == (4, 256)
    narrow_params = sum(p.numel() for p in model.parameters())
    full_params = sum(p.numel() for p in tiny().parameters())
    assert narrow_params < full_params / 10  # channels / 4 -> about 1/16 of the weights


def test_narrow_backbone_has_no_imagenet_weights_but_loads_its_own_file(tmp_path):
    from fmcnet.config import ConfigError
    from fmcnet.model.backbone import build_resnet, narrow_resnet

    with pytest.raises(ConfigError, match="backbone_width=16 has no ImageNet weights .*name a "
                       "state dict of this width with pretrained_path=FILE"):
        # quick's own file (the stand-in) is the only weights a width-16 network can load
        make_config("quick", backbone_width=16, pretrained=True, pretrained_path=None)
    with pytest.raises(ConfigError, match="multiple of 8"):
        make_config("quick", backbone_width=20)
    with pytest.raises(FMCNetError, match="needs backbone_width=64"):
        check_pretrained("resnet18", pretrained=True, width=16)
    torch.manual_seed(1)
    saved = narrow_resnet("resnet18", 16).state_dict()
    torch.save(saved, tmp_path / "narrow.pt")
    resnet, source = build_resnet("resnet18", pretrained_path=tmp_path / "narrow.pt", width=16)
    assert source.startswith("file:")
    assert all(torch.equal(resnet.state_dict()[k], v) for k, v in saved.items())


def test_pretrained_false_is_random_init_even_where_the_profile_names_a_file():
    """`quick` names the stand-in; pretrained=false must still start from random weights
    (the study's random-init rows), and the run's record must say so."""
    standin = make_config("quick")
    assert standin.weights_path == standin.pretrained_path is not None
    random_cfg = make_config("quick", pretrained=False)
    assert random_cfg.pretrained_path is not None and random_cfg.weights_path is None
    assert check_pretrained(random_cfg.backbone, pretrained=random_cfg.pretrained,
                            pretrained_path=random_cfg.weights_path,
                            width=random_cfg.backbone_width) == "random"
    loaded = FMCNet.from_config(standin, num_classes=8)
    fresh = FMCNet.from_config(random_cfg, num_classes=8)
    assert loaded.pretrained_source.startswith("file:") and fresh.pretrained_source == "random"
    from fmcnet.model.backbone import resolve_weights_path

    weights = torch.load(resolve_weights_path(standin.weights_path), weights_only=True)
    conv1 = next(k for k in weights if k.endswith("conv1.weight") and "layer" not in k)
    front = {k: v for k, v in fresh.state_dict().items() if k.endswith("conv1.weight")
             and "layer" not in k}
    assert front and not any(torch.equal(v, weights[conv1]) for v in front.values())

"""The ImageNet stand-in (fmcnet.pretrain): the recipe at smoke size, what it may see, and
the committed weights that `quick` starts from."""

import json

import numpy as np
import torch

from fmcnet.config import PROFILES, Config, make_config
from fmcnet.data.render import _identities, seed_streams
from fmcnet.model import FMCNet
from fmcnet.model.backbone import build_resnet, resolve_weights_path
from fmcnet.pretrain import (
    STANDIN_SEED,
    PretrainRecipe,
    colour_augment,
    file_sha256,
    population,
    pretrain,
)


def test_recipe_writes_weights_provenance_and_log(tmp_path):
    out = tmp_path / "standin.pt"
    record = pretrain(PretrainRecipe.smoke(), out, command="test", log=lambda _: None)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == record and saved["sha256"] == file_sha256(out)
    assert saved["recipe"]["identities"] == 12 and saved["command"] == "test"
    assert "held_out_top1" in out.with_suffix(".log").read_text()
    # its lock (fmcnet.run_lock.hold_file) went with it: the three files, nothing else
    assert sorted(p.name for p in tmp_path.iterdir()) == ["standin.json", "standin.log",
                                                          "standin.pt"]
    state = torch.load(out, weights_only=True)
    assert not any(k.startswith("fc.") for k in state)  # headless: the paper's loader's format
    # the weights go through pretrained_path, the code path of `paper`'s ImageNet weights
    cfg = make_config("smoke", backbone_width=16, pretrained=True, pretrained_path=str(out))
    model = FMCNet.from_config(cfg, 4)
    assert model.pretrained_source == f"file:{out}"
    for name in ("conv1.weight", "layer2.0.conv1.weight"):
        torch.testing.assert_close(model.sfd.encoder_v.state_dict()[name], state[name])
    torch.testing.assert_close(model.sfd.shared_encoder.state_dict()["layer4.0.conv1.weight"],
                               state["layer4.0.conv1.weight"])


def test_recipe_learns_its_population(tmp_path):
    """Far above chance on held-out images of the population (8 identities: chance 12.5 %)."""
    recipe = PretrainRecipe(identities=8, images_per_camera=4, held_out_per_identity=2,
                            height=32, width=16, epochs=25, batch_size=16, lr=0.05, threads=1,
                            colour_jitter=0.0, grayscale_prob=0.0)
    record = pretrain(recipe, tmp_path / "w.pt", log=lambda _: None)
    assert record["held_out_top1"] >= 50.0


def test_the_population_is_not_the_vi_set():
    """Another generator seed: no identity and no image of the built-in set (seed 0)."""
    seeds = {Config().synthetic_seed} | {p.get("synthetic_seed", 0) for p in PROFILES.values()}
    assert STANDIN_SEED not in seeds
    n = 50
    ours = _identities(np.random.default_rng(seed_streams(STANDIN_SEED)[0]),
                       n, 0.2, 0.25, 0.5)
    theirs = _identities(np.random.default_rng(seed_streams(0)[0]),
                         n, 0.2, 0.25, 0.5)
    shape = np.stack([ours[k] for k in ("height", "head", "torso", "shoulder")], 1)
    other = np.stack([theirs[k] for k in ("height", "head", "torso", "shoulder")], 1)
    assert np.abs(shape[:, None] - other[None]).sum(-1).min() > 1e-6
    images, labels, cams = population(PretrainRecipe(identities=3, images_per_camera=1))
    assert set(cams.tolist()) <= {1, 2, 4, 5}  # visible cameras only: no infrared image
    assert len(images) == 12 and labels.max() == 2


def test_colour_augmentation_keeps_shape_and_greys():
    x = torch.randint(0, 256, (64, 3, 8, 4), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = colour_augment(x, 0.0, 1.0, g)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert (out[:, 0] == out[:, 1]).all() and (out[:, 1] == out[:, 2]).all()  # all grey
    assert torch.equal(colour_augment(x, 0.0, 0.0, g), x)  # off: unchanged


def test_the_committed_stand_in_is_what_quick_loads():
    cfg = make_config("quick")
    assert cfg.pretrained and cfg.weights_path, "quick starts from the stand-in"
    path = resolve_weights_path(cfg.pretrained_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert file_sha256(path) == meta["sha256"]
    assert meta["recipe"]["backbone"] == cfg.backbone
    assert meta["recipe"]["backbone_width"] == cfg.backbone_width
    assert meta["recipe"]["seed"] != cfg.synthetic_seed and meta["commit"] and meta["command"]
    assert path.with_suffix(".log").exists()
    # through the loader `paper` uses for ImageNet files: it refuses missing, unexpected or
    # misshapen keys, and every tensor of the file arrives
    resnet, source = build_resnet(cfg.backbone, pretrained=True, pretrained_path=cfg.weights_path,
                                  width=cfg.backbone_width)
    assert source.startswith("file:")
    state, loaded = torch.load(path, weights_only=True), resnet.state_dict()
    assert state and all(torch.equal(loaded[k], v) for k, v in state.items())

"""The stand-in for ImageNet: general visual features for the narrow network, learnt on
visible images of another population.

The paper fine-tunes ResNet-50 from ImageNet weights; the `quick` profile's network
(ResNet-18 at a quarter of its channels) has no such weights. This recipe gives it what
ImageNet gives ResNet-50 -- a network that already sees -- under the same three limits:

* **visible images only**: ImageNet has no infrared, so the infrared branch starts from
  features that never saw a heat image;
* **another population**: people drawn by the synthetic renderer under another generator
  seed (`STANDIN_SEED`), so no identity, camera, background or garment rule of the
  built-in VI set (seed 0) and no image of its train / val / test splits is ever seen;
* **a generic pretext**: classify the population's identities (as ImageNet classifies
  objects). Nothing of FMCNet -- no modality, no centre or adversarial term -- is
  pretrained; the split into SFD's branches happens when `FMCNet` copies this network.

It plays no larger role: the fine-tuning set's identities, its cameras and its infrared
rendering stay unseen, as SYSU-MM01's are for ImageNet. docs/method_readings.md says what
the stand-in start changes.

`python -m fmcnet pretrain --out fmcnet/weights/standin_resnet18_w16.pt` (`make pretrain`)
writes the headless torchvision state dict (loaded by `pretrained_path`, the code path of
`paper`'s ImageNet weights) and beside it `<name>.json` (recipe, command, commit, SHA-256,
accuracy, time) and `<name>.log` (the training log).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fmcnet.data.augment import TrainAugment, normalize
from fmcnet.data.synthetic import DEFAULT_IMAGE_SIZE, VISIBLE_CAMS, render_images
from fmcnet.model.backbone import narrow_resnet, set_last_stride
from fmcnet.run_lock import hold_file
from fmcnet.utils import FMCNetError, atomic_torch_save, atomic_write_json, git_commit

# The generator seed of the stand-in population. The built-in VI set and every set the
# study draws use seed 0 (`Config.synthetic_seed`); a test keeps them apart.
STANDIN_SEED = 7919
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS


@dataclass
class PretrainRecipe:
    """Everything that determines the stand-in weights (recorded in `<name>.json`)."""

    backbone: str = "resnet18"
    backbone_width: int = 16
    last_stride: int = 1  # as FMCNet's tails use it
    identities: int = 2000
    seed: int = STANDIN_SEED
    images_per_camera: int = 6  # per (identity, visible camera)
    held_out_per_identity: int = 2  # images kept out of training to measure accuracy
    height: int = 64
    width: int = 32
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1  # SGD, Nesterov momentum 0.9, linear warm-up then cosine to 0
    warmup_epochs: int = 1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    pad: int = 4  # pad + random crop, flip and random erasing, as fine-tuning augments
    # Colour augmentation of the usual ImageNet-pretraining recipes (SimCLR / MoCo v2):
    # hue, saturation, brightness and contrast jitter of this strength, and grey images
    # with this probability. Without it the population's identities are told apart by
    # their dye alone; ImageNet's classes are not defined by colour.
    colour_jitter: float = 0.4
    grayscale_prob: float = 0.2
    threads: int = 2
    train_seed: int = 0

    @classmethod
    def smoke(cls) -> PretrainRecipe:
        """Seconds on a CPU: for tests."""
        return cls(identities=12, images_per_camera=2, held_out_per_identity=1, height=32,
                   width=16, epochs=2, batch_size=16, threads=1, pad=2)


def population(recipe: PretrainRecipe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stand-in population's visible images, uint8 [N, H, W, 3], their identity labels
    0..identities-1, and their camera (1, 2, 4 or 5).

    Rendered in memory at the synthetic set's on-disk size and LANCZOS-resized to the
    recipe's size, as `fmcnet.data.cache` resizes the VI set's files.
    """
    n, per_cam = recipe.identities, recipe.images_per_camera
    cams = np.tile(np.repeat(np.asarray(VISIBLE_CAMS), per_cam), n)
    ident = np.repeat(np.arange(n), len(VISIBLE_CAMS) * per_cam)
    pixels = render_images(cams, ident, identities=n, seed=recipe.seed,
                           image_size=DEFAULT_IMAGE_SIZE, workers=2)
    size = (recipe.width, recipe.height)
    if pixels.shape[1:3] != (recipe.height, recipe.width):
        pixels = np.stack([np.asarray(Image.fromarray(p).resize(size, _LANCZOS)) for p in pixels])
    return pixels, ident, cams


def held_out_split(labels: np.ndarray, per_identity: int, seed: int) -> np.ndarray:
    """A boolean mask of `per_identity` images of every identity kept out of training."""
    rng = np.random.default_rng([seed, 17])
    mask = np.zeros(len(labels), dtype=bool)
    for pid in np.unique(labels):
        rows = np.flatnonzero(labels == pid)
        mask[rng.choice(rows, size=min(per_identity, len(rows) - 1), replace=False)] = True
    return mask


class StandInNet(torch.nn.Module):
    """A torchvision ResNet at `backbone_width` with a classifier over the population."""

    def __init__(self, recipe: PretrainRecipe) -> None:
        super().__init__()
        self.resnet = narrow_resnet(recipe.backbone, recipe.backbone_width)
        set_last_stride(self.resnet.layer4, recipe.last_stride)
        dim = self.resnet.fc.in_features
        self.resnet.fc = torch.nn.Linear(dim, recipe.identities)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        x = r.layer4(r.layer3(r.layer2(r.layer1(x))))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet.fc(self.features(x))

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The headless torchvision state dict: what `pretrained_path` loads."""
        return {k: v.detach().clone() for k, v in self.resnet.state_dict().items()
                if not k.startswith("fc.")}


def colour_augment(x: torch.Tensor, strength: float, grayscale_prob: float,
                   generator: torch.Generator) -> torch.Tensor:
    """Per-sample colour jitter of uint8 NCHW images (hue rotation about the grey axis,
    saturation, brightness, contrast; each within `strength`) and grey images with
    `grayscale_prob`; uint8 out."""
    b = x.shape[0]
    f = x.float() / 255.0
    lum_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=generator).view(b, 1, 1, 1)

    if strength > 0:
        # hue: rotate the chroma plane of YIQ by up to +-strength * 180 degrees
        angle = (uniform(-1, 1) * strength * torch.pi).view(b)
        cos, sin = torch.cos(angle), torch.sin(angle)
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                               [0.211, -0.523, 0.312]])
        rot = torch.zeros(b, 3, 3)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        m = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # [b, 3, 3]
        f = torch.einsum("bij,bjhw->bihw", m, f)
        grey = (f * lum_w).sum(1, keepdim=True)
        f = grey + (f - grey) * uniform(1 - strength, 1 + strength)  # saturation
        f = f * uniform(1 - strength, 1 + strength)  # brightness
        mean = (f * lum_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        f = mean + (f - mean) * uniform(1 - strength, 1 + strength)  # contrast
    if grayscale_prob > 0:
        grey = (f * lum_w).sum(1, keepdim=True).expand_as(f)
        f = torch.where(torch.rand(b, generator=generator).view(b, 1, 1, 1) < grayscale_prob,
                        grey, f)
    return (f.clamp(0, 1) * 255).round().to(torch.uint8).contiguous(
        memory_format=torch.channels_last)


def _lr_at(recipe: PretrainRecipe, step: int, total: int, per_epoch: int) -> float:
    warm = recipe.warmup_epochs * per_epoch
    if step < warm:
        return recipe.lr * (step + 1) / warm
    return 0.5 * recipe.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@torch.no_grad()
def accuracy(model: StandInNet, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 256) -> float:
    """Top-1 accuracy (percent) on `images`."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        logits = model(normalize(x.permute(0, 3, 1, 2)))
        correct += int((logits.argmax(1) == torch.from_numpy(labels[start:start + batch_size]))
                       .sum())
    model.train()
    return 100.0 * correct / max(1, len(images))


def pretrain(recipe: PretrainRecipe, out: str | Path, *, command: str = "",
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the stand-in network and write `out` (state dict), `.json` and `.log`.

    Returns the provenance record written to `<out>.json`.
    """
    out = Path(out)
    if out.suffix != ".pt":
        raise FMCNetError(f"--out {out} must name a .pt file (the state dict); its .json and "
                          ".log are written beside it")
    # one writer of out, its .json and its .log: a second pretrain into it is refused
    with hold_file(out, "pretrain"):
        return _pretrain(recipe, out, command, log)


def _pretrain(recipe: PretrainRecipe, out: Path, command: str,
              log: Callable[[str], None] | None) -> dict[str, Any]:
    """`pretrain()` once it holds `out`'s lock."""
    lines: list[str] = []

    def say(msg: str) -> None:
        lines.append(msg)
        (log or print)(msg)

    t0 = time.perf_counter()
    torch.manual_seed(recipe.train_seed)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    images, labels, _ = population(recipe)
    test = held_out_split(labels, recipe.held_out_per_identity, recipe.train_seed)
    train_x, train_y = images[~test], labels[~test]
    say(f"stand-in population: {recipe.identities} identities, generator seed {recipe.seed}, "
        f"{len(images)} visible images at {recipe.height}x{recipe.width} ({len(train_x)} train, "
        f"{int(test.sum())} held out); rendered in {time.perf_counter() - t0:.0f} s")

    model = StandInNet(recipe).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, momentum=0.9, nesterov=True)
    augment = TrainAugment(pad=recipe.pad, erase_prob=0.5)
    gen = torch.Generator().manual_seed(recipe.train_seed)
    rng = np.random.default_rng(recipe.train_seed)
    per_epoch = max(1, len(train_x) // recipe.batch_size)
    total = per_epoch * recipe.epochs
    data = torch.from_numpy(np.ascontiguousarray(train_x)).permute(0, 3, 1, 2)
    targets = torch.from_numpy(train_y.astype(np.int64))
    step = 0
    history = []
    for epoch in range(recipe.epochs):
        order = torch.from_numpy(rng.permutation(len(train_x))[: per_epoch * recipe.batch_size])
        t_epoch, loss_sum = time.perf_counter(), 0.0
        for idx in order.view(per_epoch, recipe.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(recipe, step, total, per_epoch)
            batch = data[idx].contiguous(memory_format=torch.channels_last)
            if recipe.colour_jitter or recipe.grayscale_prob:
                batch = colour_augment(batch, recipe.colour_jitter, recipe.grayscale_prob, gen)
            x = augment(batch, gen)
            loss = F.cross_entropy(model(x), targets[idx], label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            step += 1
        if not math.isfinite(loss_sum):
            raise FMCNetError(f"stand-in pretraining diverged at epoch {epoch + 1} (loss "
                              f"{loss_sum}); lower --lr")
        record = {"epoch": epoch + 1, "loss": loss_sum / per_epoch,
                  "seconds": time.perf_counter() - t_epoch}
        if epoch + 1 == recipe.epochs or (epoch + 1) % 5 == 0:
            record["held_out_top1"] = accuracy(model, images[test], labels[test])
        history.append(record)
        say(json.dumps(record))

    state = model.backbone_state()
    sha = atomic_torch_save(state, out)
    provenance = {
        "file": out.name,
        "sha256": sha,
        "recipe": dataclasses.asdict(recipe),
        "command": command,
        "commit": git_commit(),
        "torch": torch.__version__,
        "held_out_top1": history[-1].get("held_out_top1"),
        "chance_top1": 100.0 / recipe.identities,
        "seconds": round(time.perf_counter() - t0, 1),
        "what_it_saw": "visible images of the stand-in population only (generator seed "
                       f"{recipe.seed}); no image or identity of the built-in VI set",
    }
    say(f"wrote {out} (sha256 {sha}) in {provenance['seconds']:.0f} s; held-out top-1 "
        f"{provenance['held_out_top1']:.1f} % (chance {provenance['chance_top1']:.2f} %)")
    atomic_write_json(out.with_suffix(".json"), provenance)
    out.with_suffix(".log").write_text("\n".join(lines) + "\n")
    return provenance


@torch.no_grad()
def transfer_probe(state_path: str | Path, cfg: Any) -> dict[str, float]:
    """What the weights see of the VI set before any fine-tuning: infrared queries of the
    held-out validation ids against all their visible images, ranked by the backbone's GAP
    feature (R1 / mAP, percent; SYSU rules). Random weights give the floor."""
    from fmcnet.data import dataset_for_config
    from fmcnet.data.cache import load_images
    from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics
    from fmcnet.model.backbone import load_state_dict_file

    dataset = dataset_for_config(cfg)
    if dataset.val is None:
        raise FMCNetError("transfer_probe needs validate=true (the val ids held out)")
    recipe = PretrainRecipe(backbone=cfg.backbone, backbone_width=cfg.backbone_width,
                            last_stride=cfg.last_stride, identities=1)
    net = StandInNet(recipe)
    if state_path is not None:
        load_state_dict_file(net.resnet, state_path)
    net.eval()
    feats = {}
    for name, images in (("q", dataset.val.infrared), ("g", dataset.val.visible)):
        x = torch.from_numpy(np.array(load_images(images, (cfg.height, cfg.width),
                                                  progress=False)))
        feats[name] = torch.cat([net.features(normalize(b.permute(0, 3, 1, 2)))
                                 for b in x.split(256)])
    q, g = dataset.val.infrared, dataset.val.visible
    m = rank_metrics(pairwise_distance(feats["q"], feats["g"]), q.pids, g.pids, q.cams, g.cams,
                     protocol="sysu")
    return {"R1": 100.0 * float(m["cmc"][0]), "mAP": 100.0 * float(m["mAP"])}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main_log(msg: str) -> None:
    print(msg, flush=True, file=sys.stdout)

"""A training run's parts on given images, for timing and short runs.

`Trainer` builds them with `fmcnet.assembly.assemble`, the builder `train()` uses (no
copy of the assembly lives here), and feeds the step an endless stream of batches;
`run_steps` runs `train()`'s schedule over it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from fmcnet.assembly import TrainingImages, assemble
from fmcnet.batches import DeviceImages
from fmcnet.config import Config
from fmcnet.optim import lr_factor, set_lr
from fmcnet.utils import FMCNetError, seed_everything
from fmcnet_bench.plan import Plan
from fmcnet_bench.timing import sync


def endless(sampler) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A sampler's batches, epoch after epoch."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from sampler
        epoch += 1


def random_images(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """uint8 NHWC noise: pixel values do not change the speed of any step timed here."""
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


class Trainer:
    """Model, optimizers, `TrainStep`, sampler and `OnDeviceBatches` from
    `fmcnet.assembly.assemble`, on given images, with `seed` as the run's seed (the
    sampler's batches; the augmentation's stream is `seed` x 1000, as `train()` seeds it)."""

    def __init__(self, cfg: Config, images_v: DeviceImages, images_i: DeviceImages,
                 labels_v: np.ndarray, labels_i: np.ndarray, num_classes: int,
                 device: torch.device, *, compile_backend: str | None = None,
                 seed: int = 0) -> None:
        seed_everything(seed)  # equal seeds give equal initial weights
        cfg = dataclasses.replace(cfg, seed=seed)
        self.cfg, self.device = cfg, device
        self.parts = assemble(cfg, TrainingImages(images_v, images_i, labels_v, labels_i),
                              num_classes, device, compile_backend=compile_backend)
        self.model, self.step = self.parts.model, self.parts.step
        self.optimizer, self.disc_optimizer = self.parts.optimizer, self.parts.disc_optimizer
        self.sampler, self.batches = self.parts.sampler, self.parts.batches
        self.batches_iter = endless(self.sampler)
        self.images_per_step = 2 * cfg.batch_size

    def data(self):
        return self.batches(*next(self.batches_iter))

    def __call__(self, mark: Callable[[str], None] | None = None) -> dict[str, torch.Tensor]:
        return self.step(*self.data(), mark=mark)

    def timed(self, plan: Plan) -> tuple[float, int]:
        """(seconds per step, steps timed): a synchronised one-step probe sizes the block
        so that it lasts `plan.min_timed_s`; the block itself syncs only at its ends, so the
        host runs ahead of the GPU as in training."""
        sync(self.device)
        start = time.perf_counter()
        self()
        sync(self.device)
        probe = time.perf_counter() - start
        steps = int(min(plan.max_timed_steps,
                        max(1, math.ceil(plan.min_timed_s / max(probe, 1e-6)))))
        start = time.perf_counter()
        for _ in range(steps):
            self()
        sync(self.device)
        return (time.perf_counter() - start) / steps, steps


def step_images(plan: Plan, cfg: Config, device: torch.device, on_device: bool = True):
    """(DeviceImages V, DeviceImages I, labels V, labels I) of random pixels."""
    n = plan.step_identities * plan.step_per_id
    labels = np.repeat(np.arange(plan.step_identities), plan.step_per_id)
    size = (cfg.height, cfg.width)
    return (DeviceImages(random_images(n, size, 1), device, on_device),
            DeviceImages(random_images(n, size, 2), device, on_device), labels, labels.copy())


def run_steps(trainer: Trainer, steps: int, log_every: int) -> tuple[list[str], np.ndarray]:
    """Run `steps` steps with train()'s schedule (`lr_factor`, `set_lr`); returns the
    term names and a [steps, terms] array, synchronising once per `log_every` steps as
    train() does. Raises on the first non-finite term."""
    cfg = trainer.cfg
    per_epoch = len(trainer.sampler)
    names: list[str] | None = None
    pending: list[torch.Tensor] = []
    rows: list[np.ndarray] = []
    for step in range(steps):
        factor = lr_factor(cfg, step, per_epoch)
        set_lr(trainer.optimizer, cfg.lr, factor)
        set_lr(trainer.disc_optimizer, cfg.disc_lr, factor)
        terms = trainer()
        if names is None:
            names = list(terms)
        pending.append(torch.stack([terms[n].detach().float() for n in names]))
        if len(pending) >= log_every or step == steps - 1:
            block = torch.stack(pending).cpu().numpy()
            pending = []
            bad = ~np.isfinite(block)
            if bad.any():
                r, c = (int(i) for i in np.argwhere(bad)[0])
                at = step - len(block) + r + 2
                raise FMCNetError(f"loss term {names[c]!r} became {block[r, c]} at step {at}")
            rows.append(block)
    return names or [], np.concatenate(rows) if rows else np.zeros((0, 0))

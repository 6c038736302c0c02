"""The one builder of a training run's parts: model, optimizers, sampler, batches, step.

`assemble(cfg, images, num_classes, device)` builds them from a configuration and the
training images, as `train()` runs them; the GPU check and every benchmark build theirs
here too, so there is one place where the assembly lives. The pieces are built one by
one (`build_network`, `build_step`, `build_sampler`, `build_batches`) where a benchmark
swaps one of them (its own batch pipeline, say). Global seeding (`seed_everything`)
comes before: the model's initial weights draw from torch's global generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from fmcnet.batches import DeviceImages, OnDeviceBatches
from fmcnet.config import Config
from fmcnet.data.base import VIDataset
from fmcnet.data.sampler import CrossModalitySampler
from fmcnet.model import FMCNet
from fmcnet.optim import align_factor, build_optimizers, lr_factor, set_lr
from fmcnet.step import TrainStep


def set_backend_flags(device: torch.device, cpu_threads: int = 0) -> None:
    """Every training batch has the same shape: cuDNN times its convolution algorithms
    for it once and keeps the fastest (measured by `python -m fmcnet gpu-check`). On the
    CPU, `cpu_threads` > 0 sets torch's intra-op threads (the `cpu_threads` setting)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    elif cpu_threads:
        torch.set_num_threads(cpu_threads)


@dataclass
class TrainingImages:
    """Both modalities' training images (`DeviceImages`) and their labels (0..C-1)."""

    visible: DeviceImages
    infrared: DeviceImages
    labels_v: np.ndarray
    labels_i: np.ndarray

    @classmethod
    def load(cls, dataset: VIDataset, cfg: Config, device: torch.device, *,
             progress: bool) -> TrainingImages:
        """The data set's training images at the configured size (the pre-processing cache)."""
        from fmcnet.data.cache import load_images

        size = (cfg.height, cfg.width)
        train = dataset.train
        return cls(
            DeviceImages(load_images(train.visible, size, progress=progress), device,
                         cfg.data_on_device),
            DeviceImages(load_images(train.infrared, size, progress=progress), device,
                         cfg.data_on_device),
            train.visible.labels, train.infrared.labels,
        )


def build_network(cfg: Config, num_classes: int, device: torch.device) -> FMCNet:
    """FMCNet on `device`, in the memory layout its batches arrive in."""
    model = FMCNet.from_config(cfg, num_classes).to(device)
    # The cached images are NHWC, so batches arrive channels_last; the model follows
    # (faster on GPUs and, measured in bench/, on the CPU too).
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_step(cfg: Config, model: FMCNet, device: torch.device, *, world: int = 1,
               compile_backend: str | None = None) -> TrainStep:
    """`TrainStep` with both optimizers; under DDP (`world` > 1) the forward runs through
    `DistributedDataParallel`, with `compile` through `torch.compile`."""
    optimizer, disc_optimizer = build_optimizers(model, cfg)
    forward: torch.nn.Module = _data_parallel(model, cfg, device) if world > 1 else model
    if cfg.compile:
        forward = torch.compile(forward, backend=compile_backend or "inductor")
    return TrainStep(model, cfg, optimizer, disc_optimizer, device=device, world=world,
                     forward=forward)


def _data_parallel(model: FMCNet, cfg: Config, device: torch.device) -> torch.nn.Module:
    disc = model.parameter_groups()["discriminator"]
    disc_ids = {id(p) for p in disc}
    # D's loss is computed outside DDP's forward (on detached features), so DDP would
    # never reduce D's gradients: D is left out of DDP and averaged by hand instead.
    # DDP broadcasts rank 0's weights only for the parameters it manages, so D's are
    # broadcast here: with equal starts and averaged gradients the ranks stay equal.
    for p in disc:
        dist.broadcast(p.data, src=0)
    torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        model, [n for n, p in model.named_parameters() if id(p) in disc_ids]
    )
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=not (cfg.sfd and cfg.fmc),
    )


def build_sampler(cfg: Config, labels_v: np.ndarray, labels_i: np.ndarray, *, rank: int = 0,
                  world: int = 1) -> CrossModalitySampler:
    """P x K identities x images per modality, `steps_per_epoch` batches per epoch."""
    return CrossModalitySampler(
        labels_v, labels_i, cfg.num_identities, cfg.num_instances, seed=cfg.seed, rank=rank,
        world_size=world, batches_per_epoch=cfg.steps_per_epoch,
    )


def build_batches(cfg: Config, images: TrainingImages, device: torch.device, *,
                  rank: int = 0) -> OnDeviceBatches:
    """The augmented batches, with the augmentation's own random stream on `device`."""
    generator = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)
    return OnDeviceBatches(images.visible, images.infrared, images.labels_v, images.labels_i,
                           cfg, generator)


@dataclass
class Assembly:
    """A run's parts: `model` (the plain FMCNet), `step` (with both optimizers),
    `sampler` and `batches` (with the augmentation's generator)."""

    cfg: Config
    model: FMCNet
    step: TrainStep
    sampler: CrossModalitySampler
    batches: OnDeviceBatches

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.step.optimizer

    @property
    def disc_optimizer(self) -> torch.optim.Optimizer:
        return self.step.disc_optimizer

    @property
    def generator(self) -> torch.Generator:
        return self.batches.generator

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def set_schedule(self, global_step: int) -> None:
        """The learning rates (`lr_factor`) and the weight of the centre and alignment terms
        (`align_factor`) of step `global_step`."""
        cfg, spe = self.cfg, self.steps_per_epoch
        factor = lr_factor(cfg, global_step, spe)
        set_lr(self.optimizer, cfg.lr, factor)
        set_lr(self.disc_optimizer, cfg.disc_lr, factor)
        self.step.align_weight = align_factor(cfg, global_step, spe)


def assemble(cfg: Config, images: TrainingImages, num_classes: int, device: torch.device, *,
             rank: int = 0, world: int = 1, compile_backend: str | None = None) -> Assembly:
    """Every part of a training run, built from the configuration and the images."""
    model = build_network(cfg, num_classes, device)
    step = build_step(cfg, model, device, world=world, compile_backend=compile_backend)
    sampler = build_sampler(cfg, images.labels_v, images.labels_i, rank=rank, world=world)
    return Assembly(cfg, model, step, sampler, build_batches(cfg, images, device, rank=rank))

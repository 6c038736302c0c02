"""One training step (docs/method.md), written out.

Forward both halves -> L = L_SFD + L_FMC + L_SFF (generator side) and the
discriminators' loss on detached features -> one backward -> step the main optimizer
(encoders, classifiers, generators, omega) and the discriminators' own. `train()` and
every benchmark run this class; nothing else implements a step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.distributed as dist

from fmcnet.config import Config
from fmcnet.losses import discriminator_loss, fmcnet_loss
from fmcnet.model import FMCNet


class TrainStep:
    """One training step: forward both halves -> L = L_SFD + L_FMC + L_SFF and the
    discriminators' loss -> one backward -> both optimizers.

    The one source of the step: `train()` and every benchmark call it. `forward` is the
    module that runs the batch (the model, its DDP wrapper or a compiled one); `model`
    is the plain `FMCNet` underneath. `mark(phase)`, when given, is called after the
    "forward" (losses included), "backward" and "optimizer" phases (benchmarks time
    them). Returns the detached loss terms of the step, plus "disc_acc".
    """

    def __init__(self, model: FMCNet, cfg: Config, optimizer: torch.optim.Optimizer,
                 disc_optimizer: torch.optim.Optimizer, *, device: torch.device,
                 forward: torch.nn.Module | None = None, world: int = 1) -> None:
        self.model, self.cfg, self.world = model, cfg, world
        self.optimizer, self.disc_optimizer = optimizer, disc_optimizer
        self.forward = forward if forward is not None else model
        self.autocast_enabled = cfg.amp and (
            device.type == "cuda" or (device.type == "cpu" and cfg.cpu_amp))
        self.device = device
        disc_ids = {id(p) for p in model.parameter_groups()["discriminator"]}
        # Clipping bounds the network's update; the discriminators play their own game
        # with their own optimizer, so their gradients stay out of its norm.
        self.main_params = [p for p in model.parameters() if id(p) not in disc_ids]
        self.adversarial = cfg.fmc and cfg.gan
        # the weight of the centre and alignment terms (`align_factor`), set per step
        self.align_weight = 1.0

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_enabled:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, x_v: torch.Tensor, x_i: torch.Tensor, y_v: torch.Tensor,
                 y_i: torch.Tensor, mark: Callable[[str], None] | None = None
                 ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        with self.autocast():
            out = self.forward(x_v, x_i)
            loss, terms = fmcnet_loss(out, y_v, y_i, cfg, align_weight=self.align_weight)
            d_loss, d_terms = (
                discriminator_loss(self.model, out) if self.adversarial else (None, {})
            )
        if mark:
            mark("forward")
        self.optimizer.zero_grad(set_to_none=True)
        self.disc_optimizer.zero_grad(set_to_none=True)
        # One backward serves both players: the generator side sees D through detached
        # weights, and D's own loss sees detached features, so each optimizer receives
        # exactly the gradients of its own objective.
        (loss if d_loss is None else loss + d_loss).backward()
        if mark:
            mark("backward")
        if d_loss is not None and self.world > 1:
            _average_gradients(self.disc_optimizer, self.world)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.main_params, cfg.grad_clip)
        self.optimizer.step()
        if d_loss is not None:
            self.disc_optimizer.step()
        if mark:
            mark("optimizer")
        return {**terms, **d_terms}


def _average_gradients(optimizer: torch.optim.Optimizer, world: int) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world

"""The optimizers and their schedule (docs/method.md).

`build_optimizers` makes the network's optimizer and the discriminators' own;
`lr_factor` is the learning-rate schedule (linear warm-up, then steps down at the
milestones) and `align_factor` the weight of the centre and alignment terms, both as a
function of the step, so that a resumed run continues the same schedule; `set_lr` applies
a factor to an optimizer's groups.
"""

from __future__ import annotations

import torch

from fmcnet.config import Config
from fmcnet.model import FMCNet


def align_factor(cfg: Config, global_step: int, steps_per_epoch: int) -> float:
    """The weight of the centre and alignment terms at `global_step`: `align_weight` (1 in
    the paper), reached by a linear ramp from 0 over `id_warmup_epochs` (identity losses
    only at first)."""
    ramp = cfg.id_warmup_epochs * steps_per_epoch
    return cfg.align_weight * (1.0 if global_step >= ramp else global_step / ramp)


def lr_factor(cfg: Config, global_step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over `warmup_epochs`, then x`lr_gamma` at each milestone epoch."""
    epoch = global_step // steps_per_epoch
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if global_step < warmup_steps:
        return (global_step + 1) / warmup_steps
    return cfg.lr_gamma ** sum(epoch >= m for m in cfg.lr_milestones)


def build_optimizers(model: FMCNet, cfg: Config
                     ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """SGD (or Adam) for the network and for the discriminators (`optimizer`,
    `disc_optimizer`); pre-trained parts at 0.1x.

    The 0.1x multiplier only applies when ImageNet weights were actually loaded: on a
    randomly initialised backbone it would just slow training down.
    """
    groups = model.parameter_groups()
    mult = cfg.pretrained_lr_mult if model.pretrained_source != "random" else 1.0
    omega_ids = {id(p) for n, p in model.named_parameters() if "omega" in n}
    param_groups = [
        {"params": groups["pretrained"], "lr_mult": mult, "lr": cfg.lr * mult},
        {"params": [p for p in groups["new"] if id(p) not in omega_ids], "lr_mult": 1.0,
         "lr": cfg.lr},
    ]
    omegas = [p for p in groups["new"] if id(p) in omega_ids]
    if omegas:
        # The fusion weights (Eq. 15) see the summed gradient of every feature dimension;
        # at the base LR they swing sign within a few steps and the fused loss diverges.
        param_groups.append({"params": omegas, "lr_mult": cfg.omega_lr_mult,
                             "lr": cfg.lr * cfg.omega_lr_mult, "weight_decay": 0.0})
    if cfg.optimizer == "adam":
        main = torch.optim.Adam(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        main = torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    disc_params = groups["discriminator"] or [torch.nn.Parameter(torch.zeros(1))]
    disc_groups = [{"params": disc_params, "lr_mult": 1.0, "lr": cfg.disc_lr}]
    disc: torch.optim.Optimizer
    if cfg.disc_optimizer == "adam":
        disc = torch.optim.Adam(disc_groups, lr=cfg.disc_lr, betas=(0.5, 0.999),
                                weight_decay=cfg.weight_decay)
    else:
        disc = torch.optim.SGD(disc_groups, lr=cfg.disc_lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return main, disc


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_mult"] * factor

"""The values each configuration field accepts, and the check of a whole configuration.

Every numeric field of `fmcnet.config.Config` has a `Range` in `RANGES` (upper bounds say
why in `_WHY`), every enumerated one its choices in `CHOICES`; `validate` checks a
configuration against them and against the combinations that cannot run, before any data
is touched. A test fails on a field that has neither.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from fmcnet.utils import FMCNetError


class ConfigError(FMCNetError, ValueError):
    """A configuration key or value that does not fit `Config`."""


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts: lo..hi, each end open or closed (None: no end)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def __str__(self) -> str:
        if self.lo is None and self.hi is None:
            return "any finite number"
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return (f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}"
                f"{')' if self.hi_open else ']'}")


def _at_least(lo: float) -> Range:
    return Range(lo)


_POSITIVE = Range(0, lo_open=True)
_NON_NEGATIVE = Range(0)
_PROBABILITY = Range(0, 1)

# The network splits after layer2, where ResNet reaches stride 8: below 8 pixels the
# shared front hands the modality-specific stages a single position made mostly of zero
# padding.
MIN_IMAGE_SIDE = 8

# Upper bounds: what one machine can run, set well above every published VI-ReID setting
# so that none is refused; each has its reason in `_WHY`. Measured on the CPU (fp32, the
# tensors autograd keeps for the backward pass of the paper's network, ResNet-50 FMCNet,
# per training image): 104 MB at 288x144, 1.31 GB at 1024x512.
MAX_IMAGE_SIDE = 1024
# Images per modality in one batch (P x K): the paper's is 4 x 8 = 32.
MAX_BATCH_PER_MODALITY = 1024
# Evaluation trials: the protocols report the mean of 10.
MAX_TRIALS = 100

# Every numeric field and the values it accepts (tuple fields: each element). A test
# checks that no numeric field of `Config` is missing here.
RANGES: dict[str, Range] = {
    "seed": _NON_NEGATIVE,
    "trial": Range(1, 10),
    "height": Range(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE),
    "width": Range(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE),
    "synthetic_identities": Range(3, 10_000),  # one per split at least
    "synthetic_thermal_coupling": _PROBABILITY,
    "synthetic_cross_modal_predictability": _PROBABILITY,
    "synthetic_seed": _NON_NEGATIVE,
    "synthetic_images_per_camera": Range(1, 100),
    "num_identities": Range(1, MAX_BATCH_PER_MODALITY),
    "num_instances": Range(1, MAX_BATCH_PER_MODALITY),
    "pad": _NON_NEGATIVE,
    "flip_prob": _PROBABILITY,
    "erase_prob": _PROBABILITY,
    "channel_aug_prob": _PROBABILITY,
    "erase_area": Range(0, 1, lo_open=True),
    "erase_ratio": Range(0, 1, lo_open=True),
    "last_stride": Range(1, 2),
    "generator_hidden": Range(1, 16_384),
    "backbone_width": Range(8, 256),
    "omega_init": Range(),
    "lambda1": _NON_NEGATIVE,
    "lambda2": _NON_NEGATIVE,
    "rho1": _NON_NEGATIVE,
    "rho2": _NON_NEGATIVE,
    "rho3": _NON_NEGATIVE,
    "alpha": _NON_NEGATIVE,
    "rho4": _NON_NEGATIVE,
    "beta": _NON_NEGATIVE,
    "fmc_weight": _NON_NEGATIVE,
    "center_loss_scale": _POSITIVE,
    "fc_loss_scale": _POSITIVE,
    "epochs": _at_least(1),
    "steps_per_epoch": _at_least(1),
    "lr": _POSITIVE,
    "warmup_epochs": _NON_NEGATIVE,
    "id_warmup_epochs": _NON_NEGATIVE,
    "align_weight": _NON_NEGATIVE,
    "cpu_threads": _NON_NEGATIVE,
    "cpu_ranks": _at_least(1),
    "lr_milestones": _at_least(1),
    "lr_gamma": _POSITIVE,
    "momentum": Range(0, 1, hi_open=True),
    "weight_decay": _NON_NEGATIVE,
    "pretrained_lr_mult": _NON_NEGATIVE,
    "omega_lr_mult": _NON_NEGATIVE,
    "disc_lr": _NON_NEGATIVE,
    "grad_clip": _POSITIVE,
    "checkpoint_every": _at_least(1),
    "log_every": _at_least(1),
    "eval_batch_size": _at_least(1),
    "trials": Range(1, MAX_TRIALS),
    "max_rank": _at_least(1),
}

_IMAGE_SIDE_WHY = (
    f"at least {MIN_IMAGE_SIDE}: ResNet's stride at the layer2 split, below it the specific "
    f"stages see only padding; at most {MAX_IMAGE_SIDE}: the paper's network keeps 1.3 GB of "
    "activations per training image at 1024x512, measured in fp32, so its batch of 64 images "
    "would need 84 GB; the paper trains at 288x144"
)
_BATCH_WHY = (
    f"a step holds P x K images of each modality, at most {MAX_BATCH_PER_MODALITY}: 2048 images "
    "at the paper's 288x144 keep about 210 GB of activations, 104 MB each, measured; the paper "
    "uses 4 x 8 = 32"
)
_WHY = {
    "height": _IMAGE_SIDE_WHY,
    "width": _IMAGE_SIDE_WHY,
    "seed": "numpy's generators take non-negative seeds",
    "trials": ("each trial re-draws the galleries and scores every query again; the protocols "
               "report the mean of 10, as many as the owners' rand_perm_cam.mat holds, and "
               f"{MAX_TRIALS} already give a 3x smaller standard error"),
    "num_identities": _BATCH_WHY,
    "num_instances": _BATCH_WHY,
    "synthetic_identities": ("at least one identity per split; at most 10,000, 25x SYSU-MM01's "
                             "395 training ids: generation takes 0.1 s and 110 KB per identity "
                             "at 6 images per camera, measured on a 2-core CPU, so about 16 "
                             "minutes and 1.1 GB, again for each changed parameter"),
    "synthetic_images_per_camera": ("mean images per (identity, camera), at most 100: SYSU-MM01 "
                                    "has about 15, and generation time and disk grow with it, "
                                    "0.1 s and 110 KB per identity at 6, measured"),
    "generator_hidden": ("the width of the two generators' hidden layers, dim -> h -> h -> dim: "
                         "at 16,384 with ResNet-50's 2048-d features they hold 0.67 G "
                         "parameters, 2.7 GB in fp32 before gradients and momentum; the default "
                         "is 1024"),
    "backbone_width": ("channels of ResNet's stem: the parameters grow with its square, 84 M at "
                       "64 and 303 M at 128 for the paper's network, about 1.2 G at 256, whose "
                       "weights, gradients and momentum take about 14 GB"),
}

# Every enumerated string field and its choices (`device` is checked by its pattern).
CHOICES: dict[str, tuple[str, ...]] = {
    "profile": ("paper", "quick", "smoke"),  # fmcnet.config.PROFILES (a test keeps them equal)
    "dataset": ("synthetic", "heldout", "sysu", "regdb", "llcm"),
    "backbone": ("resnet18", "resnet34", "resnet50"),
    "fusion": ("sff", "concat", "none"),
    "omega_weighs": ("kind", "role"),
    "generator_loss": ("nonsaturating", "minimax"),
    "center_loss_space": ("raw", "l2", "scaled"),
    "fc_loss_space": ("raw", "l2", "scaled"),
    "optimizer": ("sgd", "adam"),
    "disc_optimizer": ("sgd", "adam"),
    "gallery_sampler": ("auto", "owners", "agw", "seeded"),
    "llcm_protocol": ("deen", "literal"),
}
# String fields that hold free text (paths) rather than a choice.
FREE_TEXT = ("data_root", "pretrained_path")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# Tuple fields whose length is fixed by their meaning.
TUPLE_LENGTHS = {"erase_area": 2, "omega_init": 2}
# The datasets each dataset-specific option applies to.
DATASET_SCOPE = {"validate": ("synthetic", "heldout", "sysu"), "trial": ("regdb",),
                 "gallery_sampler": ("synthetic", "heldout", "sysu"), "llcm_protocol": ("llcm",),
                 "synthetic_thermal_coupling": ("synthetic",),
                 "synthetic_cross_modal_predictability": ("synthetic",)}


def validate(cfg: Any) -> None:
    """Check every field against its type, range or choices (no data is touched).

    Raises `ConfigError` naming the key, the value found and the values accepted.
    """
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key} must be one of {allowed}, got {getattr(cfg, key)!r}")
    if not isinstance(cfg.device, str) or not DEVICE_PATTERN.fullmatch(cfg.device):
        raise ConfigError(
            f"device must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}"
        )
    for key in FREE_TEXT:
        value = getattr(cfg, key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key} expects a path, got {value!r}")
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    for key, default in defaults.items():
        value = getattr(cfg, key)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{key} expects true or false, got {value!r}")
    for key, allowed in RANGES.items():
        check_range(key, getattr(cfg, key), allowed, defaults[key])
    if cfg.num_identities * cfg.num_instances > MAX_BATCH_PER_MODALITY:
        raise ConfigError(
            f"num_identities x num_instances (P x K) must be at most {MAX_BATCH_PER_MODALITY} "
            f"({_BATCH_WHY}), got {cfg.num_identities} x {cfg.num_instances} = "
            f"{cfg.num_identities * cfg.num_instances}"
        )
    lo, hi = cfg.erase_area
    if lo > hi:
        raise ConfigError(f"erase_area must be [min, max] with min <= max, got {list(cfg.erase_area)}")
    if list(cfg.lr_milestones) != sorted(cfg.lr_milestones):
        raise ConfigError(
            f"lr_milestones must be increasing epochs, got {list(cfg.lr_milestones)}"
        )
    if cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0:
        raise ConfigError("nesterov=true needs momentum > 0; set nesterov=false or a momentum")
    if cfg.backbone_width % 8:
        raise ConfigError(
            f"backbone_width must be a multiple of 8, got {cfg.backbone_width}; use e.g. 16 "
            "(the quick profile), 32, or 64 (the standard network, the only one with "
            "ImageNet weights)"
        )
    if cfg.backbone_width != 64 and cfg.pretrained and cfg.pretrained_path is None:
        raise ConfigError(
            f"backbone_width={cfg.backbone_width} has no ImageNet weights (only 64 does); "
            "name a state dict of this width with pretrained_path=FILE (quick's width 16: "
            "fmcnet/weights/standin_resnet18_w16.pt), set backbone_width=64, or "
            "pretrained=false to train it from random init"
        )
    if cfg.fmc and not cfg.sfd:
        raise ConfigError("fmc=true needs sfd=true (the generators target the specific features)")
    if cfg.fusion != "none" and not (cfg.sfd and cfg.fmc):
        raise ConfigError(
            f"fusion={cfg.fusion!r} needs sfd=true and fmc=true (it combines F_sp with the "
            "generated F'_sp); use fusion=none for the Base and Base+SFD rows"
        )
    # Options that do not apply to the dataset are an error, not silently ignored.
    if cfg.validate and cfg.dataset not in DATASET_SCOPE["validate"]:
        raise ConfigError(
            f"validate=true holds out the SYSU-MM01 val ids; dataset={cfg.dataset} has none. "
            "Drop validate=true"
        )
    if cfg.trial != 1 and cfg.dataset not in DATASET_SCOPE["trial"]:
        raise ConfigError(
            f"trial={cfg.trial} selects a RegDB split; dataset={cfg.dataset} has no trials. "
            "Drop trial= (or --trial), or use --dataset regdb"
        )
    for key, what in (("gallery_sampler", "SYSU-MM01 galleries"),
                      ("llcm_protocol", "the LLCM protocol"),
                      ("synthetic_thermal_coupling", "the built-in set's modality gap"),
                      ("synthetic_cross_modal_predictability", "the built-in set's modality gap")):
        if getattr(cfg, key) != defaults[key] and cfg.dataset not in DATASET_SCOPE[key]:
            raise ConfigError(
                f"{key}={getattr(cfg, key)} selects {what}; dataset={cfg.dataset} does not "
                f"use it. Drop {key}= (or use dataset {' or '.join(DATASET_SCOPE[key])})"
            )
    if cfg.dataset in ("synthetic", "heldout") and cfg.data_root:
        raise ConfigError(
            f"data_root={cfg.data_root} is set but dataset={cfg.dataset} (that set is generated "
            "into the cache); pass --dataset sysu, regdb or llcm for your copy"
        )


def check_range(key: str, value: Any, allowed: Range, default: Any) -> None:
    """Check one value of field `key` (whose default is `default`) against `allowed`."""
    if value is None and default is None:  # optional fields: None means "off"
        return
    values = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and key in TUPLE_LENGTHS and len(value) != TUPLE_LENGTHS[key]:
        raise ConfigError(
            f"{key} expects {TUPLE_LENGTHS[key]} numbers, got {list(value)}; "
            f"default: {list(default)}"
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key} expects a number ({allowed}), got {value!r}")
        if v != v or v in (float("inf"), float("-inf")):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        if v not in allowed:
            shown = list(value) if isinstance(value, tuple) else value
            why = f" ({_WHY[key]})" if key in _WHY else ""
            raise ConfigError(f"{key} must be {allowed}{why}, got {shown!r}")

"""One configuration object for every entry point.

The CLI (`key=value`), YAML files (`configs/*.yaml`) and papermill parameters all
resolve to a `Config` through `make_config`. Three named profiles:

* ``paper`` -- the paper's protocol (FMCNET_SPEC.md section 6): ResNet-50, 288x144,
  P=4 x K=8 per modality, SGD, 80 epochs, train on train+val, keep the last epoch.
* ``quick`` -- the CPU demo: ResNet-18 (same split points), 96x48 images, 288 Adam steps,
  without the decorrelation term L_dc (Eq. 4): Table 3's "+ L_shs + L_sps" row.
* ``smoke`` -- tests and nbval: a handful of steps on tiny images.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fmcnet.utils import FMCNetError, atomic_write_text


@dataclass
class Config:
    # ---- run ---------------------------------------------------------------------
    profile: str = "paper"
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda when present, else cpu

    # ---- data --------------------------------------------------------------------
    dataset: str = "synthetic"  # synthetic | sysu | regdb | llcm
    data_root: str | None = None  # None -> the cached synthetic set
    trial: int = 1  # RegDB split 1..10
    height: int = 288
    width: int = 144
    synthetic_identities: int = 300
    synthetic_seed: int = 0
    synthetic_images_per_camera: int = 6  # mean images per (identity, camera)
    num_identities: int = 4  # P, identities per batch
    num_instances: int = 8  # K, images per identity *per modality*
    data_on_device: bool = True  # keep uint8 training images on the GPU when they fit
    # Model selection: the paper trains on train+val and keeps the last epoch. With
    # `validate=True` the SYSU-MM01 val ids are held out and select the checkpoint.
    validate: bool = False

    # ---- augmentation (batched tensor ops, FMCNET_SPEC section 6) ------------------
    pad: int = 10
    flip_prob: float = 0.5
    erase_prob: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_ratio: float = 0.3  # aspect ratios in [r, 1/r]

    # ---- model (issue 3) ---------------------------------------------------------
    backbone: str = "resnet50"  # resnet18 | resnet34 | resnet50
    pretrained: bool = False  # torchvision ImageNet weights from the user's cache
    pretrained_path: str | None = None  # or an explicit state-dict file
    require_pretrained: bool = False  # error instead of warning when weights are missing
    last_stride: int = 1
    bnneck: bool = False
    generator_hidden: int = 1024
    omega_init: tuple[float, float] = (1.0, 0.5)

    # ---- ablation switches (FMCNET_SPEC section 4) -------------------------------
    sfd: bool = True  # specific branches + MD loss; off = the paper's "Base"
    fmc: bool = True  # generators + discriminators
    fusion: str = "sff"  # sff | concat | none
    shs: bool = True  # MD terms, Eqs. 4-6
    sps: bool = True
    dc: bool = True
    gan: bool = True  # FMC terms, Eqs. 12-14
    ic: bool = True
    fc: bool = True

    # ---- loss constants (paper values) -------------------------------------------
    lambda1: float = 0.5
    lambda2: float = 0.5
    rho1: float = 1.0
    rho2: float = 0.7
    rho3: float = 0.7
    alpha: float = 2.0
    rho4: float = 0.7
    beta: float = 2.0
    fmc_weight: float = 1.0  # choice: the paper gives no weight for L_FMC
    # Choice: the centre losses (Eqs. 4-6, 17) and L_FC (Eq. 13) see L2-normalised
    # features. The paper is silent on feature scale, but its margins (rho = 0.7, 1.0)
    # only bite on a unit scale; on raw GAP features these sums reach 1e3 and diverge
    # from random init. "none" applies the equations to the raw features.
    loss_feature_norm: str = "l2"  # l2 | none

    # ---- optimisation (FMCNET_SPEC section 6) --------------------------------------
    epochs: int = 80
    # Choice for the CPU profiles only: without ImageNet weights, SGD needs far more
    # steps than a 5-minute demo has; the paper (and `paper`) use SGD.
    optimizer: str = "sgd"  # sgd | adam
    steps_per_epoch: int | None = None  # None -> max(#V, #I) / (P*K), the baselines' rule
    lr: float = 0.1
    warmup_epochs: int = 10
    lr_milestones: tuple[int, ...] = (20, 50)
    lr_gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    pretrained_lr_mult: float = 0.1  # pre-trained ResNet parts at 0.1x the base LR
    omega_lr_mult: float = 0.1  # choice: the SFF weights omega at 0.1x, no weight decay
    disc_lr: float = 0.01  # choice: discriminators' own SGD, same schedule shape
    grad_clip: float | None = None

    # ---- speed -------------------------------------------------------------------
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True
    compile: bool = False

    # ---- checkpoints and logging -------------------------------------------------
    checkpoint_every: int = 10  # epochs
    # A checkpoint holds model + optimizer state (~0.5 GB for ResNet-50): by default only
    # checkpoints/last.pt is kept; snapshots add checkpoints/epoch_NNN.pt at each save.
    keep_snapshots: bool = False
    log_every: int = 10  # steps
    progress: bool = True
    # TensorBoard event files of the metrics records in the run folder, when the
    # `tensorboard` package is installed (`tensorboard --logdir runs`)
    tensorboard: bool = True

    # ---- evaluation (issue 5) ----------------------------------------------------
    eval_batch_size: int = 256
    trials: int = 10
    tta: bool = False  # flip test-time augmentation
    rerank: bool = False  # k-reciprocal re-ranking
    max_rank: int = 20

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def batch_size(self) -> int:
        """Images per modality in one batch (P x K)."""
        return self.num_identities * self.num_instances


PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {
        "backbone": "resnet18",
        "height": 96,
        "width": 48,
        "synthetic_identities": 200,
        "num_identities": 8,
        "num_instances": 4,
        "epochs": 12,
        "steps_per_epoch": 24,
        "warmup_epochs": 1,
        "optimizer": "adam",
        # Measured on the synthetic set (all-search single-shot R1 of F_fp, 4 trials,
        # seeds 0 / 1): 2e-4 for 288 steps gave 54.0 / 40.3 %; 3.5e-4 gave 41.6 / 26.4 %;
        # 1e-3 for 240 steps 10.2 / 15.1 %.
        "lr": 2e-4,
        "lr_milestones": (9, 11),
        # Choice: no L_dc in the demo. From random init its spread term
        # (max_d |C^p_sp - C^d_sp|) pulls every identity's specific centre together and
        # the identity loss stays at chance: R1 8.7 % with it vs 44.1 % without (240
        # steps, seed 0; README, issue 4). `dc=true` turns it back on.
        "dc": False,
        "generator_hidden": 256,
        "checkpoint_every": 2,
        "trials": 10,
        "eval_batch_size": 128,
    },
    "smoke": {
        "backbone": "resnet18",
        "height": 32,
        "width": 16,
        "synthetic_identities": 24,
        "synthetic_images_per_camera": 3,
        "num_identities": 2,
        "num_instances": 2,
        "epochs": 2,
        "steps_per_epoch": 2,
        "warmup_epochs": 1,
        "lr_milestones": (1,),
        "generator_hidden": 64,
        "checkpoint_every": 1,
        "trials": 2,
        "eval_batch_size": 64,
        "progress": False,
    },
}


class ConfigError(FMCNetError, ValueError):
    """A configuration key or value that does not fit `Config`."""


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _valid_keys() -> str:
    return ", ".join(sorted(_FIELDS))


def _coerce(key: str, value: Any) -> Any:
    """Turn a YAML/CLI/papermill value into the type the field declares."""
    if key not in _FIELDS:
        raise ConfigError(f"unknown configuration key {key!r}; valid keys: {_valid_keys()}")
    default = getattr(Config(), key)
    if isinstance(value, str) and not isinstance(default, str):
        value = yaml.safe_load(value) if value.strip() else None
    if value is None:
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} expects true or false, got {value!r}")
        return value
    if isinstance(default, tuple):
        if isinstance(value, (int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} expects a list such as {list(default)}, got {value!r}")
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key} expects an integer, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        value = str(value)
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse command-line `key=value` items (values read as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r}; valid keys: {_valid_keys()}")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of key: value")
    return data


def make_config(
    profile: str | None = None,
    *,
    yaml_files: list[str | os.PathLike] = (),
    overrides: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Config:
    """Resolve a profile, YAML files (in order), then overrides into a `Config`.

    A YAML file may name its own `profile`; an explicit `profile` argument wins.
    """
    merged: dict[str, Any] = {}
    for f in yaml_files:
        merged.update(load_yaml(f))
    merged.update(overrides or {})
    merged.update(kwargs)
    name = profile or merged.pop("profile", None) or "paper"
    merged.pop("profile", None)
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    values = {k: _coerce(k, v) for k, v in PROFILES[name].items()}
    values.update({k: _coerce(k, v) for k, v in merged.items()})
    cfg = Config(profile=name, **values)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    choices = {
        "dataset": ("synthetic", "sysu", "regdb", "llcm"),
        "backbone": ("resnet18", "resnet34", "resnet50"),
        "fusion": ("sff", "concat", "none"),
        "loss_feature_norm": ("l2", "none"),
        "optimizer": ("sgd", "adam"),
    }
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key} must be one of {allowed}, got {getattr(cfg, key)!r}")
    if cfg.fmc and not cfg.sfd:
        raise ConfigError("fmc=true needs sfd=true (the generators target the specific features)")
    if cfg.fusion != "none" and not (cfg.sfd and cfg.fmc):
        raise ConfigError(
            f"fusion={cfg.fusion!r} needs sfd=true and fmc=true (it combines F_sp with the "
            "generated F'_sp); use fusion=none for the Base and Base+SFD rows"
        )
    if cfg.last_stride not in (1, 2):
        raise ConfigError(f"last_stride must be 1 or 2, got {cfg.last_stride}")
    if not 1 <= cfg.trial <= 10:
        raise ConfigError(f"trial must be in 1..10, got {cfg.trial}")


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.to_dict().items()}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a saved configuration exactly (no profile defaults re-applied)."""
    values = {k: _coerce(k, v) for k, v in data.items()}
    cfg = Config(**values)
    validate(cfg)
    return cfg

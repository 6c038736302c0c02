"""One configuration object for every entry point.

The CLI (`key=value`), YAML files (`configs/*.yaml`) and papermill parameters all
resolve to a `Config` through `make_config`. Three named profiles:

* ``paper`` -- the paper's protocol (docs/method.md, "The loss that is trained"): ResNet-50
  from ImageNet weights (a run stops before training when they are missing), 288x144,
  P=4 x K=8 per modality, SGD, 80 epochs, train on train+val, keep the last epoch; the
  paper's text wherever the study on the validation ids did not support another reading,
  and the one departure it did support (the centre losses on a sphere of radius 2), listed
  key by key in PROFILES["paper"].
* ``quick`` -- the CPU demo in the paper's regime: ResNet-18 at a quarter of its channels
  (same split points) fine-tuned from the ImageNet stand-in (fmcnet/weights/), 64x32
  images, 864 Adam steps, every module and term of the paper's full model (Table 2's last
  row) at the paper's weights (align_weight 1 and the centre losses' sphere decided on
  the validation ids); where the validation ids did not tell two readings apart, quick keeps
  the one the study ran (docs/method_readings.md).
* ``smoke`` -- tests and nbval: a handful of steps on tiny images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The values each field accepts live in config_values; fmcnet.config is where callers import
# them from (CHOICES, FREE_TEXT, RANGES, ConfigError, validate).
from fmcnet.config_values import (  # noqa: F401
    CHOICES,
    FREE_TEXT,
    RANGES,
    ConfigError,
    check_range,
    validate,
)
from fmcnet.utils import atomic_write_text


@dataclass
class Config:
    # ---- run ---------------------------------------------------------------------
    profile: str = "paper"
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda when present, else cpu

    # ---- data --------------------------------------------------------------------
    # synthetic (the built-in set) | heldout (the held-out renderer's set, fmcnet.data.heldout)
    # | sysu | regdb | llcm (your copy at data_root)
    dataset: str = "synthetic"
    data_root: str | None = None  # None -> the cached synthetic set
    trial: int = 1  # RegDB split 1..10
    height: int = 288
    width: int = 144
    synthetic_identities: int = 300
    synthetic_seed: int = 0
    synthetic_images_per_camera: int = 6  # mean images per (identity, camera)
    # The synthetic set's modality gap (fmcnet.data.synthetic.synthesize; these defaults
    # equal its THERMAL_COUPLING and CROSS_MODAL_PREDICTABILITY, a test checks it): how much
    # a garment's infrared level follows its visible luminance, and how much of its dye
    # and infrared level is a rule of its cut, which both modalities show.
    synthetic_thermal_coupling: float = 0.2
    synthetic_cross_modal_predictability: float = 0.5
    num_identities: int = 4  # P, identities per batch
    num_instances: int = 8  # K, images per identity *per modality*
    data_on_device: bool = True  # keep uint8 training images on the GPU when they fit
    # Model selection: the paper trains on train+val and keeps the last epoch. With
    # `validate=True` the SYSU-MM01 val ids are held out of training and evaluated as the
    # setting "val/all/single"; `keep_best_val` then keeps the checkpoint of the best
    # validation mAP (true) or the last epoch (false: what the study decides on).
    validate: bool = False
    keep_best_val: bool = True

    # ---- augmentation (batched tensor ops, docs/method.md) --------------------------
    pad: int = 10
    flip_prob: float = 0.5
    erase_prob: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_ratio: float = 0.3  # aspect ratios in [r, 1/r]
    # Not in the paper: CAJ's channel augmentation (Ye et al., ICCV 2021) for visible
    # images, the probability that one becomes a random channel (R, G, B or luminance).
    channel_aug_prob: float = 0.0

    # ---- model (issue 3) ---------------------------------------------------------
    backbone: str = "resnet50"  # resnet18 | resnet34 | resnet50
    # Channels of the stem and layer1 (64 = torchvision's network, the only width with
    # ImageNet weights); every stage scales with it. Not in the paper: `quick` trains a
    # narrower network from the ImageNet stand-in (fmcnet/weights/, docs/method_readings.md).
    backbone_width: int = 64
    # The paper starts every ResNet part from ImageNet weights. They are read from the
    # torch hub cache (never downloaded); when missing, the run stops before training and
    # says where torchvision looks. `pretrained=false` is random init on purpose (whatever
    # `pretrained_path` says), and the log and results.json say so.
    pretrained: bool = True
    pretrained_path: str | None = None  # or an explicit state-dict file
    last_stride: int = 1
    bnneck: bool = False
    generator_hidden: int = 1024
    # Reading (the paper does not say): whether L_FMC (L_GAN, L_IC, L_FC) reaches the
    # shared encoder through the generators' input F_sh. False = it does (the loss is
    # minimised over every parameter); True = the generators read F_sh detached: what it
    # did to the full model and its shared feature is measured in docs/method_readings.md
    # ("Does L_FMC reach the shared encoder?"). `quick` detaches; `paper` keeps False.
    fmc_detach_input: bool = False
    # SFF weights (w1, w2) of the V-specific and I-specific kinds (Eq. 15, read as in
    # docs/method_readings.md). Choice: equal, so F_fu starts as the mean of the two kinds.
    omega_init: tuple[float, float] = (0.5, 0.5)
    # Reading of Eq. 15's "weights for F_sp,V and F'_sp,I": "kind" (w1 the V-specific kind,
    # w2 the I-specific kind, real or generated, in both modalities) or "role" (w1 the
    # image's real specific feature, w2 the generated one; docs/method_readings.md).
    omega_weighs: str = "kind"

    # ---- ablation switches (docs/method.md, configs/ablations/) --------------------
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
    # Reading of Eq. 12 for G: "minimax" log(1 - D(G(.))) as the equation is written, or
    # "nonsaturating" -log D(G(.)) (GAN practice). Not told apart on the validation ids
    # (the study): `paper` takes the text, `quick` keeps the form it was studied with.
    generator_loss: str = "minimax"
    # Reading of Eq. 13: the real centres C_sp are fixed targets (true) or L_FC also pulls
    # the real specific features toward the generated ones (false).
    fc_detach_centers: bool = True
    # The feature space of the centre losses (Eqs. 4-6, 17): raw | l2 | scaled, where
    # scaled = center_loss_scale * unit length. The paper applies them to the raw GAP
    # features F of Eqs. 1-3 and mentions no normalisation. The study decided on the
    # validation ids: raw features 45.1 +- 2.9 % R1 against 55.3 +- 5.9 % on a sphere of
    # radius 2 (Welch p < 0.05), so `paper` departs from the text here: scaled, s = 2, where
    # the margins (0.7, 1) mean the same on every network's features (on raw ones they
    # depend on the feature norm). center_loss_space=raw is the literal reading. Not l2:
    # GAP after ReLU is non-negative, so unit-length centres are at most sqrt(2)
    # apart; Eq. 5 then needs a spread >= rho2 = 0.7 and Eq. 4 a specific-to-shared
    # distance >= 0.7 + rho1 = 1.7 > sqrt(2) -- never satisfiable. Measured optimising the
    # features alone under L_MD (P=4, K=8, D=2048, ReLU'd, 1500 Adam steps): on l2, L_dc
    # stays at 4.13 with every dc hinge active; raw, or scaled with s = 1.5 or 3, reach 0
    # on every dc and sps hinge.
    center_loss_space: str = "scaled"
    center_loss_scale: float = 2.0  # used with center_loss_space=scaled
    # L_FC (Eq. 13) has its own space. It sums |.| over all D dims, so on raw features
    # (norm ~30) it is ~1e3 and its gradient is large (one SGD step at LR 0.1 moved G's last
    # layer by ~75 %); on unit-length features it is bounded (<= 2 sqrt(D)). The study did
    # not tell them apart on the validation ids (under Adam and under the scaled SGD), so
    # `paper` reads Eq. 13 as written (raw) and `quick` keeps l2; watch loss/fc.
    fc_loss_space: str = "raw"
    fc_loss_scale: float = 1.0  # used with fc_loss_space=scaled

    # ---- optimisation (docs/method.md) ---------------------------------------------
    epochs: int = 80
    # The paper (and `paper`) use SGD. `quick` uses Adam: the paper's SGD with warm-up,
    # scaled to its 864 steps, reached val R1 6.3 % against Adam's 55.3 % (the study).
    optimizer: str = "sgd"  # sgd | adam
    steps_per_epoch: int | None = None  # None -> max(#V, #I) / (P*K), the baselines' rule
    lr: float = 0.1
    warmup_epochs: int = 10
    lr_milestones: tuple[int, ...] = (20, 50)
    # Not in the paper (which starts from ImageNet weights): the centre and alignment
    # terms (L_shs, L_sps, L_dc, L_MC, L_GAN, L_FC) ramp linearly from 0 to full weight
    # over the first `id_warmup_epochs`, while the identity losses (L_id, L_IC, the fused
    # ID loss) train at full weight from the start. From random init the centre pulls
    # otherwise act on features that carry no identity yet (docs/method_readings.md).
    id_warmup_epochs: int = 0
    # Not in the paper (1 = its loss): the weight of those same terms against the identity
    # losses. They are sums over the batch's identities with unit-length pull gradients,
    # the identity losses means over images; from random init at 1 they drive F_sh to a
    # constant and omega to 0 before any identity is learnt (docs/method_readings.md).
    align_weight: float = 1.0
    lr_gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    pretrained_lr_mult: float = 0.1  # pre-trained ResNet parts at 0.1x the base LR
    omega_lr_mult: float = 0.1  # choice: the SFF weights omega at 0.1x, no weight decay
    disc_lr: float = 0.01  # choice: discriminators' own optimizer, same schedule shape
    # Choice (the paper names no optimizer for D): SGD with the network's momentum and
    # weight decay, or Adam with the GAN-usual betas (0.5, 0.999). D is one linear layer
    # on raw features whose scale nothing bounds; under SGD at 0.01 its loss grows far
    # above 4 ln 2 in `quick` (to 126-182 from the stand-in), though retrieval on the val
    # ids was not worse (docs/method_readings.md, "Does the discriminator discriminate?").
    disc_optimizer: str = "sgd"  # sgd | adam
    grad_clip: float | None = None

    # ---- speed -------------------------------------------------------------------
    amp: bool = True  # bf16 autocast in training on CUDA (on the CPU only with cpu_amp)
    # Let `amp` (training) and `eval_amp` (evaluation) apply on the CPU too: only faster
    # on CPUs with native bf16 (AVX512-BF16 / AMX); elsewhere emulated and ~12x slower
    # (bench/demo_step.py, BENCHMARKS.md).
    cpu_amp: bool = False
    channels_last: bool = True
    compile: bool = False
    # torch's intra-op threads when training on the CPU (process-wide: evaluation in the
    # same process keeps them); 0 = torch's default (one per core). With the
    # OMP_WAIT_POLICY=PASSIVE that `python -m fmcnet` sets, a small network's many short
    # operations pay a thread wake-up each (bench/demo_step.py, BENCHMARKS.md).
    cpu_threads: int = 0
    # Data-parallel training processes on a CPU (torch.distributed on gloo, started by
    # `train()` itself; `fmcnet.parallel`): each draws its own P x K batch, so a step trains
    # on cpu_ranks x P x K images per modality. Ignored on a GPU (use torchrun there).
    cpu_ranks: int = 1

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
    # Which published protocol a number is comparable with (issue 13, docs/datasets.md).
    # SYSU-MM01 galleries: "owners" (exp/rand_perm_cam.mat, the official MATLAB protocol),
    # "agw" (random.seed(trial) + random.choice, what AGW-lineage papers report; single-
    # shot only), "seeded" (this repo's own draw), "auto" (owners when the .mat file is
    # present, else agw for single-shot and seeded for multi-shot).
    gallery_sampler: str = "auto"
    llcm_protocol: str = "deen"  # deen (as DEEN's code evaluates LLCM) | literal
    # bf16 autocast for test-time features on CUDA; off: fp32, as the reference code
    # evaluates (training's `amp` does not apply to reported numbers).
    eval_amp: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def weights_path(self) -> str | None:
        """The state-dict file the backbone starts from: `pretrained_path` when `pretrained`
        is true, else None -- `pretrained=false` is random init even where a profile names
        a file (`quick` names the stand-in)."""
        return self.pretrained_path if self.pretrained else None

    @property
    def batch_size(self) -> int:
        """Images per modality in one batch (P x K)."""
        return self.num_identities * self.num_instances


PROFILES: dict[str, dict[str, Any]] = {
    # The paper's protocol. Every value equals `Config`'s default (a test checks it); the
    # keys are spelt out where the paper is silent, or its text admits more than one
    # implementation, or this code departs from it: one line each, the evidence in
    # docs/method_readings.md. Everything else (ResNet-50 from ImageNet, 288x144, P=4 x K=8
    # per modality, SGD at 0.1, 80 epochs, x0.1 at 20 and 50, the loss constants, the
    # train + val ids with the last epoch kept) is the paper's text.
    "paper": {
        # Departures from the text.
        # The centre losses (Eqs. 4-6, 17) on a sphere of radius 2, not the raw GAP features:
        # decided on the validation ids (raw: -10.2 R1 points, Welch p < 0.05).
        "center_loss_space": "scaled",
        "center_loss_scale": 2.0,
        # bf16 autocast in training on CUDA (evaluation stays fp32, as the reference code).
        "amp": True,
        # The text, where the study did not support another reading (validation ids).
        "fc_loss_space": "raw",  # Eq. 13 on the raw features (l2: not told apart)
        "generator_loss": "minimax",  # Eq. 12's log(1 - D(G)) (-log D(G): not told apart)
        "fmc_detach_input": False,  # L_FMC reaches E_sh (detached: not told apart)
        "fc_detach_centers": True,  # L_FC pulls G to the real centres, "close to the centers"
        "align_weight": 1.0,  # the loss as written (0.03: -16.7 R1 points, p < 0.05)
        # Where the text admits two readings and the study did not tell them apart.
        "omega_weighs": "kind",  # w1, w2 weigh the V-specific and I-specific kinds
        # Where the paper is silent: the common baselines' choices, or ours.
        "last_stride": 1,  # ReID convention: 288x144 -> 18x9 maps
        "warmup_epochs": 10,  # linear warm-up
        "nesterov": True,
        "weight_decay": 5e-4,
        "pretrained_lr_mult": 0.1,  # ImageNet parts at 0.1x the base LR
        "omega_lr_mult": 0.1,  # the SFF weights at 0.1x, no weight decay
        "disc_optimizer": "sgd",  # D's own optimizer, the network's momentum and decay
        "disc_lr": 0.01,
        "fmc_weight": 1.0,  # the weight of L_FMC in the total
        "generator_hidden": 1024,  # G's hidden width
    },
    # One line of why per key; the measurements behind each are in docs/method_readings.md
    # ("The regime: fine-tuning a network that already sees", "The study's decisions on the
    # validation identities", and for the keys kept from random init "The `quick` profile
    # before issue 24, key by key").
    "quick": {
        # The ImageNet stand-in (fmcnet/pretrain.py, `make pretrain`), loaded as `paper` loads
        # ImageNet's weights; its parts train at the base LR (at 0.1x they lagged on val).
        "pretrained": True,
        "pretrained_path": "fmcnet/weights/standin_resnet18_w16.pt",
        "pretrained_lr_mult": 1.0,
        # A quarter of ResNet-18's channels at 64x32: ~19x faster than the full network at
        # 96x48 (the stand-in is trained at this width and size).
        "backbone": "resnet18",
        "backbone_width": 16,
        "height": 64,
        "width": 32,
        "synthetic_identities": 200,
        "num_identities": 8,
        "num_instances": 4,
        # 864 steps: `make demo` has to fit 3 minutes on a 2-core CPU (cost measured).
        "epochs": 36,
        "steps_per_epoch": 24,
        "warmup_epochs": 1,
        "optimizer": "adam",
        # The narrow network wants a larger step than the full-width one.
        "lr": 1e-3,
        "lr_milestones": (27, 33),  # the 1200-step schedule's (38, 46) of 50, scaled
        # align_weight: the paper's 1 (0.03 lost 16.7 val R1 points from the stand-in).
        # The centre losses on a sphere of radius 2, as `paper` (raw: -10.2 val R1 points).
        # Two readings the study did not tell apart on val: kept as the study ran them.
        "fc_loss_space": "l2",
        "generator_loss": "nonsaturating",
        # Under Adam omega moves by at most ~its LR per step: at 0.1x it stays at (0.5, 0.5);
        # at 10x it falls to ~0 (SFF off), and neither was better on val.
        "omega_lr_mult": 10.0,
        # One thread: this network's step is many short operations; two lose under load.
        "cpu_threads": 1,
        # The discriminators under Adam (betas 0.5, 0.999): under SGD D's loss diverges (val
        # R1 not worse, but D then judges nothing).
        "disc_optimizer": "adam",
        "disc_lr": 1e-3,
        # The generators read F_sh detached: L_FMC trains G, never E_sh (the literal reading,
        # `paper`'s, was not told apart on val; quick keeps what the study ran).
        "fmc_detach_input": True,
        "generator_hidden": 256,
        "checkpoint_every": 5,
        "trials": 10,
        "eval_batch_size": 128,
    },
    "smoke": {
        "pretrained": False,
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


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}

# Keys that existed once: a saved config or an old YAML file gets told what replaced them.
_REMOVED = {
    "loss_feature_norm": "it was split into center_loss_space (Eqs. 4-6, 17) and "
                         "fc_loss_space (Eq. 13), each raw | l2 | scaled",
    "require_pretrained": "pretrained=true now always stops when the weights are missing",
}


def _valid_keys() -> str:
    return ", ".join(sorted(_FIELDS))


def _coerce(key: str, value: Any) -> Any:
    """Turn a YAML/CLI/papermill value into the type the field declares."""
    if key in _REMOVED:
        raise ConfigError(
            f"configuration key {key!r} no longer exists: {_REMOVED[key]}. A checkpoint "
            "that has it was written by an older fmcnet (whose SFF weights differ too): "
            "train it again"
        )
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
    if isinstance(default, float) and isinstance(value, str):
        # YAML 1.1 reads an exponent without a dot ("5e-4", as in lr=5e-4) as a string.
        # Any other string is left for the range check, whose message names the range.
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key} expects an integer, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        value = str(value)
    return value


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping that names one key twice (YAML itself keeps the last silently)."""

    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        self.key, self.first_line, self.second_line = key, first_line, second_line
        super().__init__(problem=f"key {key!r} twice (lines {first_line} and {second_line})")

    def explain(self, where: str, consequence: str = "") -> str:
        """One sentence for the user: `where` names the file (or the text)."""
        return (f"{where} names {self.key!r} twice in one mapping (lines {self.first_line} and "
                f"{self.second_line}); YAML would keep the second without a word"
                f"{consequence}. Keep one of them")


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that raises `DuplicateKeyError` on a key named twice in a mapping
    (merge keys ``<<`` are left to YAML: a mapping may override what it merges)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
        return super().construct_mapping(node, deep=deep)


def load_unique_yaml(text: str) -> Any:
    """`yaml.safe_load` that refuses a key named twice in one mapping (`DuplicateKeyError`).

    Every YAML file a user writes is read with it: configuration files, sweep specs and
    papermill's `overrides` strings."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


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
    """A configuration file's mapping of key: value (a key named twice is refused)."""
    path = Path(path)
    try:
        data = load_unique_yaml(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory; expected a YAML "
                          "file of key: value lines") from None
    except PermissionError:
        raise ConfigError(f"configuration file {path} is not readable for you (permission "
                          "denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not text ({exc.reason} at byte "
                          f"{exc.start}); expected a YAML file of key: value lines") from None
    except DuplicateKeyError as exc:
        raise ConfigError(exc.explain(f"configuration file {path}")) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of key: value")
    return data


def as_overrides(value: Any, name: str = "overrides") -> dict[str, Any]:
    """A mapping of overrides; a string (papermill `-p overrides '{...}'`) is read as YAML."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = load_unique_yaml(value) if value.strip() else {}
        except DuplicateKeyError as exc:
            raise ConfigError(exc.explain(name)) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name} is not valid YAML/JSON ({exc}); expected a mapping "
                              "such as {\"epochs\": 10}") from None
        value = value or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of key: value such as {{\"epochs\": 10}}, "
                          f"got {type(value).__name__} {value!r}")
    return dict(value)


def make_config(
    profile: str | None = None,
    *,
    yaml_files: list[str | os.PathLike] = (),
    overrides: dict[str, Any] | None = None,
    profile_source: str = "the profile argument",
    **kwargs: Any,
) -> Config:
    """Resolve a profile, YAML files (in order), then overrides into a `Config`.

    The profile may be named by `profile`, a YAML file or the overrides; when it is named
    more than once, every name must agree (`profile_source` says where `profile` came
    from, e.g. "--profile"): a profile sets the defaults every other key starts from, so
    a second, different one cannot be applied after the first and is refused rather than
    dropped. None named: ``paper``.
    """
    named: list[tuple[str, Any]] = [(profile_source, profile)] if profile else []
    merged: dict[str, Any] = {}
    for f in yaml_files:
        data = load_yaml(f)
        if "profile" in data:
            named.append((f"configuration file {f}", data.pop("profile")))
        merged.update(data)
    extra = as_overrides(overrides)
    if "profile" in extra:
        source = "the key=value overrides" if profile_source == "--profile" else "the overrides"
        named.append((source, extra.pop("profile")))
    merged.update(extra)
    merged.update(kwargs)
    _check_profiles(named, cli=profile_source == "--profile")
    name = named[0][1] if named else "paper"
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    values = {k: _coerce(k, v) for k, v in PROFILES[name].items()}
    values.update({k: _coerce(k, v) for k, v in merged.items()})
    cfg = Config(profile=name, **values)
    validate(cfg)
    return cfg


def _check_profiles(named: list[tuple[str, Any]], *, cli: bool) -> None:
    """Every place that names a profile names the same one (`cli`: advise --profile)."""
    if not named:
        return
    first_source, first = named[0]
    for source, value in named[1:]:
        if value == first:
            continue
        spelled = (f"profile: {value}" if source.startswith("configuration file")
                   else f"profile={value}")
        advice = (f"choose it with --profile alone (--profile {value} or --profile {first}) "
                  f"and drop {spelled} from {source}" if cli else
                  f"name it once: drop {spelled} from {source}, or choose {value!r} in "
                  f"{first_source}")
        raise ConfigError(
            f"profile {value!r} from {source} conflicts with profile {first!r} from "
            f"{first_source}: a profile sets the defaults every other key starts from, so a "
            f"configuration has one; {advice}"
        )


def check_value(key: str, value: Any, *, flag: str | None = None) -> None:
    """Check one value of field `key` against its range (a command-line `flag` that sets it
    is named first), e.g. `synthesize --identities`."""
    try:
        check_range(key, value, RANGES[key], _FIELDS[key].default)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}" if flag else str(exc)) from None


def plain(value: Any) -> Any:
    """A configuration value as config.yaml and checkpoints store it (tuples as lists), so
    that a saved value and a live one compare equal."""
    return list(value) if isinstance(value, tuple) else value


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    data = {k: plain(v) for k, v in cfg.to_dict().items()}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a saved configuration exactly (no profile defaults re-applied)."""
    values = {k: _coerce(k, v) for k, v in data.items()}
    cfg = Config(**values)
    validate(cfg)
    return cfg

"""The training loop (FMCNET_SPEC section 6), written out.

One step: gather the P x K visible and infrared uint8 images on their device ->
augment there -> forward both halves -> L = L_SFD + L_FMC + L_SFF (generator side) and
the discriminators' loss on detached features -> one backward -> step the main
optimizer (encoders, classifiers, generators, omega) and the discriminators' own.

Everything a run writes lives in its folder: ``config.yaml``, ``metrics.jsonl``,
``checkpoints/``, ``results.json``, ``figures/`` and ``eval/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from fmcnet.config import Config, config_from_dict, save_config, validate
from fmcnet.data.augment import TrainAugment
from fmcnet.data.base import VIDataset
from fmcnet.data.sampler import CrossModalitySampler
from fmcnet.losses import discriminator_loss, fmcnet_loss
from fmcnet.model import FMCNet
from fmcnet.model.backbone import check_pretrained, weights_source
from fmcnet.tensorboard_log import TensorBoardLog
from fmcnet.utils import (
    FMCNetError,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    git_commit,
    pick_device,
    remove_orphans,
    seed_everything,
)

# Configuration keys that change the network's shape or the meaning of its weights:
# a checkpoint must agree on all of them to be evaluated.
MODEL_KEYS = (
    "backbone", "backbone_width", "last_stride", "bnneck", "generator_hidden", "sfd", "fmc",
    "fusion", "height", "width",
)
# The keys a resumed run may change: every other `Config` field (loss switches and
# constants, optimizer, schedule, augmentation, data, model, seed, ...) must match the
# checkpoint, so a key added later is covered without being listed anywhere. Why each
# is safe (docs/reliability.md):
RESUME_SAFE_KEYS = {
    "epochs": "the end of the run; the schedule of the steps already taken is unchanged "
              "(it may not fall below the epochs already completed)",
    "device": "where the same computation runs",
    "compile": "speed only",
    "cpu_threads": "speed only",
    "channels_last": "memory layout only",
    "data_on_device": "where the training images are kept",
    "data_root": "the same data moved (the training identities and counts are still checked)",
    "progress": "output only",
    "tensorboard": "output only",
    "log_every": "output only",
    "checkpoint_every": "how often the state is saved",
    "keep_snapshots": "which checkpoints are kept",
    "eval_batch_size": "evaluation only",
    "trials": "evaluation only",
    "tta": "evaluation only",
    "rerank": "evaluation only",
    "max_rank": "evaluation only",
    "eval_amp": "evaluation only",
    "gallery_sampler": "evaluation only",
    "llcm_protocol": "evaluation only",
}


def resume_keys() -> tuple[str, ...]:
    """Every configuration key that must match the checkpoint for `--resume`."""
    return tuple(f.name for f in dataclasses.fields(Config) if f.name not in RESUME_SAFE_KEYS)


# What makes a folder hold a run: training refuses to start over any of these.
RUN_MARKERS = ("config.yaml", "metrics.jsonl", "results.json", "checkpoints")
CHECKPOINT_FORMAT = 2


class CheckpointMismatch(FMCNetError):
    """A checkpoint that does not fit the model, dataset or run it is loaded into."""


class NonFiniteLoss(FMCNetError):
    """A NaN or infinite loss term; the run stops and keeps its last good checkpoint."""


# ---------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------


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


def set_backend_flags(device: torch.device, cpu_threads: int = 0) -> None:
    """Every training batch has the same shape: cuDNN times its convolution algorithms
    for it once and keeps the fastest (measured by `python -m fmcnet gpu-check`). On the
    CPU, `cpu_threads` > 0 sets torch's intra-op threads (the `cpu_threads` setting)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    elif cpu_threads:
        torch.set_num_threads(cpu_threads)


# ---------------------------------------------------------------------------------------
# Training images on the device
# ---------------------------------------------------------------------------------------


class DeviceImages:
    """A uint8 NHWC image array kept where batches are gathered fastest.

    On a GPU the whole array lives in device memory when it fits (SYSU-MM01 at 288x144
    is ~4.3 GB); otherwise in pinned host memory with asynchronous copies. On the CPU
    the memory-mapped cache is used as it is.
    """

    def __init__(self, array: np.ndarray, device: torch.device, on_device: bool = True):
        self.device = device
        host = torch.from_numpy(np.array(array, copy=True))  # the cache is a read-only memmap
        self.location = "host"
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if on_device and host.numel() < 0.5 * free:
                self.data = host.to(device)
                self.location = "device"
            else:
                self.data = host.pin_memory()
                self.location = "pinned"
        else:
            self.data = host

    def __len__(self) -> int:
        return self.data.shape[0]

    def batch(self, index: np.ndarray) -> torch.Tensor:
        """uint8 NCHW (channels_last memory) on the training device."""
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64))
        if self.location == "device":
            x = self.data[idx.to(self.device, non_blocking=True)]
        else:
            x = self.data[idx]
            if self.device.type == "cuda":
                x = x.pin_memory().to(self.device, non_blocking=True)
        return x.permute(0, 3, 1, 2)


class OnDeviceBatches:
    """Turns a sampler's index arrays into an augmented training batch on the device.

    Gathers the P x K uint8 images of each modality where they live (`DeviceImages`),
    augments the whole batch there (`TrainAugment`) and looks up the labels.
    """

    def __init__(self, images_v: DeviceImages, images_i: DeviceImages, labels_v: np.ndarray,
                 labels_i: np.ndarray, cfg: Config, generator: torch.Generator) -> None:
        self.images_v, self.images_i = images_v, images_i
        self.device = images_v.device
        self.labels_v = torch.from_numpy(np.asarray(labels_v)).to(self.device)
        self.labels_i = torch.from_numpy(np.asarray(labels_i)).to(self.device)
        self.augment_v = TrainAugment.from_config(cfg, "visible")
        self.augment_i = TrainAugment.from_config(cfg, "infrared")
        self.generator = generator
        self.channels_last = cfg.channels_last

    def __call__(self, idx_v: np.ndarray, idx_i: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_v = self.augment_v(self.images_v.batch(idx_v), self.generator)
        x_i = self.augment_i(self.images_i.batch(idx_i), self.generator)
        y_v = self.labels_v[torch.from_numpy(np.asarray(idx_v)).to(self.device)]
        y_i = self.labels_i[torch.from_numpy(np.asarray(idx_i)).to(self.device)]
        if self.channels_last:
            x_v = x_v.contiguous(memory_format=torch.channels_last)
            x_i = x_i.contiguous(memory_format=torch.channels_last)
        return x_v, x_i, y_v, y_i


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


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


def _digest(obj: Any, h: Any) -> None:
    """Feed a checkpoint's contents to `h` in a canonical order (dict keys sorted)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode() + b":")
            _digest(obj[key], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)};".encode())
        for item in obj:
            _digest(item, h)
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"unexpected {type(obj).__name__} in a checkpoint")


def checkpoint_sha256(state: dict[str, Any]) -> str:
    """SHA-256 of the whole checkpoint (weights, optimizers, sampler, RNG, config, ...)."""
    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != "sha256"}, h)
    return h.hexdigest()


def dataset_signature(dataset: VIDataset) -> dict[str, Any]:
    """What a checkpoint records of its training data: name, RegDB trial, sizes, and the
    training identities (list and hash), so that evaluation can refuse a test split that
    shares identities with them."""
    pids = np.union1d(dataset.train.visible.pids, dataset.train.infrared.pids).astype(np.int64)
    return {
        "name": dataset.name,
        "trial": dataset.trial,
        "num_classes": dataset.train.num_classes,
        "visible": len(dataset.train.visible),
        "infrared": len(dataset.train.infrared),
        "train_pids": pids.tolist(),
        "train_ids_sha256": hashlib.sha256(pids.tobytes()).hexdigest(),
    }


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a kill at any moment leaves the old or the new file)
    with the SHA-256 of its whole content."""
    model_state = {k: v.detach().cpu() for k, v in state["model"].items()}
    state = {**state, "model": model_state, "format": CHECKPOINT_FORMAT}
    state["sha256"] = checkpoint_sha256(state)
    atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`, verifying its content hash."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatch(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise CheckpointMismatch(f"checkpoint {path} is not readable for you (permission "
                                 "denied); ask its owner or copy it") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        # Only the first line of torch's message: the rest suggests weights_only=False,
        # which would run arbitrary code from the file.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, pickle.UnpicklingError):
            first = "it holds objects an fmcnet checkpoint never contains"
        raise CheckpointMismatch(
            f"checkpoint {path} could not be read ({exc.__class__.__name__}: {first}); "
            "it is truncated, corrupt or not an fmcnet checkpoint"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointMismatch(f"checkpoint {path} is not an fmcnet checkpoint (no model/config)")
    try:
        if "sha256" in state:
            ok = state["sha256"] == checkpoint_sha256(state)
        else:  # written before format 2: only the weights were hashed
            ok = state.get("model_sha256") == _weights_sha256(state["model"])
    except (TypeError, AttributeError, RuntimeError):
        ok = False
    if not ok:
        raise CheckpointMismatch(f"checkpoint {path} fails its content hash: the file is corrupt")
    return state


def _weights_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _saved_value(saved: dict[str, Any], key: str) -> Any:
    """A checkpoint's value of `key`; keys added after it was written take their default."""
    if key in saved:
        return _norm(saved[key])
    return _norm(getattr(Config(), key))


def check_config(ckpt: dict[str, Any], cfg: Config, path: Path, keys=MODEL_KEYS,
                 *, what: str = "this configuration") -> None:
    """Fail loudly, listing every differing key, instead of mixing two experiments."""
    saved = ckpt["config"]
    problems = [
        f"{k}: checkpoint has {_saved_value(saved, k)!r}, {what} has {_norm(getattr(cfg, k))!r}"
        for k in keys
        if _saved_value(saved, k) != _norm(getattr(cfg, k))
    ]
    if problems:
        raise CheckpointMismatch(
            f"checkpoint {path} does not match {what}:\n  - " + "\n  - ".join(problems)
        )


def check_dataset(ckpt: dict[str, Any], dataset: VIDataset, path: Path, *,
                  training: bool = False) -> None:
    """The checkpoint fits `dataset`: same name and classes; for training (resume) the
    same training identities; for evaluation no test identity it was trained on."""
    want = dataset_signature(dataset)
    have = ckpt.get("dataset", {})
    keys = ("name", "num_classes") + (("trial", "visible", "infrared") if training else ())
    problems = [f"dataset {k}: checkpoint has {have.get(k)!r}, this dataset has {want[k]!r}"
                for k in keys if have.get(k) != want[k]]
    if training and have.get("train_ids_sha256") not in (None, want["train_ids_sha256"]):
        problems.append("dataset training identities: the checkpoint was trained on another "
                        "set of identities (train_ids_sha256 differs)")
    if problems:
        raise CheckpointMismatch(
            f"checkpoint {path} does not match this dataset:\n  - " + "\n  - ".join(problems)
        )
    if not training:
        _refuse_test_leakage(have, dataset, path)


def _refuse_test_leakage(have: dict[str, Any], dataset: VIDataset, path: Path) -> None:
    test: set[int] = set()
    for split in dataset.splits.values():
        test |= set(split.query.pids.tolist()) | set(split.gallery.pids.tolist())
    if "train_pids" in have:
        shared = sorted(test & set(have["train_pids"]))
        if not shared:
            return
        shown = ", ".join(str(p) for p in shared[:8]) + (" ..." if len(shared) > 8 else "")
        overlap = f"{len(shared)} of its {len(test)} test identities ({shown}) are"
    elif have.get("trial") is not None and have.get("trial") != dataset.trial:
        # an older checkpoint without its identity list: another RegDB trial may overlap
        overlap = "its test identities may be"
    else:
        return
    trained_on = have.get("name", "?") + (f" trial {have['trial']}" if have.get("trial") else "")
    here = dataset.name + (f" trial {dataset.trial}" if dataset.trial else "")
    advice = (f"evaluate it on trial {have['trial']} (trial={have['trial']}), or use the "
              f"checkpoint trained on trial {dataset.trial}" if have.get("trial")
              else "evaluate it on a split whose test identities it never saw")
    raise CheckpointMismatch(
        f"checkpoint {path} was trained on {trained_on}; evaluating it on {here} would leak "
        f"test identities: {overlap} among the identities it trained on. {advice}"
    )


def check_compatible(
    ckpt: dict[str, Any], cfg: Config, dataset: VIDataset | None, path: Path, keys=MODEL_KEYS
) -> None:
    """`check_config` on `keys`, then (with a dataset) `check_dataset` for evaluation."""
    check_config(ckpt, cfg, path, keys)
    if dataset is not None:
        check_dataset(ckpt, dataset, path)


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def load_model_from_checkpoint(
    path: str | os.PathLike, cfg: Config | None = None, dataset: VIDataset | None = None,
    device: torch.device | None = None,
) -> tuple[FMCNet, Config]:
    """Rebuild the model of a checkpoint; every weight must load (strict)."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    saved_cfg = config_from_dict(ckpt["config"])
    if cfg is not None:
        check_compatible(ckpt, cfg, dataset, path)
    elif dataset is not None:
        check_compatible(ckpt, saved_cfg, dataset, path)
    model = FMCNet.from_config(_no_pretrained(saved_cfg), ckpt["dataset"]["num_classes"])
    # where the trained weights started from, not the "random" of the rebuild above
    model.pretrained_source = ckpt.get("pretrained_source", "unknown (older checkpoint)")
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    if missing or unexpected:
        raise CheckpointMismatch(
            f"checkpoint {path} does not fit the model: missing {sorted(missing)[:10]}, "
            f"unexpected {sorted(unexpected)[:10]}"
        )
    return model.to(device or torch.device("cpu")), saved_cfg


def _no_pretrained(cfg: Config) -> Config:
    """Weights come from the checkpoint: do not look for ImageNet weights again."""
    import dataclasses

    return dataclasses.replace(cfg, pretrained=False, pretrained_path=None)


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    model: FMCNet
    dataset: VIDataset
    cfg: Config
    results: dict[str, Any] | None
    history: list[dict[str, Any]]


def _distributed() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend=backend)
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _progress(iterable, enabled: bool, **kw):
    """A bar on a terminal or in a notebook, one line per epoch in a log (`fmcnet.progress`)."""
    if not enabled:
        return iterable
    from fmcnet.progress import bar

    return bar(iterable, **kw)


def run_contents(run_dir: str | os.PathLike) -> list[str]:
    """The run files `run_dir` holds (of `RUN_MARKERS`); empty for a new or empty folder."""
    run_dir = Path(run_dir)
    return [name for name in RUN_MARKERS if (run_dir / name).exists()]


def _refuse_existing_run(run_dir: Path) -> None:
    found = run_contents(run_dir)
    if found:
        resumable = (run_dir / "checkpoints" / "last.pt").exists()
        advice = ("pass --resume to continue it, or choose another --out" if resumable else
                  "it has no checkpoints/last.pt to resume from; choose another --out, or "
                  f"delete {run_dir} to start over")
        raise FMCNetError(f"{run_dir} already holds a run ({', '.join(found)}); {advice}")


def _resume_checkpoint(run_dir: Path, last_path: Path, cfg: Config) -> dict[str, Any]:
    """The checkpoint to resume, checked against `cfg` before any data is touched."""
    if not last_path.exists():
        found = run_contents(run_dir)
        what = (f"holds a run ({', '.join(found)}) but no checkpoint {last_path} (deleted?)"
                if found else f"has no checkpoint {last_path}")
        raise FMCNetError(f"--resume: {run_dir} {what}; there is nothing to resume: train "
                          "without --resume into another --out")
    ckpt = load_checkpoint(last_path)
    check_config(ckpt, cfg, last_path, resume_keys(), what="the resumed run")
    if cfg.epochs < ckpt["epoch"]:
        raise CheckpointMismatch(
            f"checkpoint {last_path} has completed {ckpt['epoch']} epochs; epochs={cfg.epochs} "
            f"would end the run before that. Resume with epochs >= {ckpt['epoch']}"
        )
    return ckpt


def _record_resume(run_dir: Path, ckpt: dict[str, Any], cfg: Config) -> None:
    """config.yaml holds the run's current configuration; every resume appends what it
    changed (only `RESUME_SAFE_KEYS` can differ) to resumes.jsonl, so the history stays
    honest."""
    changed = {k: [_saved_value(ckpt["config"], k), _norm(getattr(cfg, k))]
               for k in RESUME_SAFE_KEYS
               if _saved_value(ckpt["config"], k) != _norm(getattr(cfg, k))}
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "epoch": ckpt["epoch"],
              "global_step": ckpt["global_step"], "changed": changed}
    with open(run_dir / "resumes.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, global_step: int) -> None:
    """Drop the records of steps after the resumed checkpoint (they are trained again)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            if json.loads(line)["global_step"] <= global_step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut by a kill: dropped
            continue
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(f"{line}\n" for line in keep))


class InterruptGuard:
    """Holds Ctrl-C (SIGINT) until the training step in flight has finished.

    The handler only sets `requested`; the loop checks it between steps (and after the
    end-of-epoch checkpoint), so the state it then saves is that of the last completed
    step, BatchNorm buffers included. A second Ctrl-C stops at once, saving nothing.
    Installed from the main thread only (signal handlers cannot be set elsewhere); the
    previous handler is restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> InterruptGuard:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous not in (None, signal.SIG_IGN):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing the current step, then saving a checkpoint "
              "(Ctrl-C again stops at once, without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def train(
    cfg: Config,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    dataset: VIDataset | None = None,
    evaluate: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train FMCNet on `cfg.dataset`, write the run folder, then evaluate.

    `callback` receives every metrics record (the notebooks draw live curves with it).
    A folder that already holds a run is refused unless `resume=True`, which continues
    `checkpoints/last.pt` exactly (same batches, RNG and LR schedule) and requires the
    configuration to match it except for `RESUME_SAFE_KEYS`. Ctrl-C finishes the step in
    flight and saves it (see `InterruptGuard`).
    """
    from fmcnet.data import dataset_for_config
    from fmcnet.data.cache import load_images

    validate(cfg)  # a Config built by hand gets the checks make_config applies
    from fmcnet.parallel import train_on_cpu_ranks, wants_cpu_ranks

    if wants_cpu_ranks(cfg, pick_device(cfg.device)):
        return train_on_cpu_ranks(cfg, run_dir, resume=resume, evaluate=evaluate,
                                  callback=callback)
    # The code that trains is the code of this moment: results.json names it, not the
    # commit the working tree has reached by the time the evaluation ends.
    commit = git_commit()
    run_dir = Path(run_dir)
    rank, world = _distributed()
    is_main = rank == 0
    ckpt_dir = run_dir / "checkpoints"
    last_path = ckpt_dir / "last.pt"
    show = cfg.progress and is_main

    # The cheap checks come first: the folder, the checkpoint's configuration, the device.
    ckpt = _resume_checkpoint(run_dir, last_path, cfg) if resume else None
    if not resume and is_main:
        _refuse_existing_run(run_dir)
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    seed_everything(cfg.seed + rank)
    set_backend_flags(device, cfg.cpu_threads)
    # Before any data is loaded: a run that asked for ImageNet weights never trains without.
    init = check_pretrained(cfg.backbone, pretrained=cfg.pretrained,
                            pretrained_path=cfg.pretrained_path, width=cfg.backbone_width)
    if is_main:
        print(_describe_init(init, cfg))

    dataset = dataset or dataset_for_config(cfg)
    if ckpt is not None:
        check_dataset(ckpt, dataset, last_path, training=True)
    size = (cfg.height, cfg.width)
    images_v = DeviceImages(load_images(dataset.train.visible, size, progress=show), device,
                            cfg.data_on_device)
    images_i = DeviceImages(load_images(dataset.train.infrared, size, progress=show), device,
                            cfg.data_on_device)

    model = FMCNet.from_config(cfg, dataset.train.num_classes).to(device)
    # The cached images are NHWC, so batches arrive channels_last; the model follows
    # (faster on GPUs and, measured in bench/, on the CPU too).
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, disc_optimizer = build_optimizers(model, cfg)
    sampler = CrossModalitySampler(
        dataset.train.visible.labels, dataset.train.infrared.labels,
        cfg.num_identities, cfg.num_instances, seed=cfg.seed, rank=rank, world_size=world,
        batches_per_epoch=cfg.steps_per_epoch,
    )
    steps_per_epoch = len(sampler)
    generator = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)
    batches = OnDeviceBatches(images_v, images_i, dataset.train.visible.labels,
                              dataset.train.infrared.labels, cfg, generator)

    # The run's position is `global_step` (steps completed) and `closed` (epochs whose
    # end-of-epoch work, validation and checkpoint, is done); the sampler's epoch and
    # position are derived from them, so no interrupt can make an epoch replay or vanish.
    global_step, closed, best = 0, 0, {"mAP": -1.0, "epoch": None}
    if ckpt is not None:
        global_step, closed = int(ckpt["global_step"]), int(ckpt["epoch"])
        if not closed * steps_per_epoch <= global_step <= (closed + 1) * steps_per_epoch:
            raise CheckpointMismatch(
                f"checkpoint {last_path} records step {global_step} after {closed} completed "
                f"epochs of {steps_per_epoch} steps, which cannot be; it was not written by "
                "this version of train()"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        disc_optimizer.load_state_dict(ckpt["disc_optimizer"])
        generator.set_state(ckpt["rng"]["augment"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        best = ckpt.get("best", best)
        if is_main:
            print(f"resuming {run_dir} at epoch {closed + 1}/{cfg.epochs}, step {global_step} "
                  f"(lr factor {lr_factor(cfg, global_step, steps_per_epoch):.4g})")
    metrics_path = run_dir / "metrics.jsonl"
    tb: TensorBoardLog | None = None  # opened with the run folder, below

    ddp_model = model
    if world > 1:
        disc_ids = {id(p) for p in model.parameter_groups()["discriminator"]}
        # D's loss is computed outside DDP's forward (on detached features), so DDP would
        # never reduce D's gradients: D is left out of DDP and averaged by hand instead.
        # DDP broadcasts rank 0's weights only for the parameters it manages, so D's are
        # broadcast here: with equal starts and averaged gradients the ranks stay equal.
        for p in model.parameter_groups()["discriminator"]:
            dist.broadcast(p.data, src=0)
        torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, [n for n, p in model.named_parameters() if id(p) in disc_ids]
        )
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not (cfg.sfd and cfg.fmc),
        )
    step = TrainStep(model, cfg, optimizer, disc_optimizer, device=device, world=world,
                     forward=torch.compile(ddp_model) if cfg.compile else ddp_model)

    def checkpoint_state(best_record: dict[str, Any] | None = None) -> dict[str, Any]:
        rng = {"augment": generator.get_state().cpu(), "torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "disc_optimizer": disc_optimizer.state_dict(),
            "sampler": {"epoch": global_step // steps_per_epoch,
                        "position": global_step % steps_per_epoch, "seed": cfg.seed},
            "rng": rng,
            "epoch": closed,
            "global_step": global_step,
            "best": best if best_record is None else best_record,
            "config": {k: _norm(v) for k, v in cfg.to_dict().items()},
            "dataset": dataset_signature(dataset),
            "pretrained_source": model.pretrained_source,  # for results.json provenance
        }

    history: list[dict[str, Any]] = []
    pending: list[torch.Tensor] = []  # per-step loss terms, synced once per log interval
    term_names: list[str] | None = None
    t_interval, n_interval = time.perf_counter(), 0

    def flush(epoch: int, step_in_epoch: int) -> None:
        nonlocal pending, t_interval, n_interval
        if not pending:
            return
        taken, pending = pending, []  # an interrupt inside cannot log these steps twice
        values = torch.stack(taken).float().cpu()  # one device sync per interval
        bad = ~torch.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            step = global_step - len(taken) + row + 1
            raise NonFiniteLoss(
                f"loss term {term_names[col]!r} became {values[row, col].item()} at step {step} "
                f"(epoch {epoch + 1}); stopping. The last good checkpoint stays at {last_path}"
            )
        elapsed = time.perf_counter() - t_interval
        record = {
            "epoch": epoch + 1, "step": step_in_epoch, "global_step": global_step,
            "lr": optimizer.param_groups[1]["lr"],
            # `align_weight` (and the ramp of `id_warmup_epochs`) at the interval's last step
            **({"align_weight": align_factor(cfg, global_step - 1, steps_per_epoch)}
               if cfg.id_warmup_epochs or cfg.align_weight != 1 else {}),
            # loss terms as loss/<name>; "disc_acc" and "hinge/<term>" are not losses
            **{n if n == "disc_acc" or "/" in n else f"loss/{n}": float(v)
               for n, v in zip(term_names, values.mean(0))},
            **omega_values(model),
            "images_per_s": n_interval / elapsed if elapsed > 0 else float("nan"),
        }
        if device.type == "cuda":
            record["gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        history.append(record)
        if is_main:
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        if tb is not None:
            tb.write(record)
        if callback is not None:
            callback(record)
        t_interval, n_interval = time.perf_counter(), 0

    guard = InterruptGuard()
    last_saved: dict[str, int] = {}  # what checkpoints/last.pt holds, once written here

    def stop_requested(sync: bool) -> bool:
        if world == 1:
            return guard.requested
        if not sync:  # under DDP the ranks agree at logging points only (one collective)
            return False
        flag = torch.tensor([int(guard.requested)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def close_epoch(epoch: int) -> None:
        """Validation (with `validate`) and the checkpoints at the end of `epoch`."""
        nonlocal best
        done = epoch + 1
        if not (done % cfg.checkpoint_every == 0 or done == cfg.epochs):
            return
        if cfg.validate and cfg.keep_best_val and dataset.val is not None:
            val_map = validation_map(model, dataset, cfg, device)
            if history:
                history[-1]["val_mAP"] = val_map
            if tb is not None:
                tb.write({"global_step": global_step, "val_mAP": val_map})
            if is_main and val_map > best["mAP"]:
                candidate = {"mAP": val_map, "epoch": done}
                # best.pt first: a record of a best checkpoint that was never written
                # would keep a later, better epoch from replacing it
                save_checkpoint(ckpt_dir / "best.pt", {**checkpoint_state(candidate),
                                                       "epoch": done})
                best = candidate
        if is_main:
            state = {**checkpoint_state(), "epoch": done}
            save_checkpoint(last_path, state)
            last_saved.update(epoch=done, global_step=global_step)
            if cfg.keep_snapshots:
                save_checkpoint(ckpt_dir / f"epoch_{done:03d}.pt", state)

    # in a log the per-epoch lines say it all: the outer bar stays silent there
    epochs = _progress(range(closed, cfg.epochs), show, desc="epochs", unit="epoch",
                       initial=closed, total=cfg.epochs, line=False, interval=0)
    epoch, step_in_epoch, in_step = closed, 0, False
    try:
        with guard:
            # the folder is written under the guard: from its first file on, an interrupt
            # leaves a checkpoint to resume
            if is_main:
                run_dir.mkdir(parents=True, exist_ok=True)
                for folder in (run_dir, ckpt_dir):
                    remove_orphans(folder)  # temporary files of writers that were killed
                if ckpt is not None:
                    _truncate_metrics(metrics_path, global_step)
                    _record_resume(run_dir, ckpt, cfg)
                save_config(cfg, run_dir / "config.yaml")
            # a resumed run drops the events an interrupted attempt wrote after its checkpoint
            tb = TensorBoardLog.open(run_dir, enabled=cfg.tensorboard and is_main,
                                     purge_step=global_step + 1 if ckpt is not None else None)
            for epoch in epochs:
                model.train()
                step_in_epoch = global_step - epoch * steps_per_epoch
                if step_in_epoch < steps_per_epoch:
                    sampler.load_state_dict({"epoch": epoch, "position": step_in_epoch,
                                             "seed": cfg.seed})
                    bar = _progress(sampler, show, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                                    leave=False, line=True, unit="steps",
                                    total=steps_per_epoch - step_in_epoch)
                    for idx_v, idx_i in bar:
                        in_step = True  # from here the state is mid-step until it completes
                        factor = lr_factor(cfg, global_step, steps_per_epoch)
                        set_lr(optimizer, cfg.lr, factor)
                        set_lr(disc_optimizer, cfg.disc_lr, factor)
                        step.align_weight = align_factor(cfg, global_step, steps_per_epoch)
                        x_v, x_i, y_v, y_i = batches(idx_v, idx_i)
                        all_terms = step(x_v, x_i, y_v, y_i)
                        global_step += 1
                        step_in_epoch += 1
                        in_step = False

                        if term_names is None:
                            term_names = list(all_terms)
                        pending.append(torch.stack([all_terms[n].detach().float()
                                                    for n in term_names]))
                        n_interval += len(idx_v) + len(idx_i)
                        logged = len(pending) >= cfg.log_every or step_in_epoch == steps_per_epoch
                        if logged:
                            flush(epoch, step_in_epoch)
                            if show and history:
                                bar.set_postfix(loss=f"{history[-1]['loss/total']:.3f}",
                                                img_s=f"{history[-1]['images_per_s']:.0f}")
                        # the last step's interrupt waits for the end-of-epoch checkpoint
                        if step_in_epoch < steps_per_epoch and stop_requested(logged):
                            raise KeyboardInterrupt
                    flush(epoch, step_in_epoch)
                close_epoch(epoch)
                closed = epoch + 1
                if stop_requested(True):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if tb is not None:
            tb.close()
        if is_main and in_step:
            kept = (f"{last_path} keeps the last checkpoint" if last_path.exists()
                    else "no checkpoint was written yet")
            print(f"interrupted inside a training step: nothing saved; {kept}", file=sys.stderr)
        elif is_main:
            flush(epoch, step_in_epoch)
            if last_saved != {"epoch": closed, "global_step": global_step}:
                save_checkpoint(last_path, checkpoint_state())
            where = ("all epochs trained, not yet evaluated" if closed == cfg.epochs else
                     f"epoch {closed + 1}, step {global_step - closed * steps_per_epoch}")
            print(f"interrupted: saved {where} (global step {global_step}) to {last_path}; "
                  "run again with --resume to continue", file=sys.stderr)
        raise
    if tb is not None:
        tb.close()
    results = None
    if evaluate and is_main:
        if cfg.validate and best["epoch"] is not None:
            model, _ = load_model_from_checkpoint(ckpt_dir / "best.pt", cfg, dataset, device)
            selection = f"best validation mAP ({best['mAP']:.2f}%) at epoch {best['epoch']}; val ids held out"
        else:
            selection = (f"last epoch ({cfg.epochs}); val ids held out" if cfg.validate else
                         f"last epoch ({cfg.epochs}); trained on train+val as the paper")
        results = evaluate_run(model, dataset, cfg, run_dir, device=device, selection=selection,
                               commit=commit)
    if world > 1:
        dist.barrier()
    return TrainResult(run_dir, model, dataset, cfg, results, history)


def _describe_init(source: str, cfg: Config) -> str:
    """The log line that says what the backbone starts from."""
    if source == "random":
        return (f"backbone {cfg.backbone}: random init (pretrained=false), not the paper's "
                "ImageNet start -- accuracy will be far below the paper's; the pre-trained "
                "parts' LR multiplier (pretrained_lr_mult) is not applied")
    return (f"backbone {cfg.backbone}: weights {source}; ResNet parts at "
            f"{cfg.pretrained_lr_mult:g}x the base LR")


def omega_values(model: torch.nn.Module) -> dict[str, float]:
    """The SFF fusion weights (Eq. 15) for the metrics log: omega/v_specific (w1) and
    omega/i_specific (w2); empty without SFF."""
    sff = getattr(model, "sff", None)
    if sff is None:
        return {}
    return {f"omega/{kind}": value for kind, value in sff.omega_values().items()}


def _average_gradients(optimizer: torch.optim.Optimizer, world: int) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world


def validation_map(model: FMCNet, dataset: VIDataset, cfg: Config, device: torch.device) -> float:
    """mAP (percent) of infrared->visible retrieval among the held-out val identities."""
    from fmcnet.data.cache import load_images
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

    size = (cfg.height, cfg.width)
    feats = {}
    for name, images in (("q", dataset.val.infrared), ("g", dataset.val.visible)):
        feats[name] = extract_features(
            model, load_images(images, size, progress=False), images.modality, device=device,
            batch_size=cfg.eval_batch_size, amp=cfg.eval_amp, cpu_amp=cfg.cpu_amp,
        )
    q, g = dataset.val.infrared, dataset.val.visible
    dist_qg = pairwise_distance(feats["q"], feats["g"])
    metrics = rank_metrics(dist_qg, q.pids, g.pids, q.cams, g.cams, protocol="sysu",
                           max_rank=cfg.max_rank)
    model.train()
    return 100.0 * metrics["mAP"]


def evaluate_run(
    model: FMCNet, dataset: VIDataset, cfg: Config, run_dir: Path, *, device: torch.device,
    selection: str, tta: bool | None = None, rerank: bool | None = None,
    settings: list[str] | None = None, trials: int | None = None, commit: str | None = None,
) -> dict[str, Any]:
    """Evaluate every protocol of the dataset and write results.json and eval/*.npz.

    `run_dir` is the folder the results go to: the run folder for training's own
    evaluation, an evaluation folder of its own otherwise (`evaluation_folder`).
    `commit`: the code's commit for results.json (training passes the one it started
    with); by default the working tree's now.
    """
    from fmcnet.evaluation.protocols import evaluate_dataset
    from fmcnet.evaluation.report import results_document, table1_markdown
    from fmcnet.utils import describe_device

    tta = cfg.tta if tta is None else tta
    rerank = cfg.rerank if rerank is None else rerank
    evaluation = evaluate_dataset(
        model, dataset, cfg, device=device, settings=settings, trials=trials, tta=tta,
        rerank=rerank, save_dir=run_dir / "eval", progress=cfg.progress,
    )
    document = results_document(
        evaluation["settings"],
        dataset=cfg.dataset,
        profile=cfg.profile,
        device=describe_device(device),
        commit=commit or git_commit(),
        sampler=evaluation["sampler"],
        samplers=evaluation["samplers"],
        llcm_protocol=dataset.llcm_protocol,
        trials=evaluation["trials"],
        tta=tta,
        rerank=rerank,
        selection=selection,
        synthetic=cfg.dataset == "synthetic",
        eval_precision=evaluation["precision"],
        train_identities=dataset.train.num_classes,
        validate=dataset.val is not None,  # val ids held out of training (SYSU-MM01 only)
        pretrained=getattr(model, "pretrained_source", "unknown"),
    )
    # the RegDB split the scores belong to (None for the other datasets)
    results = {"dataset": document.pop("dataset"), "trial": dataset.trial, **document}
    results["pretrained"] = weights_source(cfg.backbone, pretrained=cfg.pretrained,
                                           pretrained_path=cfg.pretrained_path)
    if "features" in evaluation:  # fmcnet.evaluation.diagnostics
        results["features_setting"] = evaluation["features_setting"]
        results["features"] = evaluation["features"]
    atomic_write_json(run_dir / "results.json", results)
    atomic_write_text(run_dir / "results.md", table1_markdown(results) + "\n")
    return results


def evaluation_folder(base: str | os.PathLike, dataset: VIDataset, *, settings: list[str] | None,
                      trials: int, tta: bool, rerank: bool) -> Path:
    """`<base>/evaluations/<name>`: one folder per evaluation, named by its settings, so an
    evaluation never writes over a run's own results or another evaluation's."""
    parts = [dataset.name + (f"-trial{dataset.trial}" if dataset.trial else "")]
    if settings is not None:
        parts.append("+".join(s.replace("/", "-") for s in settings))
    # the trials evaluation will use: a split has at most len(split.trials) galleries
    names = list(dataset.splits) if settings is None else settings
    used = min(trials, max((len(dataset.splits[n].trials) for n in names if n in dataset.splits),
                           default=trials))
    parts.append(f"{used}trials")
    parts += [flag for flag, on in (("tta", tta), ("rerank", rerank)) if on]
    return Path(base) / "evaluations" / "_".join(parts)


def aggregate_trials(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over per-trial results (RegDB: one model per trial)."""
    first = results[0]
    settings: dict[str, Any] = {}
    for name in first["settings"]:
        settings[name] = {}
        for metric in first["settings"][name]:
            vals = [r["settings"][name][metric] for r in results]
            if not all(isinstance(v, (int, float)) for v in vals):
                continue
            settings[name][metric] = float(np.mean(vals))
            settings[name][f"{metric}_std"] = float(np.std(vals))
    return {**first, "trials": len(results), "settings": settings,
            "per_trial_models": [r.get("trial") for r in results]}


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in open(path) if line.strip()]

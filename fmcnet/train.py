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
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from fmcnet.config import Config, config_from_dict, save_config
from fmcnet.data.augment import TrainAugment
from fmcnet.data.base import VIDataset
from fmcnet.data.sampler import CrossModalitySampler
from fmcnet.losses import discriminator_loss, fmcnet_loss
from fmcnet.model import FMCNet
from fmcnet.tensorboard_log import TensorBoardLog
from fmcnet.utils import (
    FMCNetError,
    atomic_torch_save,
    atomic_write_json,
    pick_device,
    seed_everything,
)

# Configuration keys that change the network's shape or the meaning of its weights:
# a checkpoint must agree on all of them to be resumed or evaluated.
MODEL_KEYS = (
    "backbone", "last_stride", "bnneck", "generator_hidden", "sfd", "fmc", "fusion",
    "height", "width",
)
# Keys whose change makes a resumed run a different experiment.
RESUME_KEYS = MODEL_KEYS + (
    "dataset", "trial", "seed", "num_identities", "num_instances", "steps_per_epoch",
    "lr", "warmup_epochs", "lr_milestones", "lr_gamma", "validate",
)


class CheckpointMismatch(FMCNetError):
    """A checkpoint that does not fit the model, dataset or run it is loaded into."""


class NonFiniteLoss(FMCNetError):
    """A NaN or infinite loss term; the run stops and keeps its last good checkpoint."""


# ---------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------


def lr_factor(cfg: Config, global_step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over `warmup_epochs`, then x`lr_gamma` at each milestone epoch."""
    epoch = global_step // steps_per_epoch
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if global_step < warmup_steps:
        return (global_step + 1) / warmup_steps
    return cfg.lr_gamma ** sum(epoch >= m for m in cfg.lr_milestones)


def build_optimizers(model: FMCNet, cfg: Config) -> tuple[torch.optim.Optimizer, torch.optim.SGD]:
    """SGD (or Adam) for the network, SGD for the discriminators; pre-trained parts at 0.1x.

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
    disc = torch.optim.SGD(
        [{"params": disc_params, "lr_mult": 1.0, "lr": cfg.disc_lr}],
        lr=cfg.disc_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
    )
    return main, disc


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_mult"] * factor


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
        self.augment = TrainAugment.from_config(cfg)
        self.generator = generator
        self.channels_last = cfg.channels_last

    def __call__(self, idx_v: np.ndarray, idx_i: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_v = self.augment(self.images_v.batch(idx_v), self.generator)
        x_i = self.augment(self.images_i.batch(idx_i), self.generator)
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
        self.autocast_enabled = cfg.amp and device.type == "cuda"
        self.device = device
        disc_ids = {id(p) for p in model.parameter_groups()["discriminator"]}
        # Clipping bounds the network's update; the discriminators play their own game
        # with their own optimizer, so their gradients stay out of its norm.
        self.main_params = [p for p in model.parameters() if id(p) not in disc_ids]
        self.adversarial = cfg.fmc and cfg.gan

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
            loss, terms = fmcnet_loss(out, y_v, y_i, cfg)
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


def _state_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def dataset_signature(dataset: VIDataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "trial": dataset.trial,
        "num_classes": dataset.train.num_classes,
        "visible": len(dataset.train.visible),
        "infrared": len(dataset.train.infrared),
    }


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    model_state = {k: v.detach().cpu() for k, v in state["model"].items()}
    state = {**state, "model": model_state, "model_sha256": _state_sha256(model_state)}
    atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`, verifying its content hash."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatch(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise CheckpointMismatch(
            f"checkpoint {path} could not be read ({exc.__class__.__name__}: {exc}); "
            "it is truncated or not an fmcnet checkpoint"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointMismatch(f"checkpoint {path} is not an fmcnet checkpoint (no model/config)")
    if state.get("model_sha256") != _state_sha256(state["model"]):
        raise CheckpointMismatch(f"checkpoint {path} fails its content hash: the file is corrupt")
    return state


def check_compatible(
    ckpt: dict[str, Any], cfg: Config, dataset: VIDataset | None, path: Path, keys=MODEL_KEYS
) -> None:
    """Fail loudly, listing every difference, instead of evaluating random weights."""
    saved = ckpt["config"]
    problems = [
        f"{k}: checkpoint has {saved.get(k)!r}, this run has {getattr(cfg, k)!r}"
        for k in keys
        if _norm(saved.get(k)) != _norm(getattr(cfg, k))
    ]
    if dataset is not None:
        want = dataset_signature(dataset)
        have = ckpt.get("dataset", {})
        problems += [
            f"dataset {k}: checkpoint has {have.get(k)!r}, this dataset has {want[k]!r}"
            for k in ("name", "num_classes")
            if have.get(k) != want[k]
        ]
    if problems:
        raise CheckpointMismatch(
            f"checkpoint {path} does not match this configuration/dataset:\n  - "
            + "\n  - ".join(problems)
        )


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

    return dataclasses.replace(cfg, pretrained=False, pretrained_path=None, require_pretrained=False)


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
    Ctrl-C saves the position reached (mid-epoch) so that `resume=True` continues there.
    """
    from fmcnet.data import dataset_for_config
    from fmcnet.data.cache import load_images

    run_dir = Path(run_dir)
    rank, world = _distributed()
    is_main = rank == 0
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    seed_everything(cfg.seed + rank)
    ckpt_dir = run_dir / "checkpoints"
    last_path = ckpt_dir / "last.pt"
    show = cfg.progress and is_main

    if not resume and is_main and last_path.exists():
        raise FMCNetError(
            f"{run_dir} already holds a run ({last_path}); pass --resume to continue it "
            "or choose another --out"
        )
    dataset = dataset or dataset_for_config(cfg)
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

    start_epoch, global_step, best = 0, 0, {"mAP": -1.0, "epoch": None}
    if resume:
        if not last_path.exists():
            raise FMCNetError(f"--resume: {run_dir} has no checkpoint {last_path} to resume from")
        ckpt = load_checkpoint(last_path)
        check_compatible(ckpt, cfg, dataset, last_path, keys=RESUME_KEYS)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        disc_optimizer.load_state_dict(ckpt["disc_optimizer"])
        sampler.load_state_dict(ckpt["sampler"])
        generator.set_state(ckpt["rng"]["augment"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start_epoch, global_step = ckpt["epoch"], ckpt["global_step"]
        best = ckpt.get("best", best)
        if is_main:
            print(f"resuming {run_dir} at epoch {start_epoch + 1}/{cfg.epochs}, "
                  f"step {global_step} (lr factor {lr_factor(cfg, global_step, steps_per_epoch):.4g})")
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    tb = TensorBoardLog.open(run_dir, enabled=cfg.tensorboard and is_main,
                             purge_step=global_step + 1 if resume else None)

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

    def checkpoint_state(epoch: int, position: int | None = None) -> dict[str, Any]:
        sampler_state = sampler.state_dict()
        if position is not None:
            sampler_state = {**sampler_state, "epoch": epoch, "position": position}
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "disc_optimizer": disc_optimizer.state_dict(),
            "sampler": sampler_state,
            "rng": {"augment": generator.get_state().cpu(), "torch": torch.get_rng_state()},
            "epoch": epoch,
            "global_step": global_step,
            "best": best,
            "config": {k: _norm(v) for k, v in cfg.to_dict().items()},
            "dataset": dataset_signature(dataset),
        }

    history: list[dict[str, Any]] = []
    metrics_path = run_dir / "metrics.jsonl"
    pending: list[torch.Tensor] = []  # per-step loss terms, synced once per log interval
    term_names: list[str] | None = None
    t_interval, n_interval = time.perf_counter(), 0

    def flush(epoch: int, step_in_epoch: int) -> None:
        nonlocal pending, t_interval, n_interval
        if not pending:
            return
        values = torch.stack(pending).float().cpu()  # one device sync per interval
        bad = ~torch.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            step = global_step - len(pending) + row + 1
            raise NonFiniteLoss(
                f"loss term {term_names[col]!r} became {values[row, col].item()} at step {step} "
                f"(epoch {epoch + 1}); stopping. The last good checkpoint stays at {last_path}"
            )
        elapsed = time.perf_counter() - t_interval
        record = {
            "epoch": epoch + 1, "step": step_in_epoch, "global_step": global_step,
            "lr": optimizer.param_groups[1]["lr"],
            **{n if n == "disc_acc" else f"loss/{n}": float(v)
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
        pending, t_interval, n_interval = [], time.perf_counter(), 0

    if is_main and not resume:
        metrics_path.unlink(missing_ok=True)
    # in a log the per-epoch lines say it all: the outer bar stays silent there
    epochs = _progress(range(start_epoch, cfg.epochs), show, desc="epochs", unit="epoch",
                       initial=start_epoch, total=cfg.epochs, line=False, interval=0)
    epoch, step_in_epoch, updating = start_epoch, 0, False
    try:
        for epoch in epochs:
            model.train()
            state = sampler.state_dict()
            if state["epoch"] != epoch or state["position"] >= steps_per_epoch:
                sampler.set_epoch(epoch)
            step_in_epoch = sampler.state_dict()["position"]
            bar = _progress(sampler, show, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                            line=True, unit="steps", total=steps_per_epoch - step_in_epoch)
            for idx_v, idx_i in bar:
                factor = lr_factor(cfg, global_step, steps_per_epoch)
                set_lr(optimizer, cfg.lr, factor)
                set_lr(disc_optimizer, cfg.disc_lr, factor)

                x_v, x_i, y_v, y_i = batches(idx_v, idx_i)
                updating = True
                all_terms = step(x_v, x_i, y_v, y_i)
                global_step += 1
                step_in_epoch += 1
                updating = False

                if term_names is None:
                    term_names = list(all_terms)
                pending.append(torch.stack([all_terms[n].detach().float() for n in term_names]))
                n_interval += len(idx_v) + len(idx_i)
                if len(pending) >= cfg.log_every or step_in_epoch == steps_per_epoch:
                    flush(epoch, step_in_epoch)
                    if show and history:
                        bar.set_postfix(loss=f"{history[-1]['loss/total']:.3f}",
                                        img_s=f"{history[-1]['images_per_s']:.0f}")
            flush(epoch, step_in_epoch)

            done = epoch + 1
            at_checkpoint = done % cfg.checkpoint_every == 0 or done == cfg.epochs
            if cfg.validate and dataset.val is not None and at_checkpoint:
                val_map = validation_map(model, dataset, cfg, device)
                history[-1]["val_mAP"] = val_map
                if tb is not None:
                    tb.write({"global_step": global_step, "val_mAP": val_map})
                if is_main and val_map > best["mAP"]:
                    best = {"mAP": val_map, "epoch": done}
                    save_checkpoint(ckpt_dir / "best.pt", checkpoint_state(done))
            if is_main and at_checkpoint:
                state = checkpoint_state(done)
                save_checkpoint(last_path, state)
                if cfg.keep_snapshots:
                    save_checkpoint(ckpt_dir / f"epoch_{done:03d}.pt", state)
    except KeyboardInterrupt:
        if tb is not None:
            tb.close()
        # Save where the run stands, unless the interrupt fell inside the update itself.
        if is_main and not updating:
            save_checkpoint(last_path, checkpoint_state(epoch, position=step_in_epoch))
            print(f"interrupted: saved epoch {epoch + 1}, step {step_in_epoch} to {last_path}; "
                  "run again with --resume to continue")
        raise
    if tb is not None:
        tb.close()
    results = None
    if evaluate and is_main:
        if cfg.validate and best["epoch"] is not None:
            model, _ = load_model_from_checkpoint(ckpt_dir / "best.pt", cfg, dataset, device)
            selection = f"best validation mAP ({best['mAP']:.2f}%) at epoch {best['epoch']}; val ids held out"
        else:
            selection = f"last epoch ({cfg.epochs}); trained on train+val as the paper"
        results = evaluate_run(model, dataset, cfg, run_dir, device=device, selection=selection)
    if world > 1:
        dist.barrier()
    return TrainResult(run_dir, model, dataset, cfg, results, history)


def omega_values(model: torch.nn.Module) -> dict[str, float]:
    """The SFF fusion weights (Eq. 15) for the metrics log; empty without SFF."""
    values = {}
    for name, p in model.named_parameters():
        if "omega" in name and p.numel() <= 4:
            for j, v in enumerate(p.detach().float().flatten().tolist()):
                values[f"omega/{name.replace('.', '/')}" + (f"/{j + 1}" if p.numel() > 1 else "")] = v
    return values


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
            batch_size=cfg.eval_batch_size, amp=cfg.amp,
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
    settings: list[str] | None = None, trials: int | None = None,
) -> dict[str, Any]:
    """Evaluate every protocol of the dataset and write results.json and eval/*.npz."""
    from fmcnet.evaluation.protocols import evaluate_dataset
    from fmcnet.evaluation.report import results_document, table1_markdown
    from fmcnet.utils import atomic_write_text, describe_device, git_commit

    tta = cfg.tta if tta is None else tta
    rerank = cfg.rerank if rerank is None else rerank
    evaluation = evaluate_dataset(
        model, dataset, cfg, device=device, settings=settings, trials=trials, tta=tta,
        rerank=rerank, save_dir=run_dir / "eval", progress=cfg.progress,
    )
    results = results_document(
        evaluation["settings"],
        dataset=cfg.dataset,
        profile=cfg.profile,
        device=describe_device(device),
        commit=git_commit(),
        sampler=dataset.sampler,
        trials=evaluation["trials"],
        tta=tta,
        rerank=rerank,
        selection=selection,
        synthetic=cfg.dataset == "synthetic",
    )
    atomic_write_json(run_dir / "results.json", results)
    atomic_write_text(run_dir / "results.md", table1_markdown(results) + "\n")
    return results


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

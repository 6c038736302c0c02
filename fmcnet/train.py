"""The training loop (docs/method.md), written out.

    for each epoch, for each batch of the sampler:
        set the step's learning rates and alignment weight   (Assembly.set_schedule)
        gather and augment the batch on the device           (OnDeviceBatches)
        one training step                                    (TrainStep)
        log the loss terms, once per interval                (MetricsLog)
    at the end of every `checkpoint_every`-th epoch: validate, save (Checkpointer)

The parts come from one builder (`fmcnet.assembly`), the checkpoints' contents and checks
from `fmcnet.checkpoints`, the run folder's files from `fmcnet.run_folder` (one writer at
a time: `fmcnet.run_lock`), the final evaluation from `fmcnet.evaluation.run`. Ctrl-C
finishes the step in flight and saves it (`InterruptGuard`), so a resumed run equals an
uninterrupted one bit for bit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from fmcnet.assembly import Assembly, TrainingImages, assemble, set_backend_flags
from fmcnet.checkpoints import (
    check_dataset,
    load_model_from_checkpoint,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from fmcnet.config import Config, validate
from fmcnet.data.base import VIDataset
from fmcnet.evaluation.run import evaluate_run, validation_map
from fmcnet.model import FMCNet
from fmcnet.model.backbone import check_pretrained
from fmcnet.optim import align_factor, lr_factor
from fmcnet.parallel import run_cpu_ranks, wants_cpu_ranks
from fmcnet.run_files import read_metrics, read_results
from fmcnet.run_folder import (
    append_metrics,
    last_checkpoint,
    open_run_folder,
    refuse_existing_run,
    resume_checkpoint,
)
from fmcnet.run_lock import hold_run
from fmcnet.tensorboard_log import TensorBoardLog
from fmcnet.utils import FMCNetError, git_commit, pick_device, seed_everything


class NonFiniteLoss(FMCNetError):
    """A NaN or infinite loss term; the run stops and keeps its last good checkpoint."""


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


@dataclass
class Position:
    """Where a run stands: `global_step` steps completed, `closed` epochs whose end-of-epoch
    work (validation, checkpoint) is done, `epoch` the epoch in training. The sampler's
    epoch and position are derived from them, so no interrupt can make an epoch replay or
    vanish."""

    steps_per_epoch: int
    global_step: int = 0
    closed: int = 0
    epoch: int = 0

    @property
    def step_in_epoch(self) -> int:
        return self.global_step - self.epoch * self.steps_per_epoch


class MetricsLog:
    """The loss terms of every step, kept on the device and written once per interval.

    `add` stacks a step's terms (no device sync); `flush` syncs once, refuses a non-finite
    term (`NonFiniteLoss`, saying which checkpoint the folder keeps), and writes one
    record -- the interval's mean of every term, the LR, the alignment weight, the SFF
    weights, images/s -- to metrics.jsonl (main process), TensorBoard and the callback;
    `history` keeps every record of this call.
    """

    def __init__(self, parts: Assembly, run_dir: Path, *, write: bool,
                 callback: Callable[[dict[str, Any]], None] | None,
                 kept: Callable[[], str]) -> None:
        self.parts, self.cfg, self.run_dir = parts, parts.cfg, run_dir
        self.write, self.callback = write, callback
        self.kept = kept  # what the run folder keeps to continue from (`Checkpointer.kept`)
        self.history: list[dict[str, Any]] = []
        self.pending: list[torch.Tensor] = []  # per-step loss terms, synced once per interval
        self.term_names: list[str] | None = None
        self.tb: TensorBoardLog | None = None  # opened with the run folder
        self.started, self.images = time.perf_counter(), 0

    def open_tensorboard(self, *, enabled: bool, purge_step: int | None) -> None:
        self.tb = TensorBoardLog.open(self.run_dir, enabled=enabled, purge_step=purge_step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()

    def add(self, terms: dict[str, torch.Tensor], images: int) -> None:
        if self.term_names is None:
            self.term_names = list(terms)
        self.pending.append(torch.stack([terms[n].detach().float() for n in self.term_names]))
        self.images += images

    def due(self, end_of_epoch: bool) -> bool:
        return len(self.pending) >= self.cfg.log_every or end_of_epoch

    def flush(self, pos: Position) -> None:
        if not self.pending:
            return
        cfg, names = self.cfg, self.term_names or []
        taken, self.pending = self.pending, []  # an interrupt inside cannot log these steps twice
        values = torch.stack(taken).float().cpu()  # one device sync per interval
        bad = ~torch.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            step = pos.global_step - len(taken) + row + 1
            raise NonFiniteLoss(
                f"loss term {names[col]!r} became {values[row, col].item()} at step {step} "
                f"(epoch {pos.epoch + 1}); stopping. {self.kept()}"
            )
        elapsed = time.perf_counter() - self.started
        record = {
            "epoch": pos.epoch + 1, "step": pos.step_in_epoch, "global_step": pos.global_step,
            "lr": self.parts.optimizer.param_groups[1]["lr"],
            # `align_weight` (and the ramp of `id_warmup_epochs`) at the interval's last step
            **({"align_weight": align_factor(cfg, pos.global_step - 1, pos.steps_per_epoch)}
               if cfg.id_warmup_epochs or cfg.align_weight != 1 else {}),
            # loss terms as loss/<name>; "disc_acc" and "hinge/<term>" are not losses
            **{n if n == "disc_acc" or "/" in n else f"loss/{n}": float(v)
               for n, v in zip(names, values.mean(0))},
            **omega_values(self.parts.model),
            "images_per_s": self.images / elapsed if elapsed > 0 else float("nan"),
        }
        device = self.parts.step.device
        if device.type == "cuda":
            record["gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        self.history.append(record)
        if self.write:
            append_metrics(self.run_dir, record)
        if self.tb is not None:
            self.tb.write(record)
        if self.callback is not None:
            self.callback(record)
        self.started, self.images = time.perf_counter(), 0

    def show_on(self, bar: Any) -> None:
        """The last record's loss and images/s beside the progress bar."""
        if self.history:
            last = self.history[-1]
            bar.set_postfix(loss=f"{last['loss/total']:.3f}", img_s=f"{last['images_per_s']:.0f}")

    def add_validation(self, val_map: float, global_step: int) -> None:
        """The end-of-epoch validation mAP, on the epoch's last record and in TensorBoard."""
        if self.history:
            self.history[-1]["val_mAP"] = val_map
        if self.tb is not None:
            self.tb.write({"global_step": global_step, "val_mAP": val_map})


class Checkpointer:
    """The run's checkpoints: last.pt (and epoch_NNN.pt with `keep_snapshots`) when an
    epoch closes, best.pt when validation improves, last.pt again on an interrupt.
    Written by the main process only (`write`)."""

    def __init__(self, parts: Assembly, dataset: VIDataset, run_dir: Path,
                 best: dict[str, Any], *, write: bool) -> None:
        self.parts, self.cfg, self.dataset, self.write = parts, parts.cfg, dataset, write
        self.last = last_checkpoint(run_dir)
        self.best = best  # the best validation mAP so far and its epoch
        self.saved: dict[str, int] = {}  # what last.pt holds, once written here

    def state(self, global_step: int, epoch: int, best: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        return training_state(self.parts, self.cfg, self.dataset, global_step=global_step,
                              epoch=epoch, best=self.best if best is None else best)

    def close_epoch(self, done: int, global_step: int, val_map: float | None) -> None:
        if not self.write:
            # the main process writes it; every rank's messages (`kept`) say it exists
            self.saved = {"epoch": done, "global_step": global_step}
            return
        if val_map is not None and val_map > self.best["mAP"]:
            candidate = {"mAP": val_map, "epoch": done}
            # best.pt first: a record of a best checkpoint that was never written
            # would keep a later, better epoch from replacing it
            save_checkpoint(self.last.with_name("best.pt"),
                            self.state(global_step, done, candidate))
            self.best = candidate
        state = self.state(global_step, done)
        save_checkpoint(self.last, state)
        self.saved = {"epoch": done, "global_step": global_step}
        if self.cfg.keep_snapshots:
            save_checkpoint(self.last.with_name(f"epoch_{done:03d}.pt"), state)

    def save_interrupted(self, pos: Position) -> str:
        """Save the state after the last completed step (unless last.pt holds it); the
        message that says where the run stopped."""
        if self.saved != {"epoch": pos.closed, "global_step": pos.global_step}:
            save_checkpoint(self.last, self.state(pos.global_step, pos.closed))
        where = ("all epochs trained, not yet evaluated" if pos.closed == self.cfg.epochs else
                 f"epoch {pos.closed + 1}, step {pos.global_step - pos.closed * pos.steps_per_epoch}")
        return (f"interrupted: saved {where} (global step {pos.global_step}) to {self.last}; "
                "run again with --resume to continue")

    def kept(self) -> str:
        """What the folder keeps to continue from, for a run that stops on an error."""
        if self.saved:
            return (f"The last checkpoint, {self.last} (epoch {self.saved['epoch']}, global "
                    f"step {self.saved['global_step']}), was written before it; a --resume "
                    "from it trains the same steps again, so change what made the loss "
                    "diverge (e.g. a lower lr) and train into another --out")
        return (f"No checkpoint was written (the first comes at the end of epoch "
                f"{min(self.cfg.checkpoint_every, self.cfg.epochs)}): {self.last.parent.parent} "
                "holds the configuration and the metrics of the steps trained, nothing to "
                "continue from; change what made the loss diverge (e.g. a lower lr) and train "
                "into another --out, or delete the folder and train into it again")

    def nothing_saved(self) -> str:
        kept = (f"{self.last} keeps the last checkpoint" if self.last.exists()
                else "no checkpoint was written yet")
        return f"interrupted inside a training step: nothing saved; {kept}"


def _stop_requested(guard: InterruptGuard, sync: bool, world: int, device: torch.device) -> bool:
    """Ctrl-C seen; under DDP the ranks agree at logging points only (one collective)."""
    if world == 1:
        return guard.requested
    if not sync:
        return False
    flag = torch.tensor([int(guard.requested)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


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
    configuration to match it except for `RESUME_SAFE_KEYS` (a run stopped before its
    first checkpoint starts again from step 0). Ctrl-C finishes the step in flight and
    saves it (see `InterruptGuard`). While another process writes `run_dir` the call is
    refused before any work (`fmcnet.run_lock`).
    """
    validate(cfg)  # a Config built by hand gets the checks make_config applies
    run_dir = Path(run_dir)
    what = "train --resume" if resume else "train"
    if wants_cpu_ranks(cfg, pick_device(cfg.device)):  # cpu_ranks: one process per rank
        with hold_run(run_dir, what):  # the ranks write under this process's lock
            run_cpu_ranks(cfg, run_dir, train, resume=resume, evaluate=evaluate,
                          callback=callback)
            return _finished_run(cfg, run_dir, evaluate)
    rank, world = _distributed()
    # One writer per run folder: a second train or evaluate is refused before any work,
    # naming this one; the lock goes however the run ends (fmcnet.run_lock).
    with hold_run(run_dir, what, enabled=rank == 0):
        return _train(cfg, run_dir, rank, world, resume=resume, dataset=dataset,
                      evaluate=evaluate, callback=callback)


def _train(cfg: Config, run_dir: Path, rank: int, world: int, *, resume: bool,
           dataset: VIDataset | None, evaluate: bool,
           callback: Callable[[dict[str, Any]], None] | None) -> TrainResult:
    """`train()` in the run folder it holds, as rank `rank` of `world`."""
    from fmcnet.data import dataset_for_config

    # The code that trains is the code of this moment: results.json names it, not the
    # commit the working tree has reached by the time the evaluation ends.
    commit = git_commit()
    is_main = rank == 0
    show = cfg.progress and is_main

    # The cheap checks come first: the folder, the checkpoint's configuration, the device.
    ckpt = resume_checkpoint(run_dir, cfg) if resume else None  # None: a restart from step 0
    if not resume and is_main:
        refuse_existing_run(run_dir)
    device = _training_device(cfg, world)
    seed_everything(cfg.seed + rank)
    set_backend_flags(device, cfg.cpu_threads)
    # Before any data is loaded: a run that asked for ImageNet weights never trains without.
    init = check_pretrained(cfg.backbone, pretrained=cfg.pretrained,
                            pretrained_path=cfg.weights_path, width=cfg.backbone_width)
    if is_main:
        print(_describe_init(init, cfg))

    dataset = dataset or dataset_for_config(cfg)
    if ckpt is not None:
        check_dataset(ckpt, dataset, last_checkpoint(run_dir), training=True)
    images = TrainingImages.load(dataset, cfg, device, progress=show)
    parts = assemble(cfg, images, dataset.train.num_classes, device, rank=rank, world=world)
    spe = parts.steps_per_epoch
    pos, best = Position(spe), {"mAP": -1.0, "epoch": None}
    if ckpt is not None:
        pos.global_step, pos.closed, saved_best = restore_training_state(
            parts, ckpt, last_checkpoint(run_dir))
        best = best if saved_best is None else saved_best
        if is_main:
            print(f"resuming {run_dir} at epoch {pos.closed + 1}/{cfg.epochs}, step "
                  f"{pos.global_step} (lr factor {lr_factor(cfg, pos.global_step, spe):.4g})")
    saver = Checkpointer(parts, dataset, run_dir, best, write=is_main)
    if ckpt is not None:  # last.pt holds the resumed state until the next one is written
        saver.saved = {"epoch": pos.closed, "global_step": pos.global_step}
    log = MetricsLog(parts, run_dir, write=is_main, callback=callback, kept=saver.kept)
    guard = InterruptGuard()
    # in a log the per-epoch lines say it all: the outer bar stays silent there
    epochs = _progress(range(pos.closed, cfg.epochs), show, desc="epochs", unit="epoch",
                       initial=pos.closed, total=cfg.epochs, line=False, interval=0)
    pos.epoch, in_step = pos.closed, False
    try:
        with guard:
            # the folder is written under the guard: from its first file on, an interrupt
            # leaves a checkpoint to resume
            if is_main:
                open_run_folder(run_dir, cfg, ckpt, restart=resume and ckpt is None)
            # a resumed run drops the events an interrupted attempt wrote after its checkpoint
            log.open_tensorboard(enabled=cfg.tensorboard and is_main,
                                 purge_step=pos.global_step + 1 if ckpt is not None else None)
            for epoch in epochs:
                pos.epoch = epoch
                parts.model.train()
                bar = _epoch_batches(parts, pos, show)
                for idx_v, idx_i in bar:
                    in_step = True  # from here the state is mid-step until it completes
                    parts.set_schedule(pos.global_step)  # learning rates, alignment weight
                    terms = parts.step(*parts.batches(idx_v, idx_i))
                    pos.global_step += 1
                    in_step = False

                    log.add(terms, len(idx_v) + len(idx_i))
                    logged = log.due(end_of_epoch=pos.step_in_epoch == spe)
                    if logged:
                        log.flush(pos)
                        if show:
                            log.show_on(bar)
                    # the last step's interrupt waits for the end-of-epoch checkpoint
                    if pos.step_in_epoch < spe and _stop_requested(guard, logged, world, device):
                        raise KeyboardInterrupt
                log.flush(pos)
                _close_epoch(epoch + 1, pos, parts, dataset, log, saver)  # validate, checkpoint
                pos.closed = epoch + 1
                if _stop_requested(guard, True, world, device):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        log.close()
        if is_main and in_step:
            print(saver.nothing_saved(), file=sys.stderr)
        elif is_main:
            log.flush(pos)
            print(saver.save_interrupted(pos), file=sys.stderr)
        raise
    log.close()
    model, results = parts.model, None
    if evaluate and is_main:
        model, results = _evaluate(parts.model, dataset, cfg, run_dir, device, saver.best, commit)
    if world > 1:
        dist.barrier()
    return TrainResult(run_dir, model, dataset, cfg, results, log.history)


def _epoch_batches(parts: Assembly, pos: Position, show: bool) -> Any:
    """The batches of `pos.epoch` that are still to train: all of them, the rest of them
    after a resume mid-epoch, none when its last step is done (its end-of-epoch work may
    not be)."""
    if pos.step_in_epoch >= pos.steps_per_epoch:
        return ()
    cfg = parts.cfg
    parts.sampler.load_state_dict({"epoch": pos.epoch, "position": pos.step_in_epoch,
                                   "seed": cfg.seed})
    return _progress(parts.sampler, show, desc=f"epoch {pos.epoch + 1}/{cfg.epochs}",
                     leave=False, line=True, unit="steps",
                     total=pos.steps_per_epoch - pos.step_in_epoch)


def _finished_run(cfg: Config, run_dir: Path, evaluate: bool) -> TrainResult:
    """A run that other processes trained, as `train()` returns it: the model evaluated
    (the best validation checkpoint when the run kept one), its results and metrics."""
    from fmcnet.data import dataset_for_config

    last = last_checkpoint(run_dir)
    best = last.with_name("best.pt")
    chosen = best if cfg.validate and cfg.keep_best_val and best.exists() else last
    model, _ = load_model_from_checkpoint(chosen, cfg)
    results = read_results(run_dir, missing_ok=True) if evaluate else None
    return TrainResult(run_dir, model, dataset_for_config(cfg), cfg, results, read_metrics(run_dir))


def _close_epoch(done: int, pos: Position, parts: Assembly, dataset: VIDataset,
                 log: MetricsLog, saver: Checkpointer) -> None:
    """The end of every `checkpoint_every`-th epoch and of the last: the validation mAP
    (with `validate`) and the checkpoints."""
    cfg = parts.cfg
    if not (done % cfg.checkpoint_every == 0 or done == cfg.epochs):
        return
    val_map = None
    if cfg.validate and cfg.keep_best_val and dataset.val is not None:
        val_map = validation_map(parts.model, dataset, cfg, parts.step.device)
        log.add_validation(val_map, pos.global_step)
    saver.close_epoch(done, pos.global_step, val_map)


def _evaluate(model: FMCNet, dataset: VIDataset, cfg: Config, run_dir: Path,
              device: torch.device, best: dict[str, Any], commit: str
              ) -> tuple[FMCNet, dict[str, Any]]:
    """The finished run's evaluation: the best validation checkpoint's model when the run
    validated, else the last epoch's."""
    if cfg.validate and best["epoch"] is not None:
        model, _ = load_model_from_checkpoint(last_checkpoint(run_dir).with_name("best.pt"),
                                              cfg, dataset, device)
        selection = (f"best validation mAP ({best['mAP']:.2f}%) at epoch {best['epoch']}; "
                     "val ids held out")
    else:
        selection = (f"last epoch ({cfg.epochs}); val ids held out" if cfg.validate else
                     f"last epoch ({cfg.epochs}); trained on train+val as the paper")
    results = evaluate_run(model, dataset, cfg, run_dir, device=device, selection=selection,
                           commit=commit)
    return model, results


def _training_device(cfg: Config, world: int) -> torch.device:
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


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

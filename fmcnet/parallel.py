"""Data-parallel training on a CPU machine: `cpu_ranks` processes, one core each.

A small network's step is many short operations, so a second thread gains little and,
beside another busy process, loses (BENCHMARKS.md); a second *process* with its own batch
keeps both cores busy. With `cpu_ranks` > 1 on a CPU, `train()` hands the run to
`run_cpu_ranks`: it starts that many ranks of `torch.distributed` on gloo (as
`torchrun --nproc_per_node N` would), each drawing its own P x K batch of other identities
(`CrossModalitySampler` with rank / world size), the gradients averaged by DDP. A step
therefore trains on `cpu_ranks` x P x K images per modality.

The parent process prepares the data (the synthetic set, the image caches) before the
ranks start, so they never build them twice, and passes every new metrics record to the
caller's callback; `train()` then returns the finished run from its folder. The parent
holds the run folder's lock (`fmcnet.run_lock`) while the ranks train under it. A rank that fails stops
the others; Ctrl-C reaches every rank, which save and stop together (`InterruptGuard`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fmcnet.config import Config, config_from_dict
from fmcnet.utils import FMCNetError


def wants_cpu_ranks(cfg: Config, device: torch.device) -> bool:
    """Whether `train()` should start `cfg.cpu_ranks` ranks itself: a CPU run that asks for
    more than one and is not already one rank of a launch (torchrun sets WORLD_SIZE)."""
    return (cfg.cpu_ranks > 1 and device.type == "cpu"
            and int(os.environ.get("WORLD_SIZE", "1")) <= 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(target: Callable[..., Any], rank: int, world: int, port: int,
               cfg: dict[str, Any], run_dir: str, resume: bool, evaluate: bool) -> None:
    from fmcnet.run_lock import PARENT_LOCK_ENV, lock_path

    # the parent holds the run folder's lock for its ranks (`train` takes it around
    # `run_cpu_ranks`): rank 0 writes under it instead of refusing itself
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      **{PARENT_LOCK_ENV: str(lock_path(run_dir))})
    try:
        target(config_from_dict(cfg), run_dir, resume=resume, evaluate=evaluate)
    except FMCNetError as exc:
        print(f"error (rank {rank}): {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


class _MetricsFollower:
    """Passes the records appended to metrics.jsonl since the last call to `callback`."""

    def __init__(self, path: Path, callback: Callable[[dict[str, Any]], None] | None) -> None:
        self.path, self.callback = path, callback
        self.offset = path.stat().st_size if path.exists() else 0

    def __call__(self) -> None:
        if self.callback is None or not self.path.exists():
            return
        with open(self.path) as fh:
            fh.seek(self.offset)
            while True:
                line = fh.readline()
                if not line.endswith("\n"):  # a record being written: read it next time
                    break
                self.offset += len(line)
                try:
                    self.callback(json.loads(line))
                except ValueError:
                    continue


def run_cpu_ranks(cfg: Config, run_dir: str | os.PathLike, target: Callable[..., Any], *,
                  resume: bool, evaluate: bool,
                  callback: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run `target(cfg, run_dir, resume=..., evaluate=...)` (`fmcnet.train.train`) in
    `cfg.cpu_ranks` processes on this CPU and wait for them.

    The ranks load the dataset the configuration names (a `dataset` object cannot cross a
    process boundary); the data is prepared here first, so they never build it twice.
    """
    from fmcnet.data import dataset_for_config
    from fmcnet.data.cache import load_images

    run_dir = Path(run_dir)
    dataset = dataset_for_config(cfg)
    for images in (dataset.train.visible, dataset.train.infrared):
        load_images(images, (cfg.height, cfg.width), progress=cfg.progress)
    port = _free_port()
    context = multiprocessing.get_context("spawn")
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.to_dict().items()}
    ranks = [context.Process(target=_rank_main, name=f"fmcnet-rank{r}",
                             args=(target, r, cfg.cpu_ranks, port, plain, str(run_dir), resume,
                                   evaluate))
             for r in range(cfg.cpu_ranks)]
    follow = _MetricsFollower(run_dir / "metrics.jsonl", callback)
    for p in ranks:
        p.start()
    try:
        while any(p.is_alive() for p in ranks):
            follow()
            if any(p.exitcode not in (None, 0) for p in ranks):
                time.sleep(2.0)  # let an interrupted run's ranks save and stop together
                for p in ranks:
                    if p.is_alive():
                        p.terminate()
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        # Ctrl-C reached the ranks too (one process group): they save and stop
        for p in ranks:
            p.join()
        raise
    for p in ranks:
        p.join()
    follow()
    codes = [p.exitcode for p in ranks]
    if any(c == 130 for c in codes):
        raise KeyboardInterrupt
    if any(codes):
        last = run_dir / "checkpoints" / "last.pt"
        kept = (f"{last} keeps the last checkpoint" if last.exists() else
                f"no checkpoint was written in {run_dir}")
        raise FMCNetError(f"training in {cfg.cpu_ranks} CPU ranks failed (exit codes {codes}; "
                          f"each rank's message is above); {kept}")

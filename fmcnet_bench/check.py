"""The GPU check: its sections run in order within a time budget, the report rewritten
after each (`python -m fmcnet gpu-check`, `make gpu-check`; see `fmcnet_bench`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fmcnet.assembly import set_backend_flags
from fmcnet.checkpoints import save_checkpoint
from fmcnet.model import FMCNet
from fmcnet.utils import FMCNetError, atomic_write_json, atomic_write_text, pick_device
from fmcnet_bench.plan import GPU_PLAN, SECTION_NEEDS_S, SECTIONS, TINY_PLAN, Plan, step_config
from fmcnet_bench.report import environment, estimate, goals, markdown
from fmcnet_bench.sections.compile import section_compile
from fmcnet_bench.sections.data import section_data
from fmcnet_bench.sections.extraction import section_extraction
from fmcnet_bench.sections.matmul import section_matmul
from fmcnet_bench.sections.protocol import section_protocol
from fmcnet_bench.sections.run import section_run
from fmcnet_bench.sections.step import section_step
from fmcnet_bench.sysu import SYSU_TRAIN_IDS
from fmcnet_bench.timing import jsonable, rounded
from fmcnet_bench.trainer import Trainer


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


class Check:
    """State shared by the sections, and the report written after each of them."""

    def __init__(self, out_dir: Path, device: torch.device, plan: Plan, budget: Budget,
                 seed: int, mode: str) -> None:
        self.out_dir, self.device, self.plan, self.budget = out_dir, device, plan, budget
        self.seed, self.mode = seed, mode
        self.num_classes = SYSU_TRAIN_IDS
        self.matmul_tflops: float | None = None
        self.step_flops: float | None = None
        self.default_step_s: float | None = None
        self.run_step_s: float | None = None
        self.compile_step_s: float | None = None
        self.compile_s: float | None = None
        self.extract_images_per_s: dict[str, float] = {}
        self.protocol_s: float | None = None
        self.checkpoint_s: float | None = None
        self.steps_per_epoch: int | None = None
        self.variant_step_s: dict[str, float] = {}
        self.train_set: dict[str, Any] | None = None
        self.trained_model = None
        with torch.device("meta"):
            self.feature_dim = FMCNet.from_config(step_config(self), 8).feature_dim
        self.result: dict[str, Any] = {"check": "gpu-check", "mode": mode,
                                       "environment": environment(device), "sections": {}}

    def save_checkpoint_probe(self, trainer: Trainer) -> None:
        """Seconds to write one checkpoint as train() writes it (for the estimate)."""
        path = self.out_dir / ".checkpoint-probe.pt"
        start = time.perf_counter()
        save_checkpoint(path, {"model": trainer.model.state_dict(),
                               "optimizer": trainer.optimizer.state_dict(),
                               "disc_optimizer": trainer.disc_optimizer.state_dict()})
        self.checkpoint_s = time.perf_counter() - start
        path.unlink(missing_ok=True)

    def partial(self, name: str, body: dict[str, Any]) -> None:
        """Write a section's results so far (a run killed mid-section keeps them)."""
        self.result["sections"][name] = {"status": "running", **body}
        self.save()

    def save(self) -> None:
        self.result["estimate"] = estimate(self)
        self.result["goals"] = goals(self.result) if self.device.type == "cuda" else {
            "note": "goals apply to one H100/H200; not judged on a CPU dry run"}
        self.result["wall_s"] = rounded(self.budget.elapsed())
        atomic_write_json(self.out_dir / "gpu-check.json", jsonable(self.result))
        atomic_write_text(self.out_dir / "gpu-check.md", markdown(self.result))


SECTION_FUNCS: dict[str, Callable[[Check], dict[str, Any]]] = {
    "matmul": section_matmul, "step": section_step, "data": section_data,
    "run": section_run, "extraction": section_extraction, "protocol": section_protocol,
    "compile": section_compile,
}


def run_check(out_dir: str | os.PathLike, *, device: str = "auto", tiny: bool = False,
              budget_s: float = 400.0, sections: list[str] | None = None, seed: int = 0,
              compile: bool = True, log: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Run the check; returns the result written to `out_dir`/gpu-check.json."""
    if not (isinstance(budget_s, (int, float)) and math.isfinite(budget_s) and budget_s > 0):
        # with no time left every section is skipped: a check that checks nothing
        raise FMCNetError(
            f"budget_s must be a positive, finite number of seconds (the time all sections "
            f"share; default 400), got {budget_s!r}: with none left every section would be "
            "skipped and nothing checked")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dev = pick_device(device)
    if dev.type != "cuda" and not tiny:
        raise FMCNetError(
            f"gpu-check found no CUDA device (device={device!r} -> {dev}); the full check "
            "needs one GPU. On a CPU run the dry run: gpu-check --device cpu --tiny")
    names = list(sections or SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise FMCNetError(f"unknown gpu-check section(s) {unknown}; choose from {list(SECTIONS)}")
    if not compile and "compile" in names:
        names.remove("compile")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = TINY_PLAN if tiny else GPU_PLAN
    budget = Budget(budget_s)
    set_backend_flags(dev)
    ctx = Check(out, dev, plan, budget, seed, "tiny dry run" if tiny else "full")
    ctx.result["budget_s"] = budget_s
    ctx.result["plan"] = dataclasses.asdict(plan)
    for name in names:
        need = 0 if tiny else SECTION_NEEDS_S[name]
        if budget.left() < need:
            ctx.result["sections"][name] = {
                "status": "skipped", "reason": f"budget: {budget.left():.0f} s left of "
                f"{budget_s:.0f}, the section needs ~{need} s"}
            log(f"gpu-check: {name} skipped (budget)")
            ctx.save()
            continue
        log(f"gpu-check: {name} ({budget.elapsed():.0f} s elapsed)")
        start = time.perf_counter()
        try:
            body = SECTION_FUNCS[name](ctx)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - one section's failure is reported, not fatal
            body = {"error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=8).splitlines()[-12:]}
            status = "error"
            log(f"gpu-check: {name} FAILED: {body['error']}")
        if name == "compile" and status == "ok":
            ctx.compile_s = body.get("compile_s")
        ctx.result["sections"][name] = {"status": status,
                                        "seconds": rounded(time.perf_counter() - start), **body}
        ctx.save()
    return ctx.result


def failed_sections(result: dict[str, Any]) -> list[str]:
    return [n for n, s in result["sections"].items() if s.get("status") == "error"]

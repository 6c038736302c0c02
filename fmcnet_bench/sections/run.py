"""``run``: 200+ steps of the ``paper`` profile on the SYSU-sized set from random init
(every loss finite, MD hinge activity, D accuracy), then the same first steps in bf16 and
fp32 from one seed (the loss gap, with an fp32 repeat as the noise floor).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from fmcnet.optim import lr_factor
from fmcnet.utils import FMCNetError
from fmcnet_bench.plan import describe_shape, step_config
from fmcnet_bench.timing import peak_memory_gb, reset_memory, rounded, sync
from fmcnet_bench.trainer import Trainer, run_steps

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def section_run(ctx: Check) -> dict[str, Any]:
    """200+ steps of the profile from random init on the SYSU-sized set, then the same
    first steps in bf16 and in fp32 (twice: the fp32 repeat is the noise floor)."""
    plan, device, data = ctx.plan, ctx.device, ctx.train_set
    if data is None:
        raise FMCNetError("section run needs section data (the SYSU-sized set)")
    cfg = step_config(ctx)
    images = (data["images_v"], data["images_i"], data["labels_v"], data["labels_i"])
    reset_memory(device)
    trainer = Trainer(cfg, *images, plan.train_ids, device, seed=ctx.seed)
    sync(device)
    start = time.perf_counter()
    names, values = run_steps(trainer, plan.run_steps, cfg.log_every)
    sync(device)
    total_s = time.perf_counter() - start
    # The steady rate, timed after the run: cuDNN autotuning and allocator growth of the
    # first steps are behind it (the whole run's rate above includes them).
    step_s, steps_timed = trainer.timed(plan)
    window = max(1, min(20, len(values) // 3))
    first, last = values[:window].mean(0), values[-window:].mean(0)
    terms = {n: {"first": rounded(float(a)), "last": rounded(float(b))}
             for n, a, b in zip(names, first, last)}
    out: dict[str, Any] = {
        "config": f"profile {cfg.profile}: {describe_shape(cfg)}, {cfg.optimizer} lr "
                  f"{cfg.lr} (warm-up {cfg.warmup_epochs} epochs), random init, bf16 "
                  f"autocast {'on' if trainer.step.autocast_enabled else 'off'}, "
                  f"channels_last {cfg.channels_last}",
        "steps": len(values), "steps_per_epoch": len(trainer.sampler),
        "lr_factor_last": rounded(lr_factor(cfg, len(values) - 1, len(trainer.sampler))),
        "all_finite": True, "wall_s": rounded(total_s),
        "images_per_s_whole_run": rounded(trainer.images_per_step * len(values) / total_s),
        "images_per_s_steady": rounded(trainer.images_per_step / step_s),
        "steady_steps_timed": steps_timed,
        "peak_memory_gb": peak_memory_gb(device),
        "window": f"mean of the first / last {window} steps",
        "terms": terms,
        "hinge_activity": {n: terms[n] for n in names if n.startswith("hinge/")},
        "disc_acc": terms.get("disc_acc"),
    }
    if not out["hinge_activity"]:
        out["hinge_activity_note"] = "the step returned no hinge/* terms"
    ctx.run_step_s = step_s
    ctx.trained_model = trainer.model
    ctx.steps_per_epoch = len(trainer.sampler)
    ctx.save_checkpoint_probe(trainer)
    del trainer
    reset_memory(device)

    # The same first steps from one seed: bf16 vs fp32, and fp32 vs fp32.
    totals = {}
    for name, amp in (("bf16", True), ("fp32", False), ("fp32_repeat", False)):
        t = Trainer(step_config(ctx, amp=amp), *images, plan.train_ids, device, seed=ctx.seed)
        gap_names, gap_values = run_steps(t, plan.gap_steps, plan.gap_steps)
        totals[name] = gap_values[:, gap_names.index("total")]
        del t
        reset_memory(device)

    def gap(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
        return {"max_rel": rounded(float(rel.max())), "mean_rel": rounded(float(rel.mean())),
                "last_rel": rounded(float(rel[-1]))}

    out["precision_gap"] = {
        "steps": plan.gap_steps, "seed": ctx.seed, "term": "total",
        "bf16_vs_fp32": gap(totals["bf16"], totals["fp32"]),
        "fp32_vs_fp32_repeat": gap(totals["fp32_repeat"], totals["fp32"]),
        "total_bf16": [rounded(float(v), 5) for v in totals["bf16"]],
        "total_fp32": [rounded(float(v), 5) for v in totals["fp32"]],
    }
    return out

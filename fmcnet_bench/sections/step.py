"""``step``: the real training step (`fmcnet.step.TrainStep` fed by `OnDeviceBatches`, built
by `fmcnet.assembly`) at the profile's shape: images/s, peak memory and MFU for fp32, bf16
and bf16 + channels_last; cuDNN autotuning off vs on; images on the device vs host-pinned;
the augmentation's share of a step and the phase breakdown.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmcnet.assembly import set_backend_flags
from fmcnet.config import Config
from fmcnet_bench.flops import count_step_flops, datasheet_bf16_tflops
from fmcnet_bench.plan import describe_shape, step_config
from fmcnet_bench.timing import PhaseClock, peak_memory_gb, reset_memory, rounded, sync
from fmcnet_bench.trainer import Trainer, step_images

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def measure_variant(ctx: Check, name: str, cfg: Config, data, *, compile_backend: str | None = None
             ) -> dict[str, Any]:
    """Images/s, peak memory and MFU of the real step in one configuration."""
    device, plan = ctx.device, ctx.plan
    reset_memory(device)
    trainer = Trainer(cfg, *data, ctx.num_classes, device, compile_backend=compile_backend)
    sync(device)
    start = time.perf_counter()
    trainer()
    sync(device)
    first_s = time.perf_counter() - start
    for _ in range(plan.warmup_steps):
        trainer()
    step_s, steps = trainer.timed(plan)
    row: dict[str, Any] = {
        "images_per_s": rounded(trainer.images_per_step / step_s),
        "step_ms": rounded(step_s * 1e3), "steps_timed": steps,
        "first_step_s": rounded(first_s), "peak_memory_gb": peak_memory_gb(device),
    }
    if ctx.step_flops:
        achieved = ctx.step_flops / step_s / 1e12
        row["achieved_tflops"] = rounded(achieved)
        if ctx.matmul_tflops:
            row["mfu"] = rounded(achieved / ctx.matmul_tflops)
        peak, _ = datasheet_bf16_tflops(device)
        if peak:
            row["mfu_datasheet"] = rounded(achieved / peak)
    ctx.variant_step_s[name] = step_s
    del trainer
    reset_memory(device)
    return row


def section_step(ctx: Check) -> dict[str, Any]:
    """The real step at the profile's shape: precision and layout variants, cuDNN
    autotuning, images on the device vs pinned host memory, augmentation share, phases."""
    device, plan = ctx.device, ctx.plan
    set_backend_flags(device)
    base = step_config(ctx)
    ctx.step_flops = count_step_flops(base, ctx.num_classes)
    out: dict[str, Any] = {
        "shape": describe_shape(base), "flops_per_step": rounded(ctx.step_flops),
        "images_per_step": 2 * base.batch_size, "num_classes": ctx.num_classes,
        "mfu_denominator": "the bf16 matmul rate measured in this run (section matmul)",
    }
    data = step_images(plan, base, device)
    out["image_location"] = data[0].location
    variants = {
        "bf16_channels_last": {"amp": True, "channels_last": True},  # what train() runs
        "fp32": {"amp": False, "channels_last": False},
        "bf16": {"amp": True, "channels_last": False},
    }
    rows: dict[str, Any] = {}
    out["variants"] = rows
    for name, opts in variants.items():
        rows[name] = measure_variant(ctx, name, step_config(ctx, **opts), data)
        ctx.partial("step", out)
    default = rows["bf16_channels_last"]
    for row in rows.values():
        row["vs_fp32"] = rounded(row["images_per_s"] / rows["fp32"]["images_per_s"])
    ctx.default_step_s = ctx.variant_step_s["bf16_channels_last"]

    # Baseline for the backend flags train() sets: cuDNN autotuning off.
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        off = measure_variant(ctx, "cudnn_benchmark_off", base, data)
        set_backend_flags(device)
        out["cudnn_benchmark"] = {
            "off_images_per_s": off["images_per_s"], "on_images_per_s": default["images_per_s"],
            "on_vs_off": rounded(default["images_per_s"] / off["images_per_s"])}
    else:
        out["cudnn_benchmark"] = {"skipped": "CUDA only"}

    # Images resident on the device vs gathered from pinned host memory, interleaved.
    pinned = step_images(plan, base, device, on_device=False)
    trainers = {"device": Trainer(base, *data, ctx.num_classes, device),
                "pinned": Trainer(base, *pinned, ctx.num_classes, device)}
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for t in trainers.values():
        for _ in range(plan.warmup_steps):
            t()
    for r in range(2):
        for k in (list(trainers) if r % 2 == 0 else list(trainers)[::-1]):
            times[k].append(trainers[k].timed(plan)[0])
    dev_s, pin_s = (float(np.median(times[k])) for k in ("device", "pinned"))
    out["data_location"] = {
        "device_images_per_s": rounded(trainers["device"].images_per_step / dev_s),
        "pinned_images_per_s": rounded(trainers["pinned"].images_per_step / pin_s),
        "device_vs_pinned": rounded(pin_s / dev_s),
        "locations": [data[0].location, pinned[0].location],
    }

    # The augmentation's share: OnDeviceBatches alone vs the whole step, same trainer.
    trainer = trainers["device"]
    n_data = max(2, min(200, round(plan.min_timed_s / 2 / max(dev_s, 1e-6))))
    sync(device)
    start = time.perf_counter()
    for _ in range(n_data):
        trainer.data()
    sync(device)
    data_s = (time.perf_counter() - start) / n_data
    out["augmentation"] = {"gather_augment_ms": rounded(data_s * 1e3),
                           "step_ms": rounded(dev_s * 1e3),
                           "share_of_step": rounded(data_s / dev_s)}

    # Phase breakdown (synchronised marks: slower than the free-running step).
    clock = PhaseClock(device)
    n_phase = max(2, min(50, n_data // 2))
    for _ in range(n_phase):
        clock.start()
        x = trainer.data()
        clock.mark("data")
        trainer.step(*x, mark=clock.mark)
    out["phases_ms"] = {k: rounded(v / n_phase * 1e3) for k, v in clock.totals.items()}
    out["phases_note"] = "each phase synchronised: sums to more than the free-running step"
    del trainers, trainer, pinned
    reset_memory(device)
    return out

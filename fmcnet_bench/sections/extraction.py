"""``extraction``: `extract_features` at the profile's resolution, bf16 vs fp32.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmcnet.assembly import build_network
from fmcnet.evaluation.extract import extract_features
from fmcnet.utils import FMCNetError
from fmcnet_bench.plan import step_config
from fmcnet_bench.timing import rounded
from fmcnet_bench.trainer import random_images

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def section_extraction(ctx: Check) -> dict[str, Any]:
    """`extract_features` (the evaluation path: host uint8 -> device -> features) at the
    profile's resolution, bf16 autocast vs fp32, with the model trained in section run."""
    plan, device = ctx.plan, ctx.device
    cfg = step_config(ctx)
    if ctx.trained_model is not None and ctx.train_set is not None:
        model, source = ctx.trained_model, "the model of section run"
        pool = ctx.train_set["host_v"]
        images = pool[np.arange(plan.extract_images) % len(pool)]
    else:
        model = build_network(cfg, ctx.num_classes, device)
        source = "a randomly initialised model"
        images = random_images(plan.extract_images, (cfg.height, cfg.width), 3)
    out: dict[str, Any] = {"images": len(images), "batch_size": cfg.eval_batch_size,
                           "model": source, "feature_dim": model.feature_dim}
    for name, amp in (("bf16", True), ("fp32", False)):
        def run(n: int | None = None, amp: bool = amp) -> torch.Tensor:
            return extract_features(model, images[:n], "visible", device=device,
                                    batch_size=cfg.eval_batch_size, amp=amp, cpu_amp=amp,
                                    channels_last=cfg.channels_last)
        run(cfg.eval_batch_size)  # warm-up: cuDNN autotuning for the batch shape
        start = time.perf_counter()
        feats = run()
        seconds = time.perf_counter() - start  # features come back on the host: synced
        if not torch.isfinite(feats).all():
            raise FMCNetError(f"extraction ({name}) returned non-finite features")
        out[name] = {"seconds": rounded(seconds), "images_per_s": rounded(len(images) / seconds)}
    out["bf16_vs_fp32"] = rounded(out["bf16"]["images_per_s"] / out["fp32"]["images_per_s"])
    ctx.extract_images_per_s = {k: out[k]["images_per_s"] for k in ("bf16", "fp32")}
    return out

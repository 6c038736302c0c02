"""``protocol``: the SYSU-MM01 protocol (4 settings x trials) from features on the device vs
the CPU, and k-reciprocal re-ranking at SYSU-MM01 size.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmcnet.evaluation.rerank import re_ranking
from fmcnet.utils import FMCNetError
from fmcnet_bench.sysu import SysuProtocolRun
from fmcnet_bench.timing import rounded, sync

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def section_protocol(ctx: Check) -> dict[str, Any]:
    """The SYSU-MM01 protocol from features on the device vs on the CPU (same features,
    same trials: the mAPs must agree), and re-ranking at SYSU-MM01 size."""
    plan, device = ctx.plan, ctx.device
    dim = ctx.feature_dim
    rng = np.random.default_rng(ctx.seed)
    run = SysuProtocolRun(rng, dim, plan.trials, plan.test_scale)
    run(device)  # warm-up: CUDA context pieces, cuBLAS handles (not part of evaluation)
    times, maps = [], {}
    for _ in range(3):
        start = time.perf_counter()
        maps = run(device)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    out: dict[str, Any] = {
        "queries": len(run.qf), "gallery_pool": len(run.gf), "feature_dim": dim,
        "settings": len(run.SETTINGS), "trials": plan.trials,
        "seconds": rounded(seconds), "repeats": len(times),
        "mAP_by_setting": {k: rounded(v) for k, v in maps.items()},
        "note": "random identity-structured features, already extracted; what "
                "evaluate_dataset does after extraction",
    }
    ctx.protocol_s = seconds
    ctx.partial("protocol", out)
    # Baseline: the same protocol on the CPU (on the dry run: the CPU twice, same path).
    if ctx.budget.left() > (0 if ctx.device.type == "cpu" else 60):
        start = time.perf_counter()
        cpu_maps = run(torch.device("cpu"))
        cpu_s = time.perf_counter() - start
        diff = max(abs(cpu_maps[k] - maps[k]) for k in maps)
        if diff > 1e-4:
            raise FMCNetError(f"protocol mAP differs between {device.type} and CPU by {diff}")
        out["cpu_baseline"] = {"seconds": rounded(cpu_s),
                               "device_vs_cpu": rounded(cpu_s / seconds),
                               "max_mAP_diff": rounded(diff),
                               "cpu_threads": torch.get_num_threads()}
    else:
        out["cpu_baseline"] = {"skipped": "budget"}

    # Re-ranking: one call per trial when `rerank` is on (the gallery changes per trial).
    rr: dict[str, Any] = {}
    for name in ("all/single", "all/multi"):
        rows = run.plans[name][0]
        q, g = run.qf.to(device), run.gf[torch.from_numpy(rows)].to(device)
        re_ranking(q, g)  # warm-up
        sync(device)
        start = time.perf_counter()
        d = re_ranking(q, g)
        sync(device)
        seconds = time.perf_counter() - start
        if not torch.isfinite(d).all():
            raise FMCNetError(f"re-ranking ({name}) returned non-finite distances")
        rr[name] = {"queries": len(q), "gallery": len(g), "seconds": rounded(seconds)}
    # all and indoor galleries: indoor is about half the all-search gallery
    est = plan.trials * (rr["all/single"]["seconds"] + rr["all/multi"]["seconds"]) * 2
    rr["protocol_with_rerank_estimate_s"] = rounded(est)
    rr["estimate_note"] = ("trials x (single + multi) x 2 settings each: an upper bound, "
                           "indoor galleries are smaller")
    out["rerank"] = rr
    return out

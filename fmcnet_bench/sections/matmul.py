"""``matmul``: the card's own bf16 rate on a large square product (the MFU denominator).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from fmcnet_bench.flops import datasheet_bf16_tflops
from fmcnet_bench.timing import rounded, sync

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def section_matmul(ctx: Check) -> dict[str, Any]:
    """The card's own dense bf16 rate: C = A @ B on square bf16 matrices, best size."""
    device, rows = ctx.device, []
    for n in ctx.plan.matmul_sizes:
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        sync(device)
        reps, start = 0, time.perf_counter()
        while True:
            for _ in range(5):
                a @ b
            reps += 5
            sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= 0.5 * max(ctx.plan.min_timed_s, 0.1) or reps >= 200:
                break
        rows.append({"n": n, "tflops": rounded(2 * n**3 * reps / elapsed / 1e12), "reps": reps})
        del a, b
    best = max(rows, key=lambda r: r["tflops"])
    ctx.matmul_tflops = best["tflops"]
    peak, source = datasheet_bf16_tflops(device)
    return {"sizes": rows, "bf16_tflops": best["tflops"], "datasheet_bf16_tflops": peak,
            "datasheet_source": source,
            "fraction_of_datasheet": rounded(best["tflops"] / peak) if peak else None}

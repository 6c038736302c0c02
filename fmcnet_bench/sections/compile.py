"""``compile``: the step under `torch.compile`, compile time counted (run last: a compiler
failure cannot cost the other sections).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from fmcnet.assembly import set_backend_flags
from fmcnet_bench.flops import count_step_flops
from fmcnet_bench.plan import step_config
from fmcnet_bench.sections.step import measure_variant
from fmcnet_bench.timing import rounded
from fmcnet_bench.trainer import step_images

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def section_compile(ctx: Check) -> dict[str, Any]:
    """bf16 + channels_last + torch.compile: compile time (the first step) counted, and
    the steps it takes to pay for itself against the uncompiled step of section step."""
    set_backend_flags(ctx.device)
    data = step_images(ctx.plan, step_config(ctx), ctx.device)
    cfg = step_config(ctx, channels_last=True, compile=True)
    if ctx.step_flops is None:
        ctx.step_flops = count_step_flops(cfg, ctx.num_classes)
    row = measure_variant(ctx, "bf16_channels_last_compile", cfg, data,
                   compile_backend=ctx.plan.compile_backend)
    torch._dynamo.reset()
    row["backend"] = ctx.plan.compile_backend
    row["compile_s"] = row["first_step_s"]
    eager_s = ctx.default_step_s
    if eager_s:
        compiled_s = row["step_ms"] / 1e3
        row["vs_uncompiled"] = rounded(eager_s / compiled_s)
        saved = eager_s - compiled_s
        row["break_even_steps"] = (int(math.ceil(row["compile_s"] / saved)) if saved > 0
                                   else None)
    ctx.compile_step_s = row["step_ms"] / 1e3
    return row

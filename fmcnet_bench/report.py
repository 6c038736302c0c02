"""The GPU check's report: the environment, the 80-epoch estimate from the measured rates,
the goals judged against them, and the Markdown (`gpu-check.md`, the table on stdout).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmcnet.utils import describe_device, git_commit
from fmcnet_bench.plan import GOALS, step_config
from fmcnet_bench.sysu import (
    PAPER_EPOCHS,
    SYSU_GALLERY_POOL,
    SYSU_QUERIES,
    SYSU_TRAIN_INFRARED,
    SYSU_TRAIN_VISIBLE,
)
from fmcnet_bench.timing import rounded

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "device": describe_device(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:
        env["torchvision"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update({
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "gpu": props.name, "gpu_memory_gb": rounded(props.total_memory / 2**30),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "gpu_count": torch.cuda.device_count(),
            # what "fp32" means for this run: TF32 tensor cores in convolutions / matmuls
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        })
    return env


def estimate(ctx: Check) -> dict[str, Any]:
    """The 80-epoch SYSU-MM01 paper run's wall time from the rates measured above."""
    per_epoch = ctx.steps_per_epoch or math.ceil(
        max(SYSU_TRAIN_VISIBLE, SYSU_TRAIN_INFRARED) / (4 * 8))
    steps = PAPER_EPOCHS * per_epoch
    out: dict[str, Any] = {"epochs": PAPER_EPOCHS, "steps_per_epoch": per_epoch,
                           "steps": steps}
    step_s = ctx.run_step_s or ctx.default_step_s
    if not step_s:
        return {**out, "skipped": "no step rate measured"}
    out["step_rate_from"] = "section run (steady)" if ctx.run_step_s else "section step"
    ckpt_s = (ctx.checkpoint_s or 0.0) * math.ceil(PAPER_EPOCHS / 10)
    eval_images = SYSU_QUERIES + SYSU_GALLERY_POOL
    # the precision the paper profile evaluates in (reported numbers: fp32 unless eval_amp)
    precision = "bf16" if step_config(ctx).eval_amp else "fp32"
    rate = ctx.extract_images_per_s.get(precision)
    eval_s = eval_images / rate if rate else 0.0
    eval_s += ctx.protocol_s or 0.0
    train_s = steps * step_s
    out.update({
        "train_min": rounded(train_s / 60), "checkpoints_min": rounded(ckpt_s / 60),
        "final_evaluation_min": rounded(eval_s / 60),
        "total_min": rounded((train_s + ckpt_s + eval_s) / 60),
        "parts": "steps x measured step time + 8 checkpoints (measured save) + final "
                 f"evaluation (3,803 + 6,775 images at the measured {precision} extraction "
                 "rate + the protocol); the SYSU-MM01 image cache build is not included",
    })
    if ctx.compile_step_s and ctx.default_step_s:
        speedup = ctx.default_step_s / ctx.compile_step_s
        out["total_min_with_compile"] = rounded(
            (train_s / speedup + ckpt_s + eval_s + (ctx.compile_s or 0.0)) / 60)
    return out


def goals(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals for one H100/H200 against what this run measured."""
    s = result["sections"]

    def get(*path: str) -> float | None:
        node: Any = s
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node if isinstance(node, (int, float)) else None

    step = get("step", "variants", "bf16_channels_last", "images_per_s")
    compiled = get("compile", "images_per_s")
    best = max([v for v in (step, compiled) if v is not None], default=None)
    mfu = max([v for v in (get("step", "variants", "bf16_channels_last", "mfu"),
                           get("compile", "mfu")) if v is not None], default=None)
    est = result.get("estimate", {})
    total = min([v for v in (est.get("total_min"), est.get("total_min_with_compile"))
                 if v is not None], default=None)
    rows = {
        "training images/s (bf16, best of eager / compiled)": (best, GOALS["train_images_per_s"], ">="),
        "MFU (vs measured bf16 matmul)": (mfu, GOALS["mfu"], ">="),
        "extraction images/s (bf16, 288x144)": (get("extraction", "bf16", "images_per_s"),
                                                GOALS["extraction_images_per_s"], ">="),
        "SYSU protocol from features (s)": (get("protocol", "seconds"), GOALS["protocol_s"], "<="),
        "80-epoch SYSU run estimate (min)": (total, GOALS["paper_run_min"], "<="),
    }
    out = {}
    for name, (value, goal, op) in rows.items():
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        out[name] = {"value": value, "goal": f"{op} {goal:g}", "met": met}
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        sep = "; " if any(isinstance(x, dict) for x in v) else ", "
        return "[" + sep.join(_fmt(x) for x in v[:8]) + (", ..." if len(v) > 8 else "") + "]"
    return str(v)


def summary_table(result: dict[str, Any]) -> str:
    """The short table for stdout: goals (GPU) or section status (dry run)."""
    lines = ["| check | value | goal | met |", "|---|---|---|---|"]
    g = result.get("goals", {})
    for name, row in g.items():
        if isinstance(row, dict):
            met = {True: "yes", False: "NO", None: "not measured"}[row["met"]]
            lines.append(f"| {name} | {_fmt(row['value'])} | {row['goal']} | {met} |")
    for name, sec in result["sections"].items():
        status = sec.get("status", "?")
        lines.append(f"| section {name} | {status} ({_fmt(sec.get('seconds', ''))} s) | | |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    out = [f"# gpu-check ({result['mode']})", "",
           f"{env['device']}; torch {env['torch']}, torchvision {env['torchvision']}, "
           f"python {env['python']}; commit {env['commit']}; {env['date']}; "
           f"wall {result.get('wall_s')} s", "", summary_table(result), ""]
    for name, sec in result["sections"].items():
        out += [f"## {name}", ""]
        for key, value in sec.items():
            if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
                cols: list[str] = []
                for v in value.values():
                    cols += [k for k in v if k not in cols]
                out += ["", f"**{key}**", "", "| | " + " | ".join(cols) + " |",
                        "|---" * (len(cols) + 1) + "|"]
                for row, v in value.items():
                    out.append(f"| {row} | " + " | ".join(_fmt(v.get(c, "")) for c in cols) + " |")
                out.append("")
            else:
                out.append(f"* {key}: {_fmt(value)}")
        out.append("")
    out += ["## estimate", ""] + [f"* {k}: {_fmt(v)}" for k, v in result.get("estimate", {}).items()]
    return "\n".join(out) + "\n"

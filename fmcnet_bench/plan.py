"""The GPU check's plans (the sizes of a full run on a GPU and of the CPU dry run), its
goals, its sections and the configuration every section builds its step from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from fmcnet.config import Config, make_config
from fmcnet_bench.sysu import SYSU_TRAIN_IDS, SYSU_TRAIN_INFRARED, SYSU_TRAIN_VISIBLE

GOALS = {
    "train_images_per_s": 2500.0,
    "mfu": 0.15,
    "extraction_images_per_s": 10000.0,
    "protocol_s": 1.0,
    "paper_run_min": 30.0,
}

SECTIONS = ("matmul", "step", "data", "run", "extraction", "protocol", "compile")


@dataclass(frozen=True)
class Plan:
    """Sizes of one mode: the real ones on a GPU, toy ones for the CPU dry run."""

    profile: str  # the config profile of the step and the run
    matmul_sizes: tuple[int, ...]
    step_identities: int  # random training images for the step section: ids x per_id
    step_per_id: int
    min_timed_s: float  # each timed block runs at least this long (after warm-up)
    max_timed_steps: int
    warmup_steps: int
    train_ids: int
    train_visible: int
    train_infrared: int
    render_size: tuple[int, int]  # (H, W) rendered; resized to the profile's on the device
    run_steps: int
    gap_steps: int
    extract_images: int
    test_scale: float  # SYSU-MM01 test counts x this
    trials: int
    compile_backend: str


GPU_PLAN = Plan(
    profile="paper", matmul_sizes=(8192, 16384), step_identities=32, step_per_id=16,
    min_timed_s=2.0, max_timed_steps=200, warmup_steps=5,
    train_ids=SYSU_TRAIN_IDS, train_visible=SYSU_TRAIN_VISIBLE,
    train_infrared=SYSU_TRAIN_INFRARED, render_size=(128, 64), run_steps=240, gap_steps=20,
    extract_images=8192, test_scale=1.0, trials=10, compile_backend="inductor",
)
TINY_PLAN = Plan(
    profile="smoke", matmul_sizes=(128, 256), step_identities=4, step_per_id=4,
    min_timed_s=0.0, max_timed_steps=1, warmup_steps=0,
    train_ids=6, train_visible=48, train_infrared=30, render_size=(24, 12), run_steps=6,
    gap_steps=3, extract_images=24, test_scale=0.05, trials=2, compile_backend="aot_eager",
)


# Seconds a section needs on a GPU (generous: H100-class timings x ~3); skipped if the
# budget has less left. The CPU dry run has no such limits.
SECTION_NEEDS_S = {"matmul": 10, "step": 90, "data": 60, "run": 90, "extraction": 30,
                   "protocol": 30, "compile": 150}


class Planned(Protocol):
    """What `step_config` needs of the check: its plan and its device."""

    plan: Plan
    device: torch.device


def step_config(ctx: Planned, **overrides: Any) -> Config:
    """The profile's config as `paper` trains on this device, with variant overrides;
    `amp` and `cpu_amp` move together so the dry run takes the bf16 path on the CPU."""
    amp = overrides.pop("amp", True)
    return make_config(ctx.plan.profile, pretrained=False, progress=False,
                       device=ctx.device.type, amp=amp, cpu_amp=amp, **overrides)


def describe_shape(cfg: Config) -> str:
    return (f"{cfg.backbone} last_stride={cfg.last_stride} {cfg.height}x{cfg.width}, "
            f"P={cfg.num_identities} x K={cfg.num_instances} per modality "
            f"({2 * cfg.batch_size} images per step)")

"""Timing tools every benchmark shares: device syncs, significant figures, phase clocks,
peak memory, JSON without NaN.
"""

from __future__ import annotations

import gc
import math
import time
from typing import Any

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rounded(x: float, digits: int = 3) -> float:
    """`digits` significant figures (readable JSON without losing the point)."""
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x == 0:
        return x
    return round(x, max(0, digits - 1 - int(math.floor(math.log10(abs(x))))))


def peak_memory_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return rounded(torch.cuda.max_memory_allocated(device) / 2**30)


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class PhaseClock:
    """Seconds per phase of a step ("data", then TrainStep's "forward", "backward",
    "optimizer" marks); each mark synchronises the device, so only breakdown blocks use it."""

    PHASES = ("data", "forward", "backward", "optimizer")

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals = dict.fromkeys(self.PHASES, 0.0)
        self.last = 0.0

    def start(self) -> None:
        sync(self.device)
        self.last = time.perf_counter()

    def mark(self, phase: str) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.totals[phase] += now - self.last
        self.last = now


def jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return jsonable(x.item())
    return x

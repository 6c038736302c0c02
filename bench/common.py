"""What every benchmark script shares: arguments, timing, the environment record, output.

Each script times one hot loop against a baseline *in the same run*: repeats of the
two alternate (ours, baseline, baseline, ours, ...), so that load from other
processes on a shared machine hits both alike, and the medians are compared.
CUDA work is synchronised around every timed region.

Scripts import this module as ``common`` (``python bench/<script>.py`` puts ``bench/``
first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from fmcnet.gpu_check import datasheet_bf16_tflops
from fmcnet.utils import describe_device, git_commit, pick_device


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="smaller settings: at most ~2 minutes on a 2-core CPU")
    p.add_argument("--tiny", action="store_true",
                   help="toy sizes that run in seconds (the tests use it); numbers meaningless")
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object on stdout (progress goes to stderr)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per variant (default depends on the mode)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op CPU threads (default: torch's choice)")
    return p


def setup(args: argparse.Namespace) -> torch.device:
    """Apply --threads and pick the device (auto: CUDA when present)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return pick_device(args.device)


def log(msg: str) -> None:
    """Progress for the person watching; stderr, so `--json` stdout stays one object."""
    print(msg, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call, device work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def interleaved(
    fns: dict[str, Callable[[], Any]], *, repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds per call of each function; warm-up calls first, then `repeats` rounds
    in alternating order (ABBA...), so drifting load affects all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(timed(fns[name], device))
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_bf16_tflops(device: torch.device) -> tuple[float | None, str]:
    """(assumed peak, where it comes from) for the MFU estimate; None off CUDA (the
    data-sheet table lives in `fmcnet.gpu_check`, which also measures the card's rate)."""
    if device.type != "cuda":
        return None, "no MFU on CPU (no meaningful peak); achieved FLOP/s reported instead"
    return datasheet_bf16_tflops(device)


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "device": describe_device(device),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_avg_start": load_average(),
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy / torch scalars
        return _jsonable(x.item())
    return x


def finish(result: dict[str, Any], args: argparse.Namespace, started: float) -> None:
    """Stamp the end load and wall time; print one JSON object or a readable listing."""
    result["load_avg_end"] = load_average()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result = _jsonable(result)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"    {k}: {_fmt(v)}")
        else:
            print(f"{key}: {_fmt(value)}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def rounded(x: float, digits: int = 3) -> float:
    """Round to `digits` significant figures (readable JSON without losing the point)."""
    if not math.isfinite(x) or x == 0:
        return x
    return round(x, max(0, digits - 1 - int(math.floor(math.log10(abs(x))))))

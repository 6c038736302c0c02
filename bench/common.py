"""What every benchmark script shares: arguments, timing, the environment record, output.

Each script times one hot loop against a baseline *in the same run*: repeats of the
two alternate (ours, baseline, baseline, ours, ...), so that load from other
processes on a shared machine hits both alike, and the medians are compared.
CUDA work is synchronised around every timed region.

Scripts import this module as ``common`` (``python bench/<script>.py`` puts ``bench/``
first on ``sys.path``); it puts the checkout's root after it, so that ``fmcnet`` and the
benchmarking package ``fmcnet_bench`` (timing tools, data-sheet peaks, FLOP counter) are
the checkout's, installed or not (the bare GPU box installs nothing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from fmcnet.utils import describe_device, git_commit, pick_device  # noqa: E402
from fmcnet_bench.flops import datasheet_bf16_tflops  # noqa: E402
from fmcnet_bench.timing import (  # noqa: E402
    jsonable,
    rounded,  # noqa: F401  (the scripts import it from here)
    sync,
)


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
    data-sheet table lives in `fmcnet_bench.flops`; the GPU check also measures the card's
    rate)."""
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


def worker_parser(description: str, load_help: str) -> argparse.ArgumentParser:
    """`parser` for a script that times each configuration in a process of its own: its
    `--worker` spec (passed by the script itself), `--load` and `--steps`."""
    p = parser(description)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--load", type=int, default=1, help=load_help)
    p.add_argument("--steps", type=int, default=None, help="timed steps per worker")
    return p


def run_worker_process(script: str, spec: Any, policy: str | None) -> Any:
    """Run `script --worker <spec>` in a fresh process -- OMP_NUM_THREADS unset,
    OMP_WAIT_POLICY `policy` (None: unset) -- and return what its last line printed (JSON),
    each row with the load average after it and the process's wall time."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, script, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for row in out if isinstance(out, list) else [out]:
        row["process_s"] = time.perf_counter() - start
        row["load_avg"] = load_average()
    return out


def cpu_environment() -> dict[str, Any]:
    """`environment` of this machine's CPU (the CPU benchmarks run there whatever is present)."""
    return environment(torch.device("cpu"))


def finish(result: dict[str, Any], args: argparse.Namespace, started: float) -> None:
    """Stamp the end load and wall time; print one JSON object or a readable listing."""
    result["load_avg_end"] = load_average()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result = jsonable(result)
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


class Competitors:
    """`n` CPU-bound processes (pure-Python busy loops) started and stopped by this script."""

    def __init__(self, n: int) -> None:
        self.n, self.procs = n, []

    def __enter__(self) -> Competitors:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(self.n)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=10)
        self.procs = []

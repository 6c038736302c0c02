"""Where the demo's training step spends its time on a CPU, and what changes it.

The `quick` profile's real step (`fmcnet.step.TrainStep` fed by `OnDeviceBatches`, built
by `fmcnet_bench.trainer.Trainer` with `fmcnet.assembly`, the builder `train()` uses), on
random uint8 images.
Every configuration runs in its own worker process (the OpenMP wait policy is read once,
when torch loads the runtime), in interleaved rounds, so the ratios come from one run:

* phase breakdown (data = gather + augmentation, forward incl. losses, backward,
  optimizer) of the quick step;
* fp32 vs bf16 autocast (`cpu_amp`), with whether the CPU has native bf16
  (`avx512_bf16` / `amx_bf16` in /proc/cpuinfo);
* channels_last model vs NCHW; the quick profile (ResNet-18 at width 16, 64x32) against the
  full-width network, 96x48 images, and both together (the quick profile before 4b8ca8b);
* cheaper steps that were candidates for the 3-minute demo: 48x24 images, and K = 8
  images per identity (twice the images per step: what a step costs per image);
* torch threads 1 vs 2 with OMP_WAIT_POLICY unset / PASSIVE, each on the machine as it is
  ("idle") and with competing CPU-bound processes that this script starts and stops;
* whether the wait policy takes effect: CPU seconds a process burns while its main
  thread sleeps between small parallel operations;
* extraction (`extract_features`, the demo's evaluation) with channels_last vs NCHW input.

    python bench/demo_step.py [--quick] [--tiny] [--json] [--load N]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common import (
    Competitors,
    cpu_environment,
    cpu_model,
    finish,
    log,
    median,
    rounded,
    run_worker_process,
    worker_parser,
)

from fmcnet.config import make_config

SIZES = {"64x32": (64, 32), "96x48": (96, 48)}
THREADS = (("t1", 1, None), ("t2", 2, None), ("t2_passive", 2, "PASSIVE"))


def native_bf16() -> dict[str, bool]:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return {f: f in flags for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2")}


# ---- the worker: one configuration in a fresh process --------------------------------


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    if spec["kind"] == "spin":
        return spin(spec)
    if spec["kind"] == "extract":
        return extraction(spec)
    import numpy as np

    from fmcnet.batches import DeviceImages
    from fmcnet.config import make_config
    from fmcnet_bench.timing import PhaseClock
    from fmcnet_bench.trainer import Trainer

    h, w = spec["size"]
    # Random weights (the step's time does not depend on them): `quick`'s stand-in file is
    # for width 16 only, and the full-width variants could not load it.
    cfg = make_config("quick", pretrained=False, pretrained_path=None, progress=False,
                      device="cpu", height=h, width=w, channels_last=spec["channels_last"],
                      cpu_amp=spec["cpu_amp"], **spec.get("overrides", {}))
    ids, per_id = 16, 8
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(ids), per_id)
    device = torch.device("cpu")
    images = [DeviceImages(rng.integers(0, 256, (ids * per_id, h, w, 3), dtype=np.uint8),
                           device) for _ in range(2)]
    trainer = Trainer(cfg, *images, labels, labels.copy(), 200, device)
    trainer()  # warm-up: allocator, oneDNN primitive caches
    clock = PhaseClock(device)
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        clock.start()
        x = trainer.data()
        clock.mark("data")
        trainer.step(*x, mark=clock.mark)
        times.append(time.perf_counter() - start)
    n = len(times)
    return {"step_s": sum(times) / n, "step_s_median": median(times), "steps": n,
            "phases_s": {k: v / n for k, v in clock.totals.items()},
            "images_per_step": trainer.images_per_step,
            "torch_threads": torch.get_num_threads(),
            "autocast": trainer.step.autocast_enabled}


def extraction(spec: dict[str, Any]) -> dict[str, Any]:
    """extract_features of the quick model (channels_last, as train() leaves it) with
    channels_last vs NCHW input, interleaved in this process."""
    import numpy as np
    import torch

    from fmcnet.config import make_config
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.model import FMCNet

    h, w = spec["size"]
    cfg = make_config("quick", progress=False, device="cpu", height=h, width=w)
    model = FMCNet.from_config(cfg, 200).to(memory_format=torch.channels_last)
    images = np.random.default_rng(0).integers(0, 256, (spec["images"], h, w, 3),
                                               dtype=np.uint8)
    times: dict[str, list[float]] = {"channels_last": [], "nchw": []}
    for r in range(spec["rounds"] + 1):
        for name in (list(times) if r % 2 == 0 else list(times)[::-1]):
            start = time.perf_counter()
            extract_features(model, images, "visible", device="cpu",
                             batch_size=cfg.eval_batch_size, channels_last=name == "channels_last")
            if r:  # round 0 is the warm-up
                times[name].append(time.perf_counter() - start)
    return {k: median(v) for k, v in times.items()}


def spin(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds per wall second while the main thread alternates a small parallel
    operation and a 2 ms sleep: threads that spin while waiting burn CPU in the sleeps."""
    import torch

    x = torch.randn(1 << 20)
    for _ in range(20):
        x.mul(2.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(spec["iterations"]):
        x.mul(2.0)
        time.sleep(0.002)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    info = torch.__config__.parallel_info()
    backend = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                    if ln.startswith("ATen parallel backend")), "?")
    return {"cpu_per_wall": cpu / wall, "wall_s": wall, "parallel_backend": backend,
            "torch_threads": torch.get_num_threads()}


def run_worker(spec: dict[str, Any] | list[dict[str, Any]], policy: str | None) -> Any:
    return run_worker_process(__file__, spec, policy)


# ---- the orchestration ----------------------------------------------------------------


def main() -> None:
    p = worker_parser(__doc__.split("\n\n")[0],
                      "competing CPU-bound processes for the loaded runs (default 1)")
    args = p.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        # a list: several configurations in one process (--tiny: fewer torch imports)
        print(json.dumps([worker(x) for x in spec] if isinstance(spec, list) else worker(spec)))
        return
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "demo_step", **cpu_environment()}
    result["cpu"] = cpu_model()
    result["cpu_flags"] = native_bf16()
    tiny = args.tiny
    rounds = args.repeats or (1 if tiny or args.quick else 2)
    steps = args.steps or (1 if tiny else (2 if args.quick else 3))
    quick = make_config("quick")
    base_size = (32, 16) if tiny else (quick.height, quick.width)
    larger = (48, 24) if tiny else SIZES["96x48"]
    smaller = (24, 12) if tiny else (48, 24)
    small = {"num_identities": 2, "num_instances": 2} if tiny else {}
    base = {"kind": "step", "threads": 1, "size": base_size, "channels_last": True,
            "cpu_amp": False, "steps": steps, "overrides": small}
    full_width = {"overrides": {**small, "backbone_width": 64}}
    variants = {
        "quick": {},  # the quick profile as train() runs it
        "nchw": {"channels_last": False},
        # one timed step: without native bf16 a step takes ~10x longer than in fp32
        "bf16_autocast": {"cpu_amp": True, "steps": 1},
        "size_96x48": {"size": larger},
        "full_width": full_width,
        # the quick profile before 4b8ca8b: the full-width network at 96x48
        "previous_quick": {"size": larger, **full_width},
        "size_48x24": {"size": smaller},
        # twice the images per identity and modality (K = 8 instead of 4)
        "k8": {"overrides": {**small, "num_instances": 4 if tiny else 8}},
    }
    result["setting"] = (f"quick profile step (ResNet-18 at width {quick.backbone_width}, "
                         f"{quick.height}x{quick.width}, P=8 x K=4 per modality, 64 images), "
                         f"{steps} timed steps per worker after 1 warm-up, {rounds} interleaved "
                         "rounds; variants at 1 torch thread; thread runs with 2 threads")
    log(f"demo_step on {result['cpu']} ({result['cores']} cores), {rounds} round(s)")

    # 1. precision / layout / size, one worker per variant, rounds interleaved
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for r in range(rounds):
        names = list(variants) if r % 2 == 0 else list(variants)[::-1]
        if tiny:  # one process for all: the path is the same, the imports are not repeated
            log(f"  round {r + 1}: {', '.join(names)}")
            for name, row in zip(names, run_worker([{**base, **variants[n]} for n in names],
                                                   None)):
                runs[name].append(row)
            continue
        for name in names:
            log(f"  round {r + 1}: {name}")
            runs[name].append(run_worker({**base, **variants[name]}, None))
    step_s = {k: median([x["step_s"] for x in v]) for k, v in runs.items()}
    ref = step_s["quick"]
    ref_run = runs["quick"]
    result["phases_ms"] = {k: rounded(median([x["phases_s"][k] for x in ref_run]) * 1e3)
                           for k in ref_run[0]["phases_s"]}
    result["phases_share"] = {k: rounded(v / (ref * 1e3)) for k, v in result["phases_ms"].items()}
    result["variants"] = {k: {"step_ms": rounded(v * 1e3),
                              "images_per_s": rounded(runs[k][0]["images_per_step"] / v),
                              "speed_vs_quick": rounded(ref / v)} for k, v in step_s.items()}
    result["bf16_vs_fp32_ratio"] = rounded(ref / step_s["bf16_autocast"])
    result["nchw_vs_channels_last_ratio"] = rounded(ref / step_s["nchw"])
    result["quick_vs_size_96x48_ratio"] = rounded(step_s["size_96x48"] / ref)
    result["quick_vs_full_width_ratio"] = rounded(step_s["full_width"] / ref)
    result["quick_vs_previous_quick_ratio"] = rounded(step_s["previous_quick"] / ref)
    result["size_48x24_vs_quick_ratio"] = rounded(ref / step_s["size_48x24"])
    # a K = 8 step's time over the quick step's (below 2: cheaper per image)
    result["k8_step_vs_quick_ratio"] = rounded(step_s["k8"] / ref)

    # 2. threads x wait policy, idle and loaded, interleaved
    thread_runs: dict[str, list[dict]] = {}
    for r in range(rounds):
        for loaded in (False, True) if r % 2 == 0 else (True, False):
            order = THREADS if (r + loaded) % 2 == 0 else THREADS[::-1]
            with Competitors(args.load if loaded else 0):
                for name, threads, policy in order:
                    key = f"{name}_{'loaded' if loaded else 'idle'}"
                    log(f"  round {r + 1}: {key}")
                    thread_runs.setdefault(key, []).append(
                        run_worker({**base, "threads": threads}, policy))
    t_s = {k: median([x["step_s"] for x in v]) for k, v in thread_runs.items()}
    result["threads"] = {k: {"step_ms": rounded(v * 1e3),
                             "images_per_s": rounded(thread_runs[k][0]["images_per_step"] / v),
                             "load_avg": thread_runs[k][-1]["load_avg"]} for k, v in t_s.items()}
    for state in ("idle", "loaded"):
        t1 = t_s[f"t1_{state}"]
        result[f"t2_vs_t1_{state}_ratio"] = rounded(t1 / t_s[f"t2_{state}"])
        result[f"t2_passive_vs_t1_{state}_ratio"] = rounded(t1 / t_s[f"t2_passive_{state}"])
        result[f"t2_passive_vs_t2_{state}_ratio"] = rounded(
            t_s[f"t2_{state}"] / t_s[f"t2_passive_{state}"])
    result["competitors"] = f"{args.load} pure-Python busy loop(s), started by this script"

    # 3. does the wait policy take effect? CPU burnt while the main thread sleeps
    spin_spec = {"kind": "spin", "threads": 2, "iterations": 50 if tiny else 300}
    result["wait_policy_effect"] = {
        (policy or "unset"): {k: rounded(v) if isinstance(v, float) else v
                              for k, v in run_worker(spin_spec, policy).items()
                              if k in ("cpu_per_wall", "parallel_backend", "torch_threads")}
        for policy in (None, "PASSIVE", "ACTIVE")}

    # 4. extraction: channels_last vs NCHW input to the channels_last model
    ext = run_worker({"kind": "extract", "threads": 1, "size": base_size,
                      "images": 32 if tiny else 256, "rounds": rounds}, None)
    result["extraction_s"] = {k: rounded(v) for k, v in ext.items() if k in ("channels_last", "nchw")}
    result["extraction_channels_last_vs_nchw_ratio"] = rounded(ext["nchw"] / ext["channels_last"])
    result["notes"] = [
        "*_ratio > 1: the first-named configuration is faster (ratio of step times)",
        "each configuration runs in its own process; rounds alternate the order",
        "'idle' is the machine as it was (shared); 'loaded' adds the competitors",
    ]
    finish(result, args, started)



if __name__ == "__main__":
    main()

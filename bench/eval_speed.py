"""Evaluation speed: the vectorised `rank_metrics` against the per-query numpy loops
(`fmcnet.evaluation.reference`, the AGW baseline's semantics), feature extraction
images/s, and the whole SYSU-MM01 protocol (4 settings x 10 trials) from features.

Matrices have the real data sets' sizes and realistic ids / cameras:

* SYSU-MM01: 96 test ids; 3,803 infrared queries from cam3 / cam6; the gallery holds
  one (single-shot, 301) or ten (multi-shot, 3,010) images of each (id, visible camera)
  pair present among cams 1/2/4/5; cam3 queries ignore cam2 (the protocol's rule);
* RegDB: 206 ids x 10 images, 2,060 visible queries x 2,060 thermal gallery images.

Distances come from random identity-structured features (a centre per id plus
noise), so the metrics are neither 0 nor 1. Every timed result is checked equal to
the loop's (CMC, mAP, mINP within 1e-6) before it is reported.

    python bench/eval_speed.py [--quick] [--json] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from common import environment, finish, interleaved, log, median, parser, rounded, setup, timed

from fmcnet.config import make_config
from fmcnet.evaluation.extract import extract_features
from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics
from fmcnet.evaluation.reference import eval_regdb_loop, eval_sysu_loop
from fmcnet.model import FMCNet
from fmcnet_bench.sysu import SYSU_TEST_IDS, SysuProtocolRun, SysuTest, identity_features

REGDB_IDS, REGDB_PER_ID = 206, 10
TOL = 1e-6


def matrices(rng: np.random.Generator, scale: float = 1.0) -> dict[str, tuple]:
    """name -> (distmat, q_pids, g_pids, q_cams, g_cams, protocol, loop); `scale` < 1
    shrinks every count (the tiny test mode)."""
    dim = 64
    sysu = SysuTest(rng, scale)
    centres = rng.standard_normal((SYSU_TEST_IDS, dim)) * 0.35
    qf = identity_features(rng, sysu.q_pids, dim, centres)
    out = {}
    for name, shots in (("sysu_single", 1), ("sysu_multi", 10)):
        rows = sysu.trial(rng, shots, indoor=False)
        gf = identity_features(rng, sysu.g_pids[rows], dim, centres)
        out[name] = (pairwise_distance(qf, gf).numpy(), sysu.q_pids, sysu.g_pids[rows],
                     sysu.q_cams, sysu.g_cams[rows], "sysu", eval_sysu_loop)
    ids = max(round(REGDB_IDS * scale), 4)
    pids = np.repeat(np.arange(ids), REGDB_PER_ID)
    centres = rng.standard_normal((ids, dim)) * 0.35
    d = pairwise_distance(identity_features(rng, pids, dim, centres),
                          identity_features(rng, pids, dim, centres)).numpy()
    out["regdb"] = (d, pids, pids.copy(), np.ones(len(pids), np.int64),
                    np.full(len(pids), 2, np.int64), "regdb", eval_regdb_loop)
    return out


# ---- the three measurements --------------------------------------------------------


def compare_metrics(name: str, case: tuple, device: torch.device, repeats: int,
                    loop_repeats: int) -> dict[str, Any]:
    """rank_metrics vs the loop on one matrix: equal results, then interleaved timing."""
    d, q_pids, g_pids, q_cams, g_cams, protocol, loop = case
    d_dev = torch.from_numpy(d).to(device)
    ref = loop(d, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    got = rank_metrics(d_dev, q_pids, g_pids, q_cams, g_cams, protocol=protocol)
    diff = max(float(np.abs(got["cmc"] - ref[0]).max()), abs(got["mAP"] - ref[1]),
               abs(got["mINP"] - ref[2]))
    if diff > TOL:
        raise AssertionError(f"{name}: rank_metrics differs from the per-query loop by {diff}")

    def ours():
        rank_metrics(d_dev, q_pids, g_pids, q_cams, g_cams, protocol=protocol)

    def reference():
        loop(d, q_pids, g_pids, q_cams, g_cams, max_rank=20)

    times = interleaved({"loop": reference, "ours": ours}, repeats=loop_repeats, warmup=0,
                        device=device)
    # extra repeats of ours alone: it is cheap, and its median deserves more samples
    times["ours"] += [timed(ours, device) for _ in range(max(0, repeats - loop_repeats))]
    sort_s = median([timed(lambda: torch.sort(d_dev, dim=1, stable=True), device)
                     for _ in range(repeats)])
    loop_s, ours_s = median(times["loop"]), median(times["ours"])
    return {
        "shape": list(d.shape), "loop_s": rounded(loop_s), "ours_s": rounded(ours_s),
        "ratio": rounded(loop_s / ours_s), "stable_sort_s": rounded(sort_s),
        "sort_fraction": rounded(sort_s / ours_s), "max_abs_diff": diff,
        "mAP": rounded(got["mAP"]), "R1": rounded(float(got["cmc"][0])),
        "repeats": {"loop": len(times["loop"]), "ours": len(times["ours"])},
    }


def extraction(device: torch.device, quick: bool, tiny: bool, repeats: int) -> dict[str, Any]:
    """Images/s of `extract_features` (the evaluation path: host uint8 -> features)."""
    cpu = device.type == "cpu"
    profile = "smoke" if tiny else ("quick" if cpu else "paper")
    cfg = make_config(profile, device=device.type, pretrained=False, progress=False)
    n = 32 if tiny else (128 if quick and cpu else (256 if cpu else 8192))
    images = np.random.default_rng(0).integers(0, 256, (n, cfg.height, cfg.width, 3),
                                               dtype=np.uint8)
    model = FMCNet.from_config(cfg, 395).to(device)
    if cfg.channels_last:  # as train() leaves it, on the CPU too
        model = model.to(memory_format=torch.channels_last)

    def run():
        extract_features(model, images, "visible", device=device,
                         batch_size=cfg.eval_batch_size, amp=cfg.amp,
                         channels_last=cfg.channels_last)

    extract_features(model, images[: min(n, cfg.eval_batch_size)], "visible", device=device,
                     batch_size=cfg.eval_batch_size, amp=cfg.amp)  # warm-up
    seconds = median([timed(run, device) for _ in range(repeats)])
    return {
        "model": f"{cfg.backbone} {cfg.height}x{cfg.width} (profile {profile}), retrieval "
                 f"feature {model.feature_dim}-d",
        "images": n, "batch_size": cfg.eval_batch_size,
        "precision": "bf16 autocast" if cfg.amp and not cpu else "fp32",
        "seconds": rounded(seconds), "images_per_s": rounded(n / seconds),
    }


def sysu_protocol(device: torch.device, rng: np.random.Generator, dim: int, trials: int,
                  scale: float, repeats: int) -> dict[str, Any]:
    """`fmcnet_bench.sysu.SysuProtocolRun`: what `evaluate_dataset` does after extraction,
    on random features of the real counts (one distance matrix per gallery pool, then
    rank_metrics for each of the 4 settings x `trials` trials)."""
    run = SysuProtocolRun(rng, dim, trials, scale)
    if device.type == "cuda":  # CUDA context, cuBLAS handles: not part of evaluation
        run(device)
    times, maps = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        maps = run(device)  # returns host floats: the device work is done when it returns
        times.append(time.perf_counter() - start)
    return {
        "queries": len(run.qf), "gallery_pool": len(run.gf), "feature_dim": dim,
        "trials": trials, "settings": len(run.SETTINGS), "seconds": rounded(median(times)),
        "repeats": repeats, "mAP_by_setting": {k: rounded(v) for k, v in maps.items()},
        "note": "features already on the host; pairwise distances once per pool, "
                "then rank_metrics per setting and trial (as evaluate_dataset)",
    }


def main() -> None:
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    started = time.perf_counter()
    device = setup(args)
    cpu = device.type == "cpu"
    result: dict[str, Any] = {"benchmark": "eval_speed", **environment(device)}
    rng = np.random.default_rng(0)
    scale = 0.08 if args.tiny else 1.0
    repeats = args.repeats or (2 if args.tiny else (3 if args.quick else 9))
    log(f"eval_speed on {result['device']}")

    result["metrics"] = {}
    for name, case in matrices(rng, scale).items():
        # the loop takes seconds (multi-shot: ~10 s); quick times it fewer times
        quick_loops = {"sysu_single": 3, "regdb": 2, "sysu_multi": 1}[name]
        loop_repeats = min(repeats, quick_loops) if args.quick else repeats
        log(f"  rank_metrics vs loop: {name} {case[0].shape}")
        row = compare_metrics(name, case, device, repeats, loop_repeats)
        result["metrics"][name] = row
        result[f"{name}_ratio"] = row["ratio"]
    log("  feature extraction")
    once = (args.quick and cpu) or args.tiny  # seconds each on a CPU
    result["extraction"] = extraction(device, args.quick, args.tiny, repeats=1 if once else 3)
    dim = 1024 if (cpu and args.quick) or args.tiny else 4096
    log(f"  whole SYSU protocol ({dim}-d features)")
    result["sysu_protocol"] = sysu_protocol(device, rng, dim, trials=2 if args.tiny else 10,
                                            scale=scale, repeats=1 if once else 3)
    result["notes"] = [
        "ratio = loop seconds / rank_metrics seconds (> 1: ours faster); every ratio's "
        f"results were asserted equal to the loop's within {TOL}",
        "the loop always runs in numpy on the CPU; rank_metrics on the benchmark device",
        "sort_fraction: share of rank_metrics spent in the stable row sort alone",
    ]
    if cpu and args.quick:
        result["notes"].append("quick: loop timed 3 / 1 / 2 times (SYSU single / multi, "
                               "RegDB); extraction on 128 "
                               "ResNet-18 128x64 images; protocol with 1024-d features "
                               "(the quick model's retrieval width)")
    finish(result, args, started)


if __name__ == "__main__":
    main()

"""Data pipeline speed: the pre-processing cache and the batched augmentation.

* Cache: `fmcnet.data.cache.load_images` on a small synthetic set (written with
  `fmcnet.data.synthetic.synthesize` into a temporary folder): a cold build (decode +
  LANCZOS resize of every JPEG into the memory-mapped .npy) against a warm load (the
  key check and memory map) plus reading every pixel, images/s. "Cold" means no fmcnet
  cache; the JPEG files themselves sit in the OS page cache after the first build.
* Augmentation: `TrainAugment` on a uint8 [64, 3, H, W] batch at the paper's 288x144,
  on the device, against the conventional per-sample PIL / torchvision transforms
  (the training benchmark's baseline) looped over the batch and stacked. On CUDA also
  the GPU-resident batch against one gathered in pinned host memory and copied over
  (`DeviceImages`' two locations).

    python bench/data_pipeline.py [--quick] [--json] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import environment, finish, interleaved, log, median, parser, rounded, setup
from train_throughput import baseline_transform

from fmcnet.batches import DeviceImages
from fmcnet.config import make_config
from fmcnet.data.augment import TrainAugment
from fmcnet.data.cache import load_images
from fmcnet.data.synthetic import synthesize


def cache_speed(workdir: Path, identities: int, per_camera: int, size: tuple[int, int],
                repeats: int) -> dict[str, Any]:
    """Cold build vs warm load (+ reading every pixel) of one image list, interleaved;
    every cold repeat builds into a fresh cache folder."""
    root = synthesize(workdir / "set", identities=identities, seed=0,
                      images_per_camera=per_camera, progress=False)
    paths = sorted(str(p) for p in root.glob("cam*/*/*.jpg"))
    builds = iter(range(10**6))
    load_images(paths, size, cache_root=workdir / "warm", progress=False)

    def cold():
        load_images(paths, size, cache_root=workdir / f"cold{next(builds)}", progress=False)

    def warm():
        arr = load_images(paths, size, cache_root=workdir / "warm", progress=False)
        np.asarray(arr).sum(dtype=np.uint64)  # touch every pixel

    times = interleaved({"cold": cold, "warm": warm}, repeats=repeats, warmup=0,
                        device=torch.device("cpu"))
    cold_s, warm_s = median(times["cold"]), median(times["warm"])
    return {
        "images": len(paths), "jpeg_size": "128x64 (synthetic default)",
        "cache_size": f"{size[0]}x{size[1]}",
        "cold_s": rounded(cold_s), "cold_images_per_s": rounded(len(paths) / cold_s),
        "warm_s": rounded(warm_s), "warm_images_per_s": rounded(len(paths) / warm_s),
        "ratio": rounded(cold_s / warm_s),
    }


def augmentation_speed(device: torch.device, batch: int, size: tuple[int, int],
                       repeats: int) -> dict[str, Any]:
    """TrainAugment on the device vs the per-sample PIL transforms; images/s."""
    cfg = make_config("paper", height=size[0], width=size[1])
    augment = TrainAugment.from_config(cfg)
    transform = baseline_transform(cfg)
    pool = np.random.default_rng(0).integers(0, 256, (4 * batch, *size, 3), dtype=np.uint8)
    index = np.arange(0, 4 * batch, 4)
    generator = torch.Generator(device=device).manual_seed(0)
    resident = DeviceImages(pool, device)  # on CUDA: in device memory
    x_resident = resident.batch(index)

    fns = {
        "ours": lambda: augment(resident.batch(index), generator),
        "per_sample_pil": lambda: torch.stack([transform(pool[i]) for i in index]),
    }
    if device.type == "cuda":
        pinned = DeviceImages(pool, device, on_device=False)  # pinned host memory
        fns["ours_host_to_device"] = lambda: augment(pinned.batch(index), generator)
        fns["augment_only"] = lambda: augment(x_resident, generator)
    times = interleaved(fns, repeats=repeats, warmup=1, device=device)
    seconds = {k: median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "batch": f"{batch} x 3 x {size[0]} x {size[1]} uint8",
        "location": resident.location,
        **{f"{k}_ms": rounded(s * 1e3) for k, s in seconds.items()},
        **{f"{k}_images_per_s": rounded(batch / s) for k, s in seconds.items()},
        "ratio": rounded(seconds["per_sample_pil"] / seconds["ours"]),
    }
    if device.type == "cuda":
        out["resident_vs_host_ratio"] = rounded(seconds["ours_host_to_device"] / seconds["ours"])
    return out


def main() -> None:
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    started = time.perf_counter()
    device = setup(args)
    result: dict[str, Any] = {"benchmark": "data_pipeline", **environment(device)}
    repeats = args.repeats or (2 if args.tiny else (5 if args.quick else 9))
    log(f"data_pipeline on {result['device']}")

    identities, per_camera = (6, 1) if args.tiny else ((40, 3) if args.quick else (100, 4))
    size = (64, 32) if args.tiny else (288, 144)
    with tempfile.TemporaryDirectory(prefix="fmcnet-bench-") as tmp:
        log("  cache: cold build vs warm load")
        result["cache"] = cache_speed(Path(tmp), identities, per_camera, size, repeats)
    result["cache_warm_vs_cold_ratio"] = result["cache"]["ratio"]

    log("  augmentation")
    batch = 8 if args.tiny else 64
    result["augmentation"] = augmentation_speed(device, batch, size, repeats=repeats + 2)
    result["augment_vs_per_sample_ratio"] = result["augmentation"]["ratio"]
    if "resident_vs_host_ratio" in result["augmentation"]:
        result["resident_vs_host_ratio"] = result["augmentation"]["resident_vs_host_ratio"]
    result["notes"] = [
        "cache ratio = cold build seconds / warm load (+ read every pixel) seconds",
        "augmentation ratio = per-sample PIL seconds / TrainAugment seconds (> 1: ours "
        "faster); ours includes the DeviceImages gather",
        "per-sample PIL: ToPILImage, Pad(10), RandomCrop, RandomHorizontalFlip, ToTensor, "
        "Normalize, RandomErasing, then torch.stack (on the CPU, one process)",
    ]
    finish(result, args, started)


if __name__ == "__main__":
    main()

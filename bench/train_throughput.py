"""Training throughput of FMCNet's real step: our on-device batch pipeline vs a
conventional per-sample PIL DataLoader feeding the same model and the same step.

Ours (what `fmcnet.train` does, built by `fmcnet.assembly` as there): `DeviceImages.batch`
gathers the P x K uint8 images where they live, `TrainAugment` pads/crops/flips/
normalises/erases the whole batch on the device. Baseline (the AGW / DDAG style): a `torch.utils.data.DataLoader` whose
dataset turns each uint8 array into a PIL image and applies torchvision's Pad(10),
RandomCrop, RandomHorizontalFlip, ToTensor, Normalize and RandomErasing per sample,
then `default_collate` and a copy to the device. The step after that is shared:
forward, `fmcnet_loss` + `discriminator_loss`, one backward, both optimizers.

Reports images/s (ratio ours / baseline), a per-step breakdown (data = batch assembly
+ augmentation, forward incl. losses, backward, optimizer), variants (precision and
layout; bf16 and torch.compile on CUDA) and the FLOPs of one step with an MFU estimate.
`python -m fmcnet gpu-check` is the GPU acceptance run; `bench/demo_step.py` the CPU
demo step.

    python bench/train_throughput.py [--quick] [--json] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from common import (
    environment,
    finish,
    interleaved,
    log,
    median,
    parser,
    peak_bf16_tflops,
    rounded,
    setup,
    sync,
)

from fmcnet.assembly import (
    TrainingImages,
    build_batches,
    build_network,
    build_sampler,
    build_step,
)
from fmcnet.batches import DeviceImages
from fmcnet.config import Config, make_config
from fmcnet.data.augment import IMAGENET_MEAN, IMAGENET_STD
from fmcnet.data.sampler import CrossModalitySampler
from fmcnet.step import TrainStep
from fmcnet_bench.flops import count_step_flops
from fmcnet_bench.trainer import endless

NUM_CLASSES = 395  # SYSU-MM01 train + val identities, as the paper trains
PHASES = ("data", "forward", "backward", "optimizer")


# ---- the shapes --------------------------------------------------------------------


def shape_config(name: str, device: torch.device) -> Config:
    """paper: ResNet-50, 288x144, 32 V + 32 I; quick: ResNet-18, 128x64, 16 V + 16 I;
    paper-small: the paper's network and resolution at 4 V + 4 I (one CPU step);
    tiny: the smoke profile (ResNet-18, 32x16, 4 V + 4 I)."""
    profile, p, k = {
        "paper": ("paper", 4, 8), "quick": ("quick", 4, 4),
        "paper-small": ("paper", 2, 2), "tiny": ("smoke", 2, 2),
    }[name]
    return make_config(profile, num_identities=p, num_instances=k, device=device.type,
                       pretrained=False, progress=False)


def describe_shape(cfg: Config) -> str:
    return (f"{cfg.backbone} last_stride={cfg.last_stride} {cfg.height}x{cfg.width}, "
            f"{cfg.batch_size} V + {cfg.batch_size} I images per step "
            f"(P={cfg.num_identities}, K={cfg.num_instances}), generator_hidden="
            f"{cfg.generator_hidden}")


def random_training_set(cfg: Config, identities: int, per_id: int, seed: int = 0):
    """uint8 NHWC images and labels for both modalities; pixel values do not matter
    to the speed of any step measured here."""
    rng = np.random.default_rng(seed)
    n = identities * per_id
    labels = np.repeat(np.arange(identities), per_id)
    shape = (n, cfg.height, cfg.width, 3)
    return (rng.integers(0, 256, shape, dtype=np.uint8), labels,
            rng.integers(0, 256, shape, dtype=np.uint8), labels.copy())


# ---- the two batch pipelines -------------------------------------------------------


class OnDevicePipeline:
    """Ours, as in `fmcnet.train.train`: `OnDeviceBatches` gathers and augments on the device."""

    name = "ours"

    def __init__(self, data, cfg: Config, device: torch.device, channels_last: bool):
        images_v, labels_v, images_i, labels_i = data
        cfg = dataclasses.replace(cfg, channels_last=channels_last)
        self.batches = endless(build_sampler(cfg, labels_v, labels_i))
        self.make = build_batches(cfg, TrainingImages(
            DeviceImages(images_v, device, cfg.data_on_device),
            DeviceImages(images_i, device, cfg.data_on_device), labels_v, labels_i), device)

    def __call__(self):
        return self.make(*next(self.batches))


def baseline_transform(cfg: Config):
    from torchvision import transforms as T

    return T.Compose([
        T.ToPILImage(),
        T.Pad(cfg.pad),
        T.RandomCrop((cfg.height, cfg.width)),
        T.RandomHorizontalFlip(cfg.flip_prob),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        T.RandomErasing(p=cfg.erase_prob, scale=tuple(cfg.erase_area),
                        ratio=(cfg.erase_ratio, 1 / cfg.erase_ratio)),
    ])


class PairDataset(torch.utils.data.Dataset):
    """AGW-style: item (i_v, i_i) -> (visible image, infrared image, label_v, label_i)."""

    def __init__(self, data, transform):
        self.images_v, self.labels_v, self.images_i, self.labels_i = data
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images_v)

    def __getitem__(self, pair: tuple[int, int]):
        i_v, i_i = pair
        return (self.transform(self.images_v[i_v]), self.transform(self.images_i[i_i]),
                int(self.labels_v[i_v]), int(self.labels_i[i_i]))


class PairBatches:
    """The same P x K batches as ours, as lists of (i_v, i_i) for the DataLoader."""

    def __init__(self, sampler: CrossModalitySampler):
        self.sampler = sampler

    def __iter__(self):
        for idx_v, idx_i in endless(self.sampler):
            yield list(zip(idx_v.tolist(), idx_i.tolist()))


class PerSampleLoaderPipeline:
    """The baseline: per-sample PIL transforms in a DataLoader, collate, copy to device."""

    name = "baseline"

    def __init__(self, data, cfg: Config, device: torch.device, channels_last: bool,
                 workers: int):
        sampler = build_sampler(cfg, data[1], data[3])  # ours: the same batches
        self.loader = torch.utils.data.DataLoader(
            PairDataset(data, baseline_transform(cfg)), batch_sampler=PairBatches(sampler),
            num_workers=workers, pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
        )
        self.iterator = iter(self.loader)  # endless: the batch sampler never stops
        self.device, self.channels_last = device, channels_last

    def __call__(self):
        x_v, x_i, y_v, y_i = (t.to(self.device, non_blocking=True) for t in next(self.iterator))
        if self.channels_last:
            x_v = x_v.contiguous(memory_format=torch.channels_last)
            x_i = x_i.contiguous(memory_format=torch.channels_last)
        return x_v, x_i, y_v, y_i


# ---- the shared step ---------------------------------------------------------------


class PhaseClock:
    """Seconds per phase; each mark synchronises the device. Disabled: does nothing,
    so throughput runs keep the host running ahead of the GPU as training does."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device, self.enabled = device, enabled
        self.totals = dict.fromkeys(PHASES, 0.0)
        self.last = 0.0

    def start(self) -> None:
        if self.enabled:
            sync(self.device)
            self.last = time.perf_counter()

    def mark(self, phase: str) -> None:
        if self.enabled:
            sync(self.device)
            now = time.perf_counter()
            self.totals[phase] += now - self.last
            self.last = now


def make_step(cfg: Config, device: torch.device, *, amp: bool, channels_last: bool,
              compile: bool = False) -> TrainStep:
    """`fmcnet.step.TrainStep` -- the step `train()` runs -- on a fresh model and
    optimizers from `fmcnet.assembly`, with the precision / layout / compile options of
    one variant."""
    cfg = dataclasses.replace(cfg, amp=amp, cpu_amp=amp, channels_last=channels_last,
                              compile=compile)
    return build_step(cfg, build_network(cfg, NUM_CLASSES, device), device)


def timed_step(step: TrainStep, pipeline, clock: PhaseClock) -> None:
    """One batch from `pipeline`, then the real training step, phase by phase."""
    clock.start()
    x_v, x_i, y_v, y_i = pipeline()
    clock.mark("data")
    step(x_v, x_i, y_v, y_i, mark=clock.mark)


def step_flops(cfg: Config) -> float:
    """FLOPs of one step's forward + backward (`fmcnet_bench.flops.count_step_flops`)."""
    return count_step_flops(cfg, NUM_CLASSES)


# ---- measuring ---------------------------------------------------------------------


def run_block(step: TrainStep, pipeline, steps: int, breakdown: bool,
              device: torch.device) -> tuple[float, dict[str, float]]:
    """Seconds per step over `steps` steps and the per-phase seconds per step."""
    clock = PhaseClock(device, breakdown)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        timed_step(step, pipeline, clock)
    sync(device)
    per_step = (time.perf_counter() - start) / steps
    return per_step, {k: v / steps for k, v in clock.totals.items()}


def compare_pipelines(step: TrainStep, pipelines: list, *, repeats: int, steps: int,
                      device: torch.device) -> dict[str, dict[str, Any]]:
    """Interleaved blocks of each pipeline on the same step. On CPU the phase marks
    cost nothing and come from the timed blocks; on CUDA they would serialise host
    and device, so the breakdown comes from extra, separately timed blocks."""
    cpu = device.type == "cpu"
    records: dict[str, list] = {p.name: [] for p in pipelines}

    def block(p, n, breakdown):
        return lambda: records[p.name].append(run_block(step, p, n, breakdown, device))

    # Warm-up: one step warms the shared model, one batch each pipeline's data path.
    run_block(step, pipelines[0], 1, False, device)
    for p in pipelines[1:]:
        p()
    interleaved({p.name: block(p, steps, cpu) for p in pipelines},
                repeats=repeats, warmup=0, device=device)
    out: dict[str, dict[str, Any]] = {}
    for p in pipelines:
        step_s = median([r[0] for r in records[p.name]])
        if not cpu:
            records[p.name] = []
            for _ in range(max(2, repeats // 2)):
                block(p, steps, True)()
        phases = {k: median([r[1][k] for r in records[p.name]]) for k in PHASES}
        out[p.name] = {"step_s": step_s, "phases_s": phases}
    return out


def ms(phases: dict[str, float]) -> dict[str, float]:
    return {k: rounded(v * 1e3) for k, v in phases.items()}


def variant_specs(device: torch.device, compile_ok: bool) -> list[tuple[str, dict, str | None]]:
    """(name, TrainStep options, reason it is skipped or None)."""
    if device.type == "cpu":
        no_bf16 = ("skipped on CPU: bf16 autocast there is cpu_amp=true, off by default "
                   "(emulated without AVX512-BF16/AMX); bench/demo_step.py measures it")
        return [
            ("fp32", {"amp": False, "channels_last": False}, None),
            ("fp32_channels_last", {"amp": False, "channels_last": True}, None),  # = ours
            ("bf16", {"amp": True, "channels_last": False}, no_bf16),
            ("compile", {"amp": False, "channels_last": False, "compile": True},
             "skipped on CPU: torch.compile is a GPU option here (compile time >> quick run)"),
        ]
    compile_skip = None if compile_ok else "skipped: --no-compile"
    return [
        ("fp32", {"amp": False, "channels_last": False}, None),
        ("fp32_channels_last", {"amp": False, "channels_last": True}, None),
        ("bf16", {"amp": True, "channels_last": False}, None),
        ("bf16_channels_last", {"amp": True, "channels_last": True}, None),  # = ours on CUDA
        ("bf16_channels_last_compile", {"amp": True, "channels_last": True, "compile": True},
         compile_skip),
    ]


def measure_variants(cfg, data, device, *, repeats, steps, flops, peak, compile_ok,
                     default_name, default_step_s):
    """Images/s of each precision / layout / compile variant with our pipeline."""
    results: dict[str, Any] = {}
    images = 2 * cfg.batch_size
    for name, opts, skip in variant_specs(device, compile_ok):
        if skip:
            results[name] = {"skipped": skip}
            continue
        if name == default_name:
            step_s = default_step_s
        else:
            log(f"  variant {name}")
            step = make_step(cfg, device, **opts)
            pipeline = OnDevicePipeline(data, cfg, device, opts["channels_last"])
            warmup = 3 if opts.get("compile") else 1
            for _ in range(warmup):
                run_block(step, pipeline, 1, False, device)
            step_s = median([run_block(step, pipeline, steps, False, device)[0]
                             for _ in range(repeats)])
            del step, pipeline
        row = {"images_per_s": rounded(images / step_s),
               "vs_default_ratio": rounded(default_step_s / step_s)}
        if peak:
            row["mfu"] = rounded(flops / step_s / (peak * 1e12))
        results[name] = row
    return results


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=None,
                   help="baseline DataLoader workers (default: 0 on CPU, 2 on CUDA)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--no-paper-step", action="store_true",
                   help="CPU --quick: skip the single ResNet-50 288x144 step")
    args = p.parse_args()
    started = time.perf_counter()
    device = setup(args)
    cpu = device.type == "cpu"
    result: dict[str, Any] = {"benchmark": "train_throughput", **environment(device)}
    notes: list[str] = []

    if args.tiny:
        shape, repeats, steps = "tiny", args.repeats or 1, 1
    elif args.quick:
        shape, repeats, steps = ("quick", args.repeats or 2, 1) if cpu else ("paper", args.repeats or 3, 5)
    else:
        shape, repeats, steps = ("paper", args.repeats or 2, 1) if cpu else ("paper", args.repeats or 5, 20)
    cfg = shape_config(shape, device)
    channels_last = cfg.channels_last  # fmcnet.train's rule, on the CPU and CUDA alike
    amp = cfg.cpu_amp if cpu else cfg.amp
    workers = args.workers if args.workers is not None else (0 if cpu else 2)
    identities = 8 if args.tiny else (64 if cpu else 128)
    per_id = max(2 * cfg.num_instances, 8)
    data = random_training_set(cfg, identities, per_id)
    images = 2 * cfg.batch_size
    result["shape"] = describe_shape(cfg)
    result["training_images_per_modality"] = identities * per_id
    result["precision"] = "bf16 autocast" if amp else "fp32"
    result["channels_last"] = channels_last
    result["baseline"] = (
        "torch.utils.data.DataLoader, per sample: ToPILImage, Pad(10), RandomCrop, "
        "RandomHorizontalFlip, ToTensor, Normalize, RandomErasing; default_collate; "
        f"num_workers={workers}, pin_memory={not cpu}; same sampler, model and step")
    result["ours"] = "DeviceImages.batch + TrainAugment on the device (fmcnet.train)"
    result["repeats"], result["steps_per_block"] = repeats, steps
    log(f"train_throughput on {result['device']}: {result['shape']}")

    step = make_step(cfg, device, amp=amp, channels_last=channels_last)
    pipelines = [OnDevicePipeline(data, cfg, device, channels_last),
                 PerSampleLoaderPipeline(data, cfg, device, channels_last, workers)]
    runs = compare_pipelines(step, pipelines, repeats=repeats, steps=steps, device=device)
    ours, base = runs["ours"], runs["baseline"]
    result["ours_images_per_s"] = rounded(images / ours["step_s"])
    result["baseline_images_per_s"] = rounded(images / base["step_s"])
    result["images_per_s_ratio"] = rounded(base["step_s"] / ours["step_s"])
    result["ours_step_ms"] = {**ms(ours["phases_s"]), "total": rounded(ours["step_s"] * 1e3)}
    result["baseline_step_ms"] = {**ms(base["phases_s"]), "total": rounded(base["step_s"] * 1e3)}
    result["data_time_ratio"] = rounded(base["phases_s"]["data"] / ours["phases_s"]["data"])
    result["ours_data_fraction"] = rounded(ours["phases_s"]["data"] / ours["step_s"])
    del pipelines

    flops = step_flops(cfg)
    peak, peak_source = peak_bf16_tflops(device)
    result["flops_per_step"] = rounded(flops)
    result["achieved_tflops"] = rounded(flops / ours["step_s"] / 1e12)
    result["peak_bf16_tflops_assumed"] = peak
    result["peak_source"] = peak_source
    if peak:
        result["mfu"] = rounded(flops / ours["step_s"] / (peak * 1e12))

    default_name = ("fp32_channels_last" if channels_last else "fp32") if cpu else "bf16_channels_last"
    variant_repeats = 1 if (args.quick or args.tiny) and cpu else repeats
    log("variants")
    result["variants"] = measure_variants(
        cfg, data, device, repeats=variant_repeats, steps=steps, flops=flops, peak=peak,
        compile_ok=not args.no_compile and not args.tiny, default_name=default_name,
        default_step_s=ours["step_s"])
    for name, row in result["variants"].items():
        if "vs_default_ratio" in row and name != default_name:
            result[f"{name}_ratio"] = row["vs_default_ratio"]
    del step

    if cpu and args.quick and not args.tiny and not args.no_paper_step:
        result["paper_resolution_step"] = paper_step(device, flops, ours["step_s"], started)
    notes.append("ratio = images/s ours / images/s baseline (> 1: ours faster)")
    notes.append("data = batch assembly + augmentation (+ host-to-device copy for the "
                 "baseline); forward includes the losses")
    if workers:
        notes.append(f"the baseline's {workers} workers keep prefetching (up to "
                     f"{2 * workers} batches) while our blocks run: this favours the "
                     "baseline, so images_per_s_ratio is a lower bound")
    if cpu:
        notes.append("CPU: fp32 and a channels_last model, as fmcnet.train runs on the CPU "
                     "(bf16 autocast there only with cpu_amp=true)")
    result["notes"] = notes
    finish(result, args, started)


def paper_step(device: torch.device, quick_flops: float, quick_step_s: float,
               started: float, budget_s: float = 110.0) -> dict[str, Any]:
    """One step of the paper's network at its resolution, 4 V + 4 I, if the estimate
    (quick step time scaled by FLOPs) fits in what is left of the quick budget."""
    cfg = shape_config("paper-small", device)
    flops = step_flops(cfg)
    estimate = quick_step_s * flops / quick_flops
    left = budget_s - (time.perf_counter() - started)
    row: dict[str, Any] = {"shape": describe_shape(cfg), "flops_per_step": rounded(flops)}
    if estimate > left:
        row["skipped"] = f"estimated {estimate:.0f} s, {left:.0f} s left of the quick budget"
        return row
    log(f"one {cfg.backbone} {cfg.height}x{cfg.width} step (estimated {estimate:.0f} s)")
    data = random_training_set(cfg, 8, 4)
    step = make_step(cfg, device, amp=False, channels_last=cfg.channels_last)
    step_s, phases = run_block(step, OnDevicePipeline(data, cfg, device, cfg.channels_last), 1,
                               True, device)
    row.update({"step_ms": {**ms(phases), "total": rounded(step_s * 1e3)},
                "images_per_s": rounded(2 * cfg.batch_size / step_s),
                "achieved_tflops": rounded(flops / step_s / 1e12),
                "note": "a single step, no warm-up, our pipeline"})
    return row


if __name__ == "__main__":
    main()

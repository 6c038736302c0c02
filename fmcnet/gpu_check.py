"""The GPU acceptance check: one call that proves the GPU path and measures it.

``make gpu-check`` / ``python -m fmcnet gpu-check --out DIR`` on a bare GPU machine (its
own python3 with torch; no venv, nothing installed, nothing downloaded). Sections, each
measured against a baseline in the same run where one exists:

* ``matmul``     -- the card's own bf16 rate on a large square product (the MFU denominator);
* ``step``       -- the real training step (`fmcnet.train.TrainStep` fed by `OnDeviceBatches`)
  at the paper shape: images/s, peak memory and MFU for fp32, bf16 and bf16 +
  channels_last; cuDNN autotuning off vs on; images on the device vs host-pinned; the
  augmentation's share of a step and the phase breakdown;
* ``data``       -- a SYSU-MM01-sized synthetic training set (395 identities, 22,258 visible +
  11,909 infrared images) rendered in memory and resized on the device;
* ``run``        -- 200+ steps of the ``paper`` profile on it from random init (every loss
  finite, MD hinge activity, D accuracy) and the same 20 steps in bf16 and fp32 from one
  seed (loss gap, with an fp32 repeat as the noise floor);
* ``extraction`` -- `extract_features` at 288x144, bf16 vs fp32;
* ``protocol``   -- the SYSU-MM01 protocol (4 settings x 10 trials) from features on the
  device vs the CPU, and k-reciprocal re-ranking at SYSU-MM01 size;
* ``compile``    -- the step under `torch.compile`, compile time counted (last: a compiler
  failure cannot cost the other sections);
* ``estimate``   -- the 80-epoch SYSU-MM01 paper run's wall time from the measured rates.

A time budget (default 400 s) skips a section that would not fit, and says so, rather
than overrunning; ``gpu-check.json`` and ``gpu-check.md`` are rewritten after every
section, so a run cut short keeps what it measured. ``--device cpu --tiny`` runs the same
functions on toy shapes in about a minute of CPU time (`make test` does), so the GPU run cannot
fail on a path never executed; torch.compile then uses the ``aot_eager`` backend (graph
capture and AOT autograd without code generation).
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fmcnet.config import Config, make_config
from fmcnet.utils import (
    FMCNetError,
    atomic_write_json,
    atomic_write_text,
    describe_device,
    git_commit,
    pick_device,
    seed_everything,
)

# SYSU-MM01 (PROTOCOLS.md): training on train + val ids, the test split's query set.
SYSU_TRAIN_IDS, SYSU_TRAIN_VISIBLE, SYSU_TRAIN_INFRARED = 395, 22258, 11909
SYSU_TEST_IDS, SYSU_QUERIES, SYSU_GALLERY_POOL, SYSU_PAIRS = 96, 3803, 6775, 301
PAPER_EPOCHS = 80

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, for
# a second MFU figure beside the measured matmul rate. First match of the name wins.
DATASHEET_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
)

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


# ---------------------------------------------------------------------------------------
# Small tools
# ---------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rounded(x: float, digits: int = 3) -> float:
    """`digits` significant figures (readable JSON without losing the point)."""
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x == 0:
        return x
    return round(x, max(0, digits - 1 - int(math.floor(math.log10(abs(x))))))


def datasheet_bf16_tflops(device: torch.device) -> tuple[float | None, str]:
    """(dense bf16 peak, where it comes from); None off CUDA or for an unknown card."""
    if device.type != "cuda":
        return None, "no data-sheet peak for a CPU"
    override = os.environ.get("FMCNET_PEAK_TFLOPS")
    if override:
        return float(override), "FMCNET_PEAK_TFLOPS"
    name = torch.cuda.get_device_name(device)
    for key, tflops in DATASHEET_BF16_TFLOPS:
        if key in name:
            return tflops, f"dense bf16 peak of {key} from the data sheet"
    return None, f"unknown data-sheet peak for {name}; set FMCNET_PEAK_TFLOPS"


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


def count_step_flops(cfg: Config, num_classes: int) -> float:
    """FLOPs of one step's forward + backward through the network, counted on meta
    tensors (no compute). The losses' own FLOPs (a few [B, C] distance matrices, well
    under 0.1 %) are left out: their identity checks need real values."""
    from torch.utils.flop_counter import FlopCounterMode

    from fmcnet.model import FMCNet

    with torch.device("meta"):
        model = FMCNet.from_config(cfg, num_classes)
        x = torch.empty(cfg.batch_size, 3, cfg.height, cfg.width)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x, x)
        sum(v.float().mean() for v in out.values()).backward()
    return float(counter.get_total_flops())


def endless(sampler) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A sampler's batches, epoch after epoch."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from sampler
        epoch += 1


def random_images(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """uint8 NHWC noise: pixel values do not change the speed of any step timed here."""
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------
# The step, as train() assembles it
# ---------------------------------------------------------------------------------------


class Trainer:
    """Model, optimizers, `TrainStep` and `OnDeviceBatches` built as `fmcnet.train.train`
    builds them (same functions), on given images, for timing and short runs."""

    def __init__(self, cfg: Config, images_v, images_i, labels_v: np.ndarray,
                 labels_i: np.ndarray, num_classes: int, device: torch.device, *,
                 compile_backend: str | None = None, seed: int = 0) -> None:
        from fmcnet.batches import OnDeviceBatches
        from fmcnet.data.sampler import CrossModalitySampler
        from fmcnet.model import FMCNet
        from fmcnet.optim import build_optimizers
        from fmcnet.step import TrainStep

        seed_everything(seed)  # equal seeds give equal initial weights
        self.cfg, self.device = cfg, device
        model = FMCNet.from_config(cfg, num_classes).to(device).train()
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer, self.disc_optimizer = build_optimizers(model, cfg)
        forward = model
        if cfg.compile:
            forward = torch.compile(model, backend=compile_backend or "inductor")
        self.step = TrainStep(model, cfg, self.optimizer, self.disc_optimizer, device=device,
                              forward=forward)
        self.sampler = CrossModalitySampler(labels_v, labels_i, cfg.num_identities,
                                            cfg.num_instances, seed=seed,
                                            batches_per_epoch=cfg.steps_per_epoch)
        self.batches_iter = endless(self.sampler)
        generator = torch.Generator(device=device).manual_seed(seed)
        self.batches = OnDeviceBatches(images_v, images_i, labels_v, labels_i, cfg, generator)
        self.images_per_step = 2 * cfg.batch_size

    def data(self):
        return self.batches(*next(self.batches_iter))

    def __call__(self, mark: Callable[[str], None] | None = None) -> dict[str, torch.Tensor]:
        return self.step(*self.data(), mark=mark)

    def timed(self, plan: Plan) -> tuple[float, int]:
        """(seconds per step, steps timed): a synchronised one-step probe sizes the block
        so that it lasts `plan.min_timed_s`; the block itself syncs only at its ends, so the
        host runs ahead of the GPU as in training."""
        sync(self.device)
        start = time.perf_counter()
        self()
        sync(self.device)
        probe = time.perf_counter() - start
        steps = int(min(plan.max_timed_steps,
                        max(1, math.ceil(plan.min_timed_s / max(probe, 1e-6)))))
        start = time.perf_counter()
        for _ in range(steps):
            self()
        sync(self.device)
        return (time.perf_counter() - start) / steps, steps


def step_images(plan: Plan, cfg: Config, device: torch.device, on_device: bool = True):
    """(DeviceImages V, DeviceImages I, labels V, labels I) of random pixels."""
    from fmcnet.batches import DeviceImages

    n = plan.step_identities * plan.step_per_id
    labels = np.repeat(np.arange(plan.step_identities), plan.step_per_id)
    size = (cfg.height, cfg.width)
    return (DeviceImages(random_images(n, size, 1), device, on_device),
            DeviceImages(random_images(n, size, 2), device, on_device), labels, labels.copy())


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------


def section_matmul(ctx: Check) -> dict[str, Any]:
    """The card's own dense bf16 rate: C = A @ B on square bf16 matrices, best size."""
    device, rows = ctx.device, []
    for n in ctx.plan.matmul_sizes:
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        sync(device)
        reps, start = 0, time.perf_counter()
        while True:
            for _ in range(5):
                a @ b
            reps += 5
            sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= 0.5 * max(ctx.plan.min_timed_s, 0.1) or reps >= 200:
                break
        rows.append({"n": n, "tflops": rounded(2 * n**3 * reps / elapsed / 1e12), "reps": reps})
        del a, b
    best = max(rows, key=lambda r: r["tflops"])
    ctx.matmul_tflops = best["tflops"]
    peak, source = datasheet_bf16_tflops(device)
    return {"sizes": rows, "bf16_tflops": best["tflops"], "datasheet_bf16_tflops": peak,
            "datasheet_source": source,
            "fraction_of_datasheet": rounded(best["tflops"] / peak) if peak else None}


def _variant(ctx: Check, name: str, cfg: Config, data, *, compile_backend: str | None = None
             ) -> dict[str, Any]:
    """Images/s, peak memory and MFU of the real step in one configuration."""
    device, plan = ctx.device, ctx.plan
    reset_memory(device)
    trainer = Trainer(cfg, *data, ctx.num_classes, device, compile_backend=compile_backend)
    sync(device)
    start = time.perf_counter()
    trainer()
    sync(device)
    first_s = time.perf_counter() - start
    for _ in range(plan.warmup_steps):
        trainer()
    step_s, steps = trainer.timed(plan)
    row: dict[str, Any] = {
        "images_per_s": rounded(trainer.images_per_step / step_s),
        "step_ms": rounded(step_s * 1e3), "steps_timed": steps,
        "first_step_s": rounded(first_s), "peak_memory_gb": peak_memory_gb(device),
    }
    if ctx.step_flops:
        achieved = ctx.step_flops / step_s / 1e12
        row["achieved_tflops"] = rounded(achieved)
        if ctx.matmul_tflops:
            row["mfu"] = rounded(achieved / ctx.matmul_tflops)
        peak, _ = datasheet_bf16_tflops(device)
        if peak:
            row["mfu_datasheet"] = rounded(achieved / peak)
    ctx.variant_step_s[name] = step_s
    del trainer
    reset_memory(device)
    return row


def step_config(ctx: Check, **overrides: Any) -> Config:
    """The profile's config as `paper` trains on this device, with variant overrides;
    `amp` and `cpu_amp` move together so the dry run takes the bf16 path on the CPU."""
    amp = overrides.pop("amp", True)
    return make_config(ctx.plan.profile, pretrained=False, progress=False,
                       device=ctx.device.type, amp=amp, cpu_amp=amp, **overrides)


def section_step(ctx: Check) -> dict[str, Any]:
    """The real step at the profile's shape: precision and layout variants, cuDNN
    autotuning, images on the device vs pinned host memory, augmentation share, phases."""
    from fmcnet.assembly import set_backend_flags

    device, plan = ctx.device, ctx.plan
    set_backend_flags(device)
    base = step_config(ctx)
    ctx.step_flops = count_step_flops(base, ctx.num_classes)
    out: dict[str, Any] = {
        "shape": describe_shape(base), "flops_per_step": rounded(ctx.step_flops),
        "images_per_step": 2 * base.batch_size, "num_classes": ctx.num_classes,
        "mfu_denominator": "the bf16 matmul rate measured in this run (section matmul)",
    }
    data = step_images(plan, base, device)
    out["image_location"] = data[0].location
    variants = {
        "bf16_channels_last": {"amp": True, "channels_last": True},  # what train() runs
        "fp32": {"amp": False, "channels_last": False},
        "bf16": {"amp": True, "channels_last": False},
    }
    rows: dict[str, Any] = {}
    out["variants"] = rows
    for name, opts in variants.items():
        rows[name] = _variant(ctx, name, step_config(ctx, **opts), data)
        ctx.partial("step", out)
    default = rows["bf16_channels_last"]
    for row in rows.values():
        row["vs_fp32"] = rounded(row["images_per_s"] / rows["fp32"]["images_per_s"])
    ctx.default_step_s = ctx.variant_step_s["bf16_channels_last"]

    # Baseline for the backend flags train() sets: cuDNN autotuning off.
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        off = _variant(ctx, "cudnn_benchmark_off", base, data)
        set_backend_flags(device)
        out["cudnn_benchmark"] = {
            "off_images_per_s": off["images_per_s"], "on_images_per_s": default["images_per_s"],
            "on_vs_off": rounded(default["images_per_s"] / off["images_per_s"])}
    else:
        out["cudnn_benchmark"] = {"skipped": "CUDA only"}

    # Images resident on the device vs gathered from pinned host memory, interleaved.
    pinned = step_images(plan, base, device, on_device=False)
    trainers = {"device": Trainer(base, *data, ctx.num_classes, device),
                "pinned": Trainer(base, *pinned, ctx.num_classes, device)}
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for t in trainers.values():
        for _ in range(plan.warmup_steps):
            t()
    for r in range(2):
        for k in (list(trainers) if r % 2 == 0 else list(trainers)[::-1]):
            times[k].append(trainers[k].timed(plan)[0])
    dev_s, pin_s = (float(np.median(times[k])) for k in ("device", "pinned"))
    out["data_location"] = {
        "device_images_per_s": rounded(trainers["device"].images_per_step / dev_s),
        "pinned_images_per_s": rounded(trainers["pinned"].images_per_step / pin_s),
        "device_vs_pinned": rounded(pin_s / dev_s),
        "locations": [data[0].location, pinned[0].location],
    }

    # The augmentation's share: OnDeviceBatches alone vs the whole step, same trainer.
    trainer = trainers["device"]
    n_data = max(2, min(200, round(plan.min_timed_s / 2 / max(dev_s, 1e-6))))
    sync(device)
    start = time.perf_counter()
    for _ in range(n_data):
        trainer.data()
    sync(device)
    data_s = (time.perf_counter() - start) / n_data
    out["augmentation"] = {"gather_augment_ms": rounded(data_s * 1e3),
                           "step_ms": rounded(dev_s * 1e3),
                           "share_of_step": rounded(data_s / dev_s)}

    # Phase breakdown (synchronised marks: slower than the free-running step).
    clock = PhaseClock(device)
    n_phase = max(2, min(50, n_data // 2))
    for _ in range(n_phase):
        clock.start()
        x = trainer.data()
        clock.mark("data")
        trainer.step(*x, mark=clock.mark)
    out["phases_ms"] = {k: rounded(v / n_phase * 1e3) for k, v in clock.totals.items()}
    out["phases_note"] = "each phase synchronised: sums to more than the free-running step"
    del trainers, trainer, pinned
    reset_memory(device)
    return out


def describe_shape(cfg: Config) -> str:
    return (f"{cfg.backbone} last_stride={cfg.last_stride} {cfg.height}x{cfg.width}, "
            f"P={cfg.num_identities} x K={cfg.num_instances} per modality "
            f"({2 * cfg.batch_size} images per step)")


def sysu_sized_lists(ids: int, visible: int, infrared: int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cameras V, identities V, cameras I, identities I): `visible` and `infrared`
    images spread evenly over `ids` identities, each on a random camera of its modality."""
    rng = np.random.default_rng(seed)
    lists = []
    for total, cams in ((visible, (1, 2, 4, 5)), (infrared, (3, 6))):
        counts = np.full(ids, total // ids)
        counts[rng.permutation(ids)[: total % ids]] += 1
        ident = np.repeat(np.arange(ids), counts)
        lists += [rng.choice(cams, len(ident)), ident]
    return tuple(lists)


def resize_uint8(images: np.ndarray, size: tuple[int, int], device: torch.device,
                 chunk: int = 2048) -> np.ndarray:
    """Bilinear resize of uint8 NHWC images on `device`, chunk by chunk, back to the host."""
    out = np.empty((len(images), *size, 3), dtype=np.uint8)
    for s in range(0, len(images), chunk):
        x = torch.from_numpy(images[s:s + chunk]).to(device).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        out[s:s + chunk] = y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()
    return out


def section_data(ctx: Check) -> dict[str, Any]:
    """The SYSU-sized synthetic training set: rendered in memory, resized on the device,
    then held as `DeviceImages` (on the device when it fits) like train() holds it."""
    from fmcnet.batches import DeviceImages
    from fmcnet.data.synthetic import render_images

    plan, device = ctx.plan, ctx.device
    cfg = step_config(ctx)
    cam_v, id_v, cam_i, id_i = sysu_sized_lists(plan.train_ids, plan.train_visible,
                                                plan.train_infrared, ctx.seed)
    workers = os.cpu_count() or 1
    start = time.perf_counter()
    pixels = render_images(np.concatenate([cam_v, cam_i]), np.concatenate([id_v, id_i]),
                           identities=plan.train_ids, seed=ctx.seed,
                           image_size=plan.render_size, workers=workers)
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    pixels = resize_uint8(pixels, (cfg.height, cfg.width), device)
    resize_s = time.perf_counter() - start
    host_v, host_i = pixels[: len(cam_v)], pixels[len(cam_v):]
    start = time.perf_counter()
    ctx.train_set = {
        "images_v": DeviceImages(host_v, device, cfg.data_on_device),
        "images_i": DeviceImages(host_i, device, cfg.data_on_device),
        "labels_v": id_v, "labels_i": id_i, "host_v": host_v,
    }
    sync(device)
    place_s = time.perf_counter() - start
    return {
        "identities": plan.train_ids, "visible": len(cam_v), "infrared": len(cam_i),
        "rendered_at": list(plan.render_size), "resized_to": [cfg.height, cfg.width],
        "render_s": rounded(render_s), "render_threads": workers,
        "resize_s": rounded(resize_s), "to_device_s": rounded(place_s),
        "location": ctx.train_set["images_v"].location,
        "gb": rounded(pixels.nbytes / 2**30),
        "note": "fmcnet.data.synthetic.render_images (the renderer of the built-in set), "
                "bilinear resize on the device; labels = identity index",
    }


def _run_steps(trainer: Trainer, steps: int, log_every: int) -> tuple[list[str], np.ndarray]:
    """Run `steps` steps with train()'s schedule (`lr_factor`, `set_lr`); returns the
    term names and a [steps, terms] array, synchronising once per `log_every` steps as
    train() does. Raises on the first non-finite term."""
    from fmcnet.optim import lr_factor, set_lr

    cfg = trainer.cfg
    per_epoch = len(trainer.sampler)
    names: list[str] | None = None
    pending: list[torch.Tensor] = []
    rows: list[np.ndarray] = []
    for step in range(steps):
        factor = lr_factor(cfg, step, per_epoch)
        set_lr(trainer.optimizer, cfg.lr, factor)
        set_lr(trainer.disc_optimizer, cfg.disc_lr, factor)
        terms = trainer()
        if names is None:
            names = list(terms)
        pending.append(torch.stack([terms[n].detach().float() for n in names]))
        if len(pending) >= log_every or step == steps - 1:
            block = torch.stack(pending).cpu().numpy()
            pending = []
            bad = ~np.isfinite(block)
            if bad.any():
                r, c = (int(i) for i in np.argwhere(bad)[0])
                at = step - len(block) + r + 2
                raise FMCNetError(f"loss term {names[c]!r} became {block[r, c]} at step {at}")
            rows.append(block)
    return names or [], np.concatenate(rows) if rows else np.zeros((0, 0))


def section_run(ctx: Check) -> dict[str, Any]:
    """200+ steps of the profile from random init on the SYSU-sized set, then the same
    first steps in bf16 and in fp32 (twice: the fp32 repeat is the noise floor)."""
    plan, device, data = ctx.plan, ctx.device, ctx.train_set
    if data is None:
        raise FMCNetError("section run needs section data (the SYSU-sized set)")
    cfg = step_config(ctx)
    images = (data["images_v"], data["images_i"], data["labels_v"], data["labels_i"])
    reset_memory(device)
    trainer = Trainer(cfg, *images, plan.train_ids, device, seed=ctx.seed)
    sync(device)
    start = time.perf_counter()
    names, values = _run_steps(trainer, plan.run_steps, cfg.log_every)
    sync(device)
    total_s = time.perf_counter() - start
    # The steady rate, timed after the run: cuDNN autotuning and allocator growth of the
    # first steps are behind it (the whole run's rate above includes them).
    step_s, steps_timed = trainer.timed(plan)
    window = max(1, min(20, len(values) // 3))
    first, last = values[:window].mean(0), values[-window:].mean(0)
    terms = {n: {"first": rounded(float(a)), "last": rounded(float(b))}
             for n, a, b in zip(names, first, last)}
    out: dict[str, Any] = {
        "config": f"profile {cfg.profile}: {describe_shape(cfg)}, {cfg.optimizer} lr "
                  f"{cfg.lr} (warm-up {cfg.warmup_epochs} epochs), random init, bf16 "
                  f"autocast {'on' if trainer.step.autocast_enabled else 'off'}, "
                  f"channels_last {cfg.channels_last}",
        "steps": len(values), "steps_per_epoch": len(trainer.sampler),
        "lr_factor_last": rounded(_lr_at(cfg, len(values) - 1, len(trainer.sampler))),
        "all_finite": True, "wall_s": rounded(total_s),
        "images_per_s_whole_run": rounded(trainer.images_per_step * len(values) / total_s),
        "images_per_s_steady": rounded(trainer.images_per_step / step_s),
        "steady_steps_timed": steps_timed,
        "peak_memory_gb": peak_memory_gb(device),
        "window": f"mean of the first / last {window} steps",
        "terms": terms,
        "hinge_activity": {n: terms[n] for n in names if n.startswith("hinge/")},
        "disc_acc": terms.get("disc_acc"),
    }
    if not out["hinge_activity"]:
        out["hinge_activity_note"] = "the step returned no hinge/* terms"
    ctx.run_step_s = step_s
    ctx.trained_model = trainer.model
    ctx.steps_per_epoch = len(trainer.sampler)
    ctx.save_checkpoint_probe(trainer)
    del trainer
    reset_memory(device)

    # The same first steps from one seed: bf16 vs fp32, and fp32 vs fp32.
    totals = {}
    for name, amp in (("bf16", True), ("fp32", False), ("fp32_repeat", False)):
        t = Trainer(step_config(ctx, amp=amp), *images, plan.train_ids, device, seed=ctx.seed)
        gap_names, gap_values = _run_steps(t, plan.gap_steps, plan.gap_steps)
        totals[name] = gap_values[:, gap_names.index("total")]
        del t
        reset_memory(device)

    def gap(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
        return {"max_rel": rounded(float(rel.max())), "mean_rel": rounded(float(rel.mean())),
                "last_rel": rounded(float(rel[-1]))}

    out["precision_gap"] = {
        "steps": plan.gap_steps, "seed": ctx.seed, "term": "total",
        "bf16_vs_fp32": gap(totals["bf16"], totals["fp32"]),
        "fp32_vs_fp32_repeat": gap(totals["fp32_repeat"], totals["fp32"]),
        "total_bf16": [rounded(float(v), 5) for v in totals["bf16"]],
        "total_fp32": [rounded(float(v), 5) for v in totals["fp32"]],
    }
    return out


def _lr_at(cfg: Config, step: int, per_epoch: int) -> float:
    from fmcnet.optim import lr_factor

    return lr_factor(cfg, step, per_epoch)


def section_extraction(ctx: Check) -> dict[str, Any]:
    """`extract_features` (the evaluation path: host uint8 -> device -> features) at the
    profile's resolution, bf16 autocast vs fp32, with the model trained in section run."""
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.model import FMCNet

    plan, device = ctx.plan, ctx.device
    cfg = step_config(ctx)
    if ctx.trained_model is not None and ctx.train_set is not None:
        model, source = ctx.trained_model, "the model of section run"
        pool = ctx.train_set["host_v"]
        images = pool[np.arange(plan.extract_images) % len(pool)]
    else:
        model = FMCNet.from_config(cfg, ctx.num_classes).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        source = "a randomly initialised model"
        images = random_images(plan.extract_images, (cfg.height, cfg.width), 3)
    out: dict[str, Any] = {"images": len(images), "batch_size": cfg.eval_batch_size,
                           "model": source, "feature_dim": model.feature_dim}
    for name, amp in (("bf16", True), ("fp32", False)):
        def run(n: int | None = None, amp: bool = amp) -> torch.Tensor:
            return extract_features(model, images[:n], "visible", device=device,
                                    batch_size=cfg.eval_batch_size, amp=amp, cpu_amp=amp,
                                    channels_last=cfg.channels_last)
        run(cfg.eval_batch_size)  # warm-up: cuDNN autotuning for the batch shape
        start = time.perf_counter()
        feats = run()
        seconds = time.perf_counter() - start  # features come back on the host: synced
        if not torch.isfinite(feats).all():
            raise FMCNetError(f"extraction ({name}) returned non-finite features")
        out[name] = {"seconds": rounded(seconds), "images_per_s": rounded(len(images) / seconds)}
    out["bf16_vs_fp32"] = rounded(out["bf16"]["images_per_s"] / out["fp32"]["images_per_s"])
    ctx.extract_images_per_s = {k: out[k]["images_per_s"] for k in ("bf16", "fp32")}
    return out


class SysuTest:
    """SYSU-MM01's test split in numbers: 96 ids; 3,803 infrared queries from cam3 / cam6;
    a visible gallery pool of 6,775 images over the 301 (id, camera) pairs present among
    cams 1/2/4/5, at least ten images each; `scale` < 1 shrinks every count."""

    def __init__(self, rng: np.random.Generator, scale: float = 1.0) -> None:
        ids, queries, pool, pairs = (max(int(round(n * scale)), 8) for n in (
            SYSU_TEST_IDS, SYSU_QUERIES, SYSU_GALLERY_POOL, SYSU_PAIRS))
        pairs = min(pairs, 4 * ids)
        pool = max(pool, 10 * pairs)
        self.q_pids = rng.integers(0, ids, queries)
        self.q_cams = rng.choice([3, 6], queries)
        all_pairs = np.array([(p, c) for p in range(ids) for c in (1, 2, 4, 5)])
        # every id keeps one pair (each has a gallery image), the rest drawn at random
        first = all_pairs[np.arange(ids) * 4 + rng.integers(0, 4, ids)]
        rest = np.array([p for p in all_pairs if not any((p == first).all(1))]).reshape(-1, 2)
        chosen = np.concatenate([first, rest[rng.permutation(len(rest))[:pairs - ids]]])
        pair_of = np.concatenate([np.repeat(np.arange(pairs), 10),
                                  rng.integers(0, pairs, pool - 10 * pairs)])
        self.ids, self.pair_of = ids, pair_of
        self.g_pids, self.g_cams = chosen[pair_of, 0], chosen[pair_of, 1]

    def trial(self, rng: np.random.Generator, shots: int, indoor: bool) -> np.ndarray:
        """Gallery-pool rows of one trial: `shots` images of every (id, camera) pair."""
        rows = []
        for pair in np.unique(self.pair_of):
            members = np.flatnonzero(self.pair_of == pair)
            if indoor and self.g_cams[members[0]] not in (1, 2):
                continue
            rows.append(rng.choice(members, shots, replace=False))
        return np.sort(np.concatenate(rows))


def identity_features(rng: np.random.Generator, pids: np.ndarray, dim: int,
                      centres: np.ndarray) -> torch.Tensor:
    """A centre per identity plus unit noise: metrics neither 0 nor 1."""
    return torch.from_numpy((centres[pids] + rng.standard_normal((len(pids), dim)))
                            .astype(np.float32))


class SysuProtocolRun:
    """What `evaluate_dataset` does after extraction, on random identity-structured
    features of SYSU-MM01's counts: one distance matrix per gallery pool (all / indoor),
    then `rank_metrics` for each of the 4 settings x `trials` trials."""

    SETTINGS = {f"{mode}/{shot}": (mode == "indoor", n)
                for mode in ("all", "indoor") for shot, n in (("single", 1), ("multi", 10))}

    def __init__(self, rng: np.random.Generator, dim: int, trials: int, scale: float = 1.0):
        self.sysu = sysu = SysuTest(rng, scale)
        # same-id / other-id separation independent of the width
        centres = rng.standard_normal((SYSU_TEST_IDS, dim)) * (0.35 * (64 / dim) ** 0.25)
        self.qf = identity_features(rng, sysu.q_pids, dim, centres)
        self.gf = identity_features(rng, sysu.g_pids, dim, centres)
        self.indoor_pool = np.flatnonzero(np.isin(sysu.g_cams, (1, 2)))
        self.plans = {name: [sysu.trial(rng, shots, indoor) for _ in range(trials)]
                      for name, (indoor, shots) in self.SETTINGS.items()}
        self.trials, self.dim = trials, dim

    def __call__(self, device: torch.device) -> dict[str, float]:
        """mAP per setting (mean over trials); host floats, so the device work is done."""
        from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

        s = self.sysu
        q = self.qf.to(device)
        pools = {"all": pairwise_distance(q, self.gf.to(device)),
                 "indoor": pairwise_distance(q, self.gf[torch.from_numpy(self.indoor_pool)]
                                             .to(device))}
        pool_index = {"all": np.arange(len(self.gf)), "indoor": self.indoor_pool}
        maps = {}
        for name, (indoor, _) in self.SETTINGS.items():
            pool = "indoor" if indoor else "all"
            values = []
            for rows in self.plans[name]:
                # trial rows index the full pool; the indoor matrix holds only cams 1 / 2
                position = torch.from_numpy(np.searchsorted(pool_index[pool], rows))
                m = rank_metrics(pools[pool][:, position.to(device)], s.q_pids, s.g_pids[rows],
                                 s.q_cams, s.g_cams[rows], protocol="sysu")
                values.append(m["mAP"])
            maps[name] = float(np.mean(values))
        return maps


def section_protocol(ctx: Check) -> dict[str, Any]:
    """The SYSU-MM01 protocol from features on the device vs on the CPU (same features,
    same trials: the mAPs must agree), and re-ranking at SYSU-MM01 size."""
    from fmcnet.evaluation.rerank import re_ranking

    plan, device = ctx.plan, ctx.device
    dim = ctx.feature_dim
    rng = np.random.default_rng(ctx.seed)
    run = SysuProtocolRun(rng, dim, plan.trials, plan.test_scale)
    run(device)  # warm-up: CUDA context pieces, cuBLAS handles (not part of evaluation)
    times, maps = [], {}
    for _ in range(3):
        start = time.perf_counter()
        maps = run(device)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    out: dict[str, Any] = {
        "queries": len(run.qf), "gallery_pool": len(run.gf), "feature_dim": dim,
        "settings": len(run.SETTINGS), "trials": plan.trials,
        "seconds": rounded(seconds), "repeats": len(times),
        "mAP_by_setting": {k: rounded(v) for k, v in maps.items()},
        "note": "random identity-structured features, already extracted; what "
                "evaluate_dataset does after extraction",
    }
    ctx.protocol_s = seconds
    ctx.partial("protocol", out)
    # Baseline: the same protocol on the CPU (on the dry run: the CPU twice, same path).
    if ctx.budget.left() > (0 if ctx.device.type == "cpu" else 60):
        start = time.perf_counter()
        cpu_maps = run(torch.device("cpu"))
        cpu_s = time.perf_counter() - start
        diff = max(abs(cpu_maps[k] - maps[k]) for k in maps)
        if diff > 1e-4:
            raise FMCNetError(f"protocol mAP differs between {device.type} and CPU by {diff}")
        out["cpu_baseline"] = {"seconds": rounded(cpu_s),
                               "device_vs_cpu": rounded(cpu_s / seconds),
                               "max_mAP_diff": rounded(diff),
                               "cpu_threads": torch.get_num_threads()}
    else:
        out["cpu_baseline"] = {"skipped": "budget"}

    # Re-ranking: one call per trial when `rerank` is on (the gallery changes per trial).
    rr: dict[str, Any] = {}
    for name in ("all/single", "all/multi"):
        rows = run.plans[name][0]
        q, g = run.qf.to(device), run.gf[torch.from_numpy(rows)].to(device)
        re_ranking(q, g)  # warm-up
        sync(device)
        start = time.perf_counter()
        d = re_ranking(q, g)
        sync(device)
        seconds = time.perf_counter() - start
        if not torch.isfinite(d).all():
            raise FMCNetError(f"re-ranking ({name}) returned non-finite distances")
        rr[name] = {"queries": len(q), "gallery": len(g), "seconds": rounded(seconds)}
    # all and indoor galleries: indoor is about half the all-search gallery
    est = plan.trials * (rr["all/single"]["seconds"] + rr["all/multi"]["seconds"]) * 2
    rr["protocol_with_rerank_estimate_s"] = rounded(est)
    rr["estimate_note"] = ("trials x (single + multi) x 2 settings each: an upper bound, "
                           "indoor galleries are smaller")
    out["rerank"] = rr
    return out


def section_compile(ctx: Check) -> dict[str, Any]:
    """bf16 + channels_last + torch.compile: compile time (the first step) counted, and
    the steps it takes to pay for itself against the uncompiled step of section step."""
    from fmcnet.assembly import set_backend_flags

    set_backend_flags(ctx.device)
    data = step_images(ctx.plan, step_config(ctx), ctx.device)
    cfg = step_config(ctx, channels_last=True, compile=True)
    if ctx.step_flops is None:
        ctx.step_flops = count_step_flops(cfg, ctx.num_classes)
    row = _variant(ctx, "bf16_channels_last_compile", cfg, data,
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


# ---------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


# Seconds a section needs on a GPU (generous: H100-class timings x ~3); skipped if the
# budget has less left. The CPU dry run has no such limits.
SECTION_NEEDS_S = {"matmul": 10, "step": 90, "data": 60, "run": 90, "extraction": 30,
                   "protocol": 30, "compile": 150}


class Check:
    """State shared by the sections, and the report written after each of them."""

    def __init__(self, out_dir: Path, device: torch.device, plan: Plan, budget: Budget,
                 seed: int, mode: str) -> None:
        self.out_dir, self.device, self.plan, self.budget = out_dir, device, plan, budget
        self.seed, self.mode = seed, mode
        self.num_classes = SYSU_TRAIN_IDS
        self.matmul_tflops: float | None = None
        self.step_flops: float | None = None
        self.default_step_s: float | None = None
        self.run_step_s: float | None = None
        self.compile_step_s: float | None = None
        self.compile_s: float | None = None
        self.extract_images_per_s: dict[str, float] = {}
        self.protocol_s: float | None = None
        self.checkpoint_s: float | None = None
        self.steps_per_epoch: int | None = None
        self.variant_step_s: dict[str, float] = {}
        self.train_set: dict[str, Any] | None = None
        self.trained_model = None
        with torch.device("meta"):
            from fmcnet.model import FMCNet

            self.feature_dim = FMCNet.from_config(step_config(self), 8).feature_dim
        self.result: dict[str, Any] = {"check": "gpu-check", "mode": mode,
                                       "environment": environment(device), "sections": {}}

    def save_checkpoint_probe(self, trainer: Trainer) -> None:
        """Seconds to write one checkpoint as train() writes it (for the estimate)."""
        from fmcnet.checkpoints import save_checkpoint

        path = self.out_dir / ".checkpoint-probe.pt"
        start = time.perf_counter()
        save_checkpoint(path, {"model": trainer.model.state_dict(),
                               "optimizer": trainer.optimizer.state_dict(),
                               "disc_optimizer": trainer.disc_optimizer.state_dict()})
        self.checkpoint_s = time.perf_counter() - start
        path.unlink(missing_ok=True)

    def partial(self, name: str, body: dict[str, Any]) -> None:
        """Write a section's results so far (a run killed mid-section keeps them)."""
        self.result["sections"][name] = {"status": "running", **body}
        self.save()

    def save(self) -> None:
        self.result["estimate"] = estimate(self)
        self.result["goals"] = goals(self.result) if self.device.type == "cuda" else {
            "note": "goals apply to one H100/H200; not judged on a CPU dry run"}
        self.result["wall_s"] = rounded(self.budget.elapsed())
        atomic_write_json(self.out_dir / "gpu-check.json", _jsonable(self.result))
        atomic_write_text(self.out_dir / "gpu-check.md", markdown(self.result))


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


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return _jsonable(x.item())
    return x


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


SECTION_FUNCS: dict[str, Callable[[Check], dict[str, Any]]] = {
    "matmul": section_matmul, "step": section_step, "data": section_data,
    "run": section_run, "extraction": section_extraction, "protocol": section_protocol,
    "compile": section_compile,
}


def run_check(out_dir: str | os.PathLike, *, device: str = "auto", tiny: bool = False,
              budget_s: float = 400.0, sections: list[str] | None = None, seed: int = 0,
              compile: bool = True, log: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Run the check; returns the result written to `out_dir`/gpu-check.json."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dev = pick_device(device)
    if dev.type != "cuda" and not tiny:
        raise FMCNetError(
            f"gpu-check found no CUDA device (device={device!r} -> {dev}); the full check "
            "needs one GPU. On a CPU run the dry run: gpu-check --device cpu --tiny")
    names = list(sections or SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise FMCNetError(f"unknown gpu-check section(s) {unknown}; choose from {list(SECTIONS)}")
    if not compile and "compile" in names:
        names.remove("compile")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = TINY_PLAN if tiny else GPU_PLAN
    budget = Budget(budget_s)
    from fmcnet.assembly import set_backend_flags

    set_backend_flags(dev)
    ctx = Check(out, dev, plan, budget, seed, "tiny dry run" if tiny else "full")
    ctx.result["budget_s"] = budget_s
    ctx.result["plan"] = dataclasses.asdict(plan)
    for name in names:
        need = 0 if tiny else SECTION_NEEDS_S[name]
        if budget.left() < need:
            ctx.result["sections"][name] = {
                "status": "skipped", "reason": f"budget: {budget.left():.0f} s left of "
                f"{budget_s:.0f}, the section needs ~{need} s"}
            log(f"gpu-check: {name} skipped (budget)")
            ctx.save()
            continue
        log(f"gpu-check: {name} ({budget.elapsed():.0f} s elapsed)")
        start = time.perf_counter()
        try:
            body = SECTION_FUNCS[name](ctx)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - one section's failure is reported, not fatal
            body = {"error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=8).splitlines()[-12:]}
            status = "error"
            log(f"gpu-check: {name} FAILED: {body['error']}")
        if name == "compile" and status == "ok":
            ctx.compile_s = body.get("compile_s")
        ctx.result["sections"][name] = {"status": status,
                                        "seconds": rounded(time.perf_counter() - start), **body}
        ctx.save()
    return ctx.result


def failed_sections(result: dict[str, Any]) -> list[str]:
    return [n for n, s in result["sections"].items() if s.get("status") == "error"]


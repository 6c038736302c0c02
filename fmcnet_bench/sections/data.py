"""``data``: a SYSU-MM01-sized synthetic training set (395 identities, 22,258 visible +
11,909 infrared images) rendered in memory, resized on the device, held as `train()` holds it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from fmcnet.batches import DeviceImages
from fmcnet.data.synthetic import render_images
from fmcnet_bench.plan import step_config
from fmcnet_bench.sysu import sysu_sized_lists
from fmcnet_bench.timing import rounded, sync

if TYPE_CHECKING:
    from fmcnet_bench.check import Check


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

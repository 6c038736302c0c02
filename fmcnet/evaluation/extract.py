"""Feature extraction for evaluation: uint8 NHWC images in, L2-normalised features out."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    starts = range(0, n, batch_size)
    if progress:
        try:
            from fmcnet.progress import bar

            return bar(starts, desc=desc, unit="batch", leave=False)
        except ImportError:  # progress is a nicety, never a requirement
            pass
    return starts


def _run(model: torch.nn.Module, x: torch.Tensor, modality: str, parts: bool):
    if parts:
        return {k: v.float() for k, v in model.extract(x, modality).items()}
    return model.embed(x, modality).float()


def _combine(a, b):
    """Mean of the outputs for an image and its mirror (tensors or dicts of tensors)."""
    if isinstance(a, dict):
        return {k: (a[k] + b[k]) / 2 for k in a}
    return (a + b) / 2


def extract_features(
    model: torch.nn.Module,
    images: np.ndarray | Sequence,
    modality: str,
    *,
    device: torch.device | str,
    batch_size: int = 256,
    tta: bool = False,
    amp: bool = False,
    cpu_amp: bool = False,
    channels_last: bool = True,
    parts: bool = False,
    progress: bool = False,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Retrieval features of `images` (uint8 [N, H, W, 3], e.g. a cache memmap).

    Each image passes through `model.embed(x, modality)` exactly once (twice with
    `tta`: the image and its horizontal mirror, features averaged). Returns float32
    L2-normalised features [N, C] on the CPU. With `parts=True`, returns
    `model.extract(x, modality)` -- a dict of every part, concatenated, not normalised
    (for the embedding maps). Only `len(images)` and slicing are used, so any object
    that slices into uint8 NHWC arrays works.

    `amp=True` runs the network under bf16 autocast on CUDA (faster; the features differ
    from fp32 in their low bits, which can reorder near-ties). The default is fp32, as
    the reference implementations evaluate; reported numbers use `cfg.eval_amp`. On the
    CPU `amp` applies only with `cpu_amp=True` (`cfg.cpu_amp`): without native bf16 it
    is emulated and slower.
    """
    from fmcnet.data.augment import normalize  # the one normalisation (ImageNet mean/std)

    device = torch.device(device)
    cuda = device.type == "cuda"
    was_training = model.training
    model.eval()
    outs: list = []
    use_autocast = amp and (cuda or (cpu_amp and device.type == "cpu"))
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if use_autocast
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), autocast:
            for s in _batches(len(images), batch_size, progress, f"extract {modality}"):
                # a copy: cache memmaps are read-only, and this reads the rows from disk once
                batch = torch.from_numpy(np.array(images[s : s + batch_size], dtype=np.uint8))
                if cuda:
                    batch = batch.pin_memory().to(device, non_blocking=True)
                # NHWC memory viewed as NCHW is already channels_last
                x = normalize(batch.permute(0, 3, 1, 2))
                x = x.contiguous(memory_format=torch.channels_last if channels_last
                                 else torch.contiguous_format)
                out = _run(model, x, modality, parts)
                if tta:
                    out = _combine(out, _run(model, torch.flip(x, dims=[3]), modality, parts))
                outs.append(
                    {k: v.cpu() for k, v in out.items()} if parts else out.cpu()
                )
    finally:
        model.train(was_training)

    if parts:
        if not outs:
            return {}
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    if not outs:
        raise ValueError("extract_features got no images")
    return F.normalize(torch.cat(outs), dim=1)

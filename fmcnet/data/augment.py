"""Batched training augmentation and the one normalisation (docs/method.md).

Everything runs as whole-batch tensor operations on the images' device: uint8 NCHW
in, float32 out. Training applies, per sample, pad-10 + random crop (the common
baselines' choice), a horizontal flip, ImageNet normalisation and random erasing; for
visible images optionally CAJ's channel augmentation (off in the paper's protocol).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ERASE_ATTEMPTS = 10  # as torchvision's RandomErasing
# Channel augmentation: each row turns RGB into one grey channel (R, G, B, luminance).
_CHANNEL_WEIGHTS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.299, 0.587, 0.114))


def _check_uint8(x: Tensor) -> None:
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
        raise TypeError(
            f"expected uint8 images [B, 3, H, W], got {x.dtype} {tuple(x.shape)}; images come "
            "from fmcnet.data.cache.load_images (uint8 NHWC) permuted to NCHW"
        )


def _memory_format(x: Tensor) -> torch.memory_format:
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def normalize(x: Tensor) -> Tensor:
    """uint8 [B, 3, H, W] -> float32 (x/255 - mean) / std with ImageNet statistics.

    Same device; a channels_last input gives a channels_last output.
    """
    _check_uint8(x)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1) * 255
    inv_std = 1 / (torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1) * 255)
    # In-place ops on the fresh float copy keep its memory format.
    return x.to(torch.float32, memory_format=_memory_format(x)).sub_(mean).mul_(inv_std)


class TrainAugment:
    """Pad + random crop, horizontal flip, normalisation, random erasing; per sample.

    pad: zero padding (black pixels, as the baselines' ``transforms.Pad``) before a
    random crop back to H x W. flip_prob: probability of a horizontal flip.
    erase_prob, erase_area, erase_ratio: random erasing as torchvision's
    ``RandomErasing`` (10 attempts at a rectangle of area fraction in `erase_area` and
    aspect ratio in [r, 1/r] that fits the image; none fits -> no erasing). Choice: the
    rectangle is filled with 0 after normalisation, i.e. the ImageNet mean colour
    (torchvision's default ``value=0``).
    channel_prob: probability that an image becomes one of its channels, R, G or B, or
    its luminance (equally likely), copied to all three: the channel augmentation of CAJ
    (Ye et al., ICCV 2021), for visible images only (``modality="visible"``; infrared
    images already are three equal channels). Colour is a shortcut inside the visible
    modality that infrared images cannot match; random channels take it away.

    ``__call__(x, generator)`` takes uint8 [B, 3, H, W] and returns float32 in the
    input's memory format on the input's device. Random numbers are drawn on the
    generator's device (the default generator of x's device when None) and moved to x,
    so a CPU generator gives the same augmentation for CPU and CUDA images.
    """

    def __init__(
        self,
        pad: int = 10,
        flip_prob: float = 0.5,
        erase_prob: float = 0.5,
        erase_area: tuple[float, float] = (0.02, 0.4),
        erase_ratio: float = 0.3,
        channel_prob: float = 0.0,
    ) -> None:
        if (pad < 0 or not 0 <= flip_prob <= 1 or not 0 <= erase_prob <= 1
                or not 0 <= channel_prob <= 1):
            raise ValueError(
                f"need pad >= 0 and probabilities in [0, 1], got pad={pad}, "
                f"flip_prob={flip_prob}, erase_prob={erase_prob}, channel_prob={channel_prob}"
            )
        lo, hi = (float(a) for a in erase_area)
        if not 0 < lo <= hi <= 1 or not 0 < erase_ratio <= 1:
            raise ValueError(
                f"need 0 < erase_area[0] <= erase_area[1] <= 1 and 0 < erase_ratio <= 1, got "
                f"erase_area={tuple(erase_area)}, erase_ratio={erase_ratio}"
            )
        self.pad, self.flip_prob, self.erase_prob = int(pad), float(flip_prob), float(erase_prob)
        self.erase_area, self.erase_ratio = (lo, hi), float(erase_ratio)
        self.channel_prob = float(channel_prob)

    @classmethod
    def from_config(cls, cfg: Any, modality: str = "visible") -> TrainAugment:
        """The training augmentation of `modality`'s images (channel augmentation: visible)."""
        channel = getattr(cfg, "channel_aug_prob", 0.0) if modality == "visible" else 0.0
        return cls(cfg.pad, cfg.flip_prob, cfg.erase_prob, tuple(cfg.erase_area), cfg.erase_ratio,
                   channel)

    def __repr__(self) -> str:
        return (f"TrainAugment(pad={self.pad}, flip_prob={self.flip_prob}, "
                f"erase_prob={self.erase_prob}, erase_area={self.erase_area}, "
                f"erase_ratio={self.erase_ratio}, channel_prob={self.channel_prob})")

    def _uniform(self, shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None):
        device = generator.device if generator is not None else x.device
        return torch.rand(shape, generator=generator, device=device).to(x.device)

    def channel_mix(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Per sample with probability `channel_prob`: R, G, B or the luminance (rounded)
        in all three channels; uint8 in, uint8 out, same memory format."""
        b = x.shape[0]
        u = self._uniform((b, 2), x, generator)
        on = u[:, 0] < self.channel_prob
        pick = (u[:, 1] * len(_CHANNEL_WEIGHTS)).long().clamp_(max=len(_CHANNEL_WEIGHTS) - 1)
        weights = torch.tensor(_CHANNEL_WEIGHTS, device=x.device)[pick]  # [B, 3]
        grey = (x.float() * weights[:, :, None, None]).sum(1, keepdim=True).round_()
        out = torch.where(on[:, None, None, None], grey.clamp_(0, 255).to(torch.uint8), x)
        return out.contiguous(memory_format=_memory_format(x))

    def crop_flip(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Pad + random crop + flip as one gather; uint8 in, uint8 out (NCHW view of NHWC)."""
        b, _, h, w = x.shape
        u = self._uniform((b, 3), x, generator)
        span = 2 * self.pad + 1
        oy = (u[:, 0] * span).long().clamp_(max=span - 1) - self.pad  # top-left offset
        ox = (u[:, 1] * span).long().clamp_(max=span - 1) - self.pad
        flip = u[:, 2] < self.flip_prob
        rows = torch.arange(h, device=x.device)[None, :] + oy[:, None]  # [B, H]
        cols = torch.arange(w, device=x.device)[None, :]
        cols = torch.where(flip[:, None], w - 1 - cols, cols) + ox[:, None]  # [B, W]
        valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        nhwc = x.permute(0, 2, 3, 1)
        batch = torch.arange(b, device=x.device)[:, None, None]
        out = nhwc[batch, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
        out = out * valid[..., None].to(out.dtype)  # outside the image: the zero padding
        return out.permute(0, 3, 1, 2)

    def erase_mask(self, b: int, h: int, w: int, x: Tensor,
                   generator: torch.Generator | None = None) -> Tensor:
        """Boolean [B, 1, H, W]: the erased rectangle of each sample (empty when not erased)."""
        u = self._uniform((b, 2 * _ERASE_ATTEMPTS + 3), x, generator)
        lo, hi = self.erase_area
        area = h * w * (lo + (hi - lo) * u[:, :_ERASE_ATTEMPTS])
        log_r = math.log(self.erase_ratio)
        aspect = torch.exp(log_r + (-2 * log_r) * u[:, _ERASE_ATTEMPTS:2 * _ERASE_ATTEMPTS])
        eh = torch.sqrt(area * aspect).round().long()
        ew = torch.sqrt(area / aspect).round().long()
        fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
        first = fits.long().argmax(1, keepdim=True)  # the first attempt that fits
        eh, ew = eh.gather(1, first)[:, 0], ew.gather(1, first)[:, 0]
        on = fits.any(1) & (u[:, -3] < self.erase_prob)
        y0 = (u[:, -2] * (h - eh + 1)).long().clamp_(min=0)
        x0 = (u[:, -1] * (w - ew + 1)).long().clamp_(min=0)
        y0, x0 = torch.minimum(y0, h - eh), torch.minimum(x0, w - ew)
        ys = torch.arange(h, device=x.device)[None, :]
        xs = torch.arange(w, device=x.device)[None, :]
        in_y = (ys >= y0[:, None]) & (ys < (y0 + eh)[:, None])
        in_x = (xs >= x0[:, None]) & (xs < (x0 + ew)[:, None])
        return (in_y[:, :, None] & in_x[:, None, :] & on[:, None, None])[:, None]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_uint8(x)
        fmt = _memory_format(x)
        b, _, h, w = x.shape
        if self.channel_prob > 0:  # no draws when off: the random stream stays as it was
            x = self.channel_mix(x, generator)
        out = normalize(self.crop_flip(x, generator))
        if self.erase_prob > 0:
            out = out.masked_fill(self.erase_mask(b, h, w, x, generator), 0.0)
        return out.contiguous(memory_format=fmt)

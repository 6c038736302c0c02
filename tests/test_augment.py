"""normalize and TrainAugment: values, geometry, erasing, determinism, memory format."""

from __future__ import annotations

import pytest
import torch

from fmcnet.config import make_config
from fmcnet.data.augment import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, normalize

H, W = 24, 12


def _images(b: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (b, 3, H, W), generator=g, dtype=torch.uint8)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_normalize_values_and_formats():
    x = _images()
    y = normalize(x)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert y.dtype == torch.float32 and y.is_contiguous()
    torch.testing.assert_close(y, (x.float() / 255 - mean) / std)
    cl = x.contiguous(memory_format=torch.channels_last)
    y_cl = normalize(cl)
    assert y_cl.is_contiguous(memory_format=torch.channels_last) and not y_cl.is_contiguous()
    torch.testing.assert_close(y_cl, y)
    with pytest.raises(TypeError, match="uint8"):
        normalize(x.float())


def test_from_config():
    cfg = make_config("smoke", pad=3, flip_prob=0.25, erase_area=[0.1, 0.2])
    aug = TrainAugment.from_config(cfg)
    assert (aug.pad, aug.flip_prob, aug.erase_area) == (3, 0.25, (0.1, 0.2))


def test_crop_only_moves_pixels_inside_the_padded_frame():
    """Without flip or erasing the output is the input shifted by (dy, dx) in
    [-pad, pad], with zero padding where the shift uncovers the border."""
    x = _images(16)
    pad = 4
    aug = TrainAugment(pad=pad, flip_prob=0.0, erase_prob=0.0)
    out = aug.crop_flip(x, _gen(1))
    assert out.shape == x.shape and out.dtype == torch.uint8
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    shifts = []
    for b in range(len(x)):  # test-side reference only
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(out[b], xp[b, :, dy:dy + H, dx:dx + W])]
        assert len(found) == 1, "crop is not a window of the padded image"
        shifts.append(found[0])
    assert len(set(shifts)) > 4  # per-sample offsets


def test_values_are_normalised_input_pixels_or_padding():
    x = _images()
    y = TrainAugment(pad=3, flip_prob=0.5, erase_prob=0.0)(x, _gen(2))
    assert y.shape == x.shape and y.dtype == torch.float32
    allowed = normalize(torch.cat([x, torch.zeros_like(x[:1])]))  # + the padding value
    for c in range(3):
        values = torch.unique(allowed[:, c])
        got = y[:, c].reshape(-1)
        nearest = (got[:, None] - values[None]).abs().min(1).values
        assert nearest.max() < 1e-5


def test_flip_flips():
    x = torch.zeros(4, 3, H, W, dtype=torch.uint8)
    x[..., : W // 3] = 255  # bright left third: asymmetric
    y = TrainAugment(pad=0, flip_prob=1.0, erase_prob=0.0)(x, _gen(0))
    torch.testing.assert_close(y, normalize(x.flip(-1)))
    y0 = TrainAugment(pad=0, flip_prob=0.0, erase_prob=0.0)(x, _gen(0))
    torch.testing.assert_close(y0, normalize(x))


def test_erasing_fraction_within_bounds():
    x = _images(64)
    lo, hi = 0.05, 0.3
    aug = TrainAugment(pad=0, flip_prob=0.0, erase_prob=1.0, erase_area=(lo, hi), erase_ratio=0.3)
    y = aug(x, _gen(3))
    erased = (y == 0).all(1).float().mean((1, 2))  # x's normalised values are never 0
    assert (erased > 0).float().mean() > 0.9  # almost every rectangle fits in 10 attempts
    hit = erased[erased > 0]
    # Rounding the rectangle's sides to whole pixels moves the area a little.
    assert hit.min() >= lo * 0.6 and hit.max() <= hi * 1.4
    assert hit.std() > 0.02  # sizes vary
    kept = ~(y == 0).all(1, keepdim=True)
    torch.testing.assert_close(y * kept, normalize(x) * kept)
    none = TrainAugment(pad=0, flip_prob=0.0, erase_prob=0.0)(x, _gen(3))
    assert not (none == 0).all(1).any()


def test_deterministic_under_a_seed():
    x = _images(16)
    aug = TrainAugment()
    assert torch.equal(aug(x, _gen(5)), aug(x, _gen(5)))
    assert not torch.equal(aug(x, _gen(5)), aug(x, _gen(6)))


def test_channels_last_input():
    x = _images(8)
    cl = x.contiguous(memory_format=torch.channels_last)
    aug = TrainAugment()
    y_cl = aug(cl, _gen(4))
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl, aug(x, _gen(4)))
    # The NHWC arrays of the cache, permuted, are channels_last already.
    nhwc = x.permute(0, 2, 3, 1).contiguous()
    torch.testing.assert_close(aug(nhwc.permute(0, 3, 1, 2), _gen(4)), y_cl)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_with_cuda_images():
    x = _images(8)
    aug = TrainAugment()
    y = aug(x.cuda(), _gen(7))
    assert y.device.type == "cuda"
    torch.testing.assert_close(y.cpu(), aug(x, _gen(7)))


def test_channel_augmentation_picks_one_channel_or_the_luminance():
    """Each augmented image is R, G, B or its luminance in all three channels; the others
    are untouched; all four kinds occur; the rate follows channel_prob."""
    x = _images(400)
    aug = TrainAugment(pad=0, flip_prob=0.0, erase_prob=0.0, channel_prob=0.5)
    out = aug.channel_mix(x, _gen(3))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    same = (out == x).flatten(1).all(1)
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert bool((same | grey).all()) and 150 < int(grey.sum()) < 250
    lum = (x.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).round()
    kinds = torch.stack([(out[:, 0] == x[:, c]).flatten(1).all(1) for c in range(3)]
                        + [(out[:, 0].float() == lum).flatten(1).all(1)], 1) & grey[:, None]
    assert bool((kinds.any(1) == grey).all())
    assert all(int(k) > 20 for k in kinds.sum(0))  # R, G, B and luminance all occur
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert aug.channel_mix(x_cl, _gen(3)).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(aug.channel_mix(x_cl, _gen(3)), out)


def test_channel_augmentation_is_for_visible_images_and_off_by_default():
    cfg = make_config("smoke", channel_aug_prob=0.7)
    assert TrainAugment.from_config(cfg, "visible").channel_prob == 0.7
    assert TrainAugment.from_config(cfg, "infrared").channel_prob == 0.0
    assert make_config("paper").channel_aug_prob == 0.0
    # Off, it draws no random numbers: the augmentation stream is the one it always was.
    x = _images(6)
    plain = TrainAugment(pad=2)(x, _gen(5))
    assert torch.equal(TrainAugment(pad=2, channel_prob=0.0)(x, _gen(5)), plain)
    grey_all = TrainAugment(pad=2, flip_prob=0.0, erase_prob=0.0, channel_prob=1.0)(x, _gen(5))
    assert torch.allclose(grey_all[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0],
                          grey_all[:, 1] * IMAGENET_STD[1] + IMAGENET_MEAN[1], atol=1e-5)

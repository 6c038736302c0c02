"""A built-in visible-infrared re-ID data set in the SYSU-MM01 layout.

Real VI-ReID data sets are released only on request, so the demos, notebooks and tests
run on a synthetic set that the SYSU-MM01 loader reads unchanged:

```
root/cam1..cam6/<pid %04d>/<%04d>.jpg   visible: cam1, cam2, cam4, cam5; infrared: cam3, cam6
root/exp/{train,val,test}_id.txt        one line of comma-separated ids (~60/20/20 %)
root/synthetic.json                     the parameters that produced it
```

Each identity is a rendered pedestrian with its own body proportions (head, torso,
legs, shoulders), clothing colours and patterns (plain, stripes, checks, diagonals at
a per-identity frequency), sleeves, trousers or shorts, a bag and a hat. Visible
cameras render colour; infrared cameras render a heat image (three equal channels, as
SYSU-MM01 stores them). Cameras differ in background, illumination (gain and colour
cast) and viewpoint (mirroring, shear); images jitter in position, scale, stride and
noise. The difficulty knobs are keyword arguments of `synthesize`.

The modality gap
----------------
What crosses it, as in real thermal and near-infrared images: body proportions, the cut
of the clothes (sleeves, shorts, coat), the garment patterns (kind, frequency, phase;
they keep at least 0.12 of contrast in infrared), bag and hat, and bare skin (warm in
infrared). What does not: each garment's visible dye (brightness and hue), skin tone and
hair colour are seen only by the visible cameras, and each garment's infrared level (the
emissivity and warmth of its fabric), skin and hair temperature only by the infrared
ones. So both modalities hold identity information of their own, which is what FMCNet's
specific branches decompose. Two knobs relate the two sides:

* `thermal_coupling` -- the weight of a garment's visible luminance in its infrared
  level. Near 1 the infrared image is a grey-level copy of the visible one and colour
  brightness is a shortcut across the gap (the first generator's default, 0.95); real
  thermal (RegDB) and near-infrared (SYSU-MM01) images follow the visible luminance only
  loosely. Across identities, the correlation of mid-torso luminance between the
  modalities is about 0 / 0.56 / 0.98 at coupling 0 / 0.5 / 0.95 (with predictability 0;
  tests/test_synthetic.py measures it).
* `cross_modal_predictability` -- the share of each garment's visible dye (brightness,
  hue) and of its infrared level that is a fixed rule of the garment's cut (upper: pattern
  kind x short sleeves x coat; lower: pattern kind x shorts), one rule for the whole set,
  so training and test identities share it; the rest is the identity's own draw.

What compensation needs, and what this knob can and cannot show. FMC generates the other
modality's specific feature from the shared one, G_{I->V}(F_sh,I) ~ F_sp,V, and is
trained on the training identities. It can help retrieval of unseen identities only
through modality-specific cues that carry identity *and* are predictable, across
identities, from what crosses the gap. With predictability 0 the dye and the fabric are
private to their modality: no generator can predict them and the best it can output is
their mean. With predictability 1 they follow the cut, a rule a generator can learn on
training identities and apply to test identities. Information-theoretically a generated
feature is a function of F_sh, so compensation cannot add identity information that the
shared feature lacks. What it can change is the form: in the fused feature the gallery's
real dye meets the query's prediction of it, a large, easily read cue standing in for
cut attributes that F_sh holds only as subtle shape, which the Euclidean distance may
use better. Or it may not help at all; results/synthetic_ablations.md measures it.

Rendering is vectorised numpy: every body part is a boolean mask over coordinate grids
of a whole chunk of images, painted into a part-index map that looks up colours (or
temperatures) per image.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fmcnet.utils import FMCNetError, cache_dir

# Bump when rendering changes: the cache key of `ensure_synthetic` includes it.
GENERATOR_VERSION = 2
# Defaults of the two modality-gap knobs of `synthesize` (the configuration's
# synthetic_thermal_coupling / synthetic_cross_modal_predictability default to these).
THERMAL_COUPLING = 0.2
CROSS_MODAL_PREDICTABILITY = 0.5
VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
DEFAULT_IMAGE_SIZE = (128, 64)  # (H, W) on disk; the pre-processing cache resizes
MARKER = "synthetic.json"
_CHUNK = 128  # images rendered at once (fixed: the noise stream is drawn per chunk)

# Part indices of the paint map (painter's order is set in `_part_map`).
BG, SKIN, HAIR, UPPER, UPPER2, LOWER, LOWER2, SHOES, BAG, HAT = range(10)
_NUM_PARTS = 10


class _TargetExists(FMCNetError):
    """`synthesize` was pointed at a non-empty directory without `overwrite=True`."""


# ---- identities, cameras, image list -----------------------------------------------------


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB in [0, 1]; returns [..., 3]."""
    i = np.floor(h * 6).astype(np.int64) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    )  # [6, ..., 3]
    return np.take_along_axis(table, i[None, ..., None], axis=0)[0]


def _random_colours(rng: np.random.Generator, n: int, sat=(0.25, 1.0), val=(0.12, 0.95)):
    return _hsv_to_rgb(rng.random(n), rng.uniform(*sat, n), rng.uniform(*val, n))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


# Garment cuts whose dye and fabric follow a rule when cross_modal_predictability > 0:
# upper = pattern kind (5) x short sleeves x coat, lower = pattern kind (3) x shorts.
_UPPER_CUTS, _LOWER_CUTS = 5 * 2 * 2, 3 * 2


def _cut_index(p: dict[str, np.ndarray], part: str) -> np.ndarray:
    """Index of a garment's cut: what the silhouette and the pattern show in both modalities."""
    if part == "upper":
        return (p["upper_pattern"] * 2 + (p["sleeve"] < 1.0)) * 2 + (p["coat"] > 0)
    return p["lower_pattern"] * 2 + (p["shorts"] < 2.0)


def _identities(
    rng: np.random.Generator, n: int, coupling: float, colourfulness: float,
    predictability: float = 0.0,
) -> dict[str, np.ndarray]:
    """Per-identity appearance; lengths in units of body height, widths are half-widths.

    Per garment, three modality-specific properties: the visible dye's brightness and hue
    and the infrared level (emissivity and warmth of the fabric). Each is
    `predictability * rule(cut) + (1 - predictability) * own draw`, where `rule` is a
    lookup table over the garment's cut (one table per property, drawn once for the whole
    set, so training and test identities share it); the infrared level then mixes in the
    visible luminance with weight `coupling`.
    """
    p: dict[str, np.ndarray] = {}
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    p["height"] = u(0.84, 0.95)  # body height / image height (detector crops are tight)
    p["head"] = u(0.052, 0.078)  # head radius
    p["torso"] = u(0.26, 0.36)  # shoulder-to-hip length
    p["shoulder"] = u(0.085, 0.145)
    p["taper"] = u(-0.15, 0.28)  # hip half-width = shoulder * (1 - taper)
    p["arm"] = u(0.022, 0.040)
    p["leg"] = u(0.032, 0.058)
    p["coat"] = np.where(rng.random(n) < 0.3, u(0.04, 0.16), 0.0)  # upper garment below hip
    p["sleeve"] = np.where(rng.random(n) < 0.35, u(0.06, 0.14), 1.0)  # short sleeves
    p["shorts"] = np.where(rng.random(n) < 0.2, u(0.12, 0.25), 2.0)  # trousers reach the feet
    p["upper_pattern"] = rng.choice(5, n, p=[0.3, 0.2, 0.15, 0.2, 0.15])
    p["upper_freq"] = u(2.0, 7.0)
    p["upper_phase"] = u(0, 2 * np.pi)
    p["lower_pattern"] = rng.choice(3, n, p=[0.7, 0.15, 0.15])
    p["lower_freq"] = u(2.0, 6.0)
    p["bag"] = rng.choice([-1, 0, 1], n, p=[0.2, 0.6, 0.2])  # side, 0 = none
    p["bag_w"] = u(0.05, 0.09)
    p["bag_h"] = u(0.06, 0.13)
    p["hat"] = rng.random(n) < 0.25

    def blend(rule: np.ndarray, cut: np.ndarray) -> np.ndarray:
        """In [0, 1]: the cut's rule value with weight `predictability`, else a fresh draw."""
        return predictability * rule[cut] + (1 - predictability) * rng.random(n)

    def infrared_level(colour: np.ndarray, fabric: np.ndarray) -> np.ndarray:
        return 0.3 + 0.65 * (coupling * _luminance(colour) + (1 - coupling) * fabric)

    for part, cuts in (("upper", _UPPER_CUTS), ("lower", _LOWER_CUTS)):
        cut = _cut_index(p, part)
        rule_value, rule_hue, rule_heat = rng.random((3, cuts))
        # Visible dye: main and pattern colour. Saturation is skewed low (most clothes are
        # greys, blacks, navies, beiges), up to `colourfulness`; the pattern colour
        # differs in brightness by 0.2..0.5, so patterns show in luminance, not only hue.
        val = 0.08 + 0.87 * blend(rule_value, cut)
        hue = (rule_hue[cut] + (1 - predictability) * rng.random(n)) % 1.0
        step = rng.uniform(0.2, 0.5, n)
        val2 = np.where(val + step <= 0.95, val + step, val - step)
        val2 = np.where(val2 < 0.05, np.minimum(val + step, 0.95), val2)
        sat = colourfulness * rng.random((2, n)) ** 1.5
        p[f"c_{part}"] = _hsv_to_rgb(hue, sat[0], val)
        p[f"c_{part}2"] = _hsv_to_rgb(rng.random(n), sat[1], val2)
        # Infrared: the fabric's own level (the pattern's 0.15..0.45 away from it), pulled
        # towards the visible luminance by `coupling`, which is what lets colour be matched
        # across the gap; patterns keep at least 0.12 of contrast in infrared.
        own = blend(rule_heat, cut)
        step = rng.uniform(0.15, 0.45, n)
        own2 = np.where(own + step <= 1.0, own + step, own - step)
        base = infrared_level(p[f"c_{part}"], own)
        second = infrared_level(p[f"c_{part}2"], own2)
        step = second - base
        step = np.where(step >= 0, 1, -1) * np.maximum(np.abs(step), 0.12)
        p[f"t_{part}"], p[f"t_{part}2"] = base, np.clip(base + step, 0, 1)
    tone = rng.uniform(0.25, 0.95, n)
    p["c_skin"] = np.stack([0.45 + 0.5 * tone, 0.3 + 0.45 * tone, 0.2 + 0.4 * tone], -1)
    p["c_hair"] = _random_colours(rng, n, sat=(0.1, 0.6), val=(0.04, 0.45))
    p["c_shoes"] = _random_colours(rng, n, sat=(0.0, 0.5), val=(0.05, 0.7))
    p["c_bag"] = _random_colours(rng, n)
    p["c_hat"] = _random_colours(rng, n)
    # Skin, hair and accessories: their temperatures are independent of their colours.
    p["t_skin"] = u(0.70, 0.97)
    p["t_hair"] = u(0.30, 0.55)
    p["t_shoes"] = u(0.1, 0.35)
    p["t_bag"] = u(0.05, 0.3)  # carried objects are cold
    p["t_hat"] = u(0.2, 0.5)
    return p


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency texture in [0, 1]: a coarse random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g = lambda a, b: grid[(y0 + a)[:, None], (x0 + b)[None, :]]  # noqa: E731
    return (g(0, 0) * (1 - fy) * (1 - fx) + g(1, 0) * fy * (1 - fx) + g(0, 1) * (1 - fy) * fx
            + g(1, 1) * fy * fx)


def _cameras(rng: np.random.Generator, size: tuple[int, int]) -> dict[int, dict[str, Any]]:
    """Per-camera background, illumination and viewpoint (fixed for the data set)."""
    h, w = size
    cams: dict[int, dict[str, Any]] = {}
    yy = np.linspace(0, 1, h)[:, None, None]
    for cam in range(1, 7):
        infrared = cam in INFRARED_CAMS
        c: dict[str, Any] = {"infrared": infrared}
        c["mirror"] = cam in (2, 5, 6)  # the other side of the corridor
        c["shear"] = rng.uniform(-0.12, 0.12)
        c["gain"] = rng.uniform(0.8, 1.15)
        c["light"] = rng.uniform(-0.25, 0.25)  # left-right illumination gradient
        texture = _smooth_noise(rng, h, w, 4)[..., None]
        floor = (yy > rng.uniform(0.75, 0.9)).astype(np.float64)
        if infrared:
            base = rng.uniform(0.08, 0.3)  # cold surroundings, people are warm
            bg = base + 0.15 * texture + 0.05 * floor + rng.uniform(-0.08, 0.08) * yy
            c["background"] = np.clip(bg[..., 0], 0, 1).astype(np.float32)
            c["cast"] = np.ones(3)
        else:
            wall, ground = _random_colours(rng, 2, sat=(0.0, 0.35), val=(0.3, 0.8))
            bg = wall * (0.85 + 0.3 * texture) * (1 - floor) + ground * floor
            bg = bg * (1 + rng.uniform(-0.2, 0.2) * yy)
            c["background"] = np.clip(bg, 0, 1).astype(np.float32)
            c["cast"] = 1 + rng.uniform(-0.15, 0.15, 3)  # white-balance colour cast
        cams[cam] = c
    return cams


def _image_list(
    rng: np.random.Generator, n: int, images_per_camera: int, camera_presence: float
) -> tuple[np.ndarray, np.ndarray]:
    """(camera, identity index) per image, ordered by camera then identity.

    Each identity appears in each camera with probability `camera_presence`, and in at
    least one visible and one infrared camera; a present pair holds 1..2m-1 images
    (mean m).
    """
    present = rng.random((n, 6)) < camera_presence
    for cams in (VISIBLE_CAMS, INFRARED_CAMS):
        cols = np.asarray(cams) - 1
        lacking = ~present[:, cols].any(1)
        pick = cols[rng.integers(0, len(cols), n)]
        present[np.flatnonzero(lacking), pick[lacking]] = True
    counts = 1 + rng.binomial(2 * (images_per_camera - 1), 0.5, (n, 6))
    counts = np.where(present, counts, 0).T  # [cam, identity]
    cam_of = np.repeat(np.repeat(np.arange(1, 7), n), counts.reshape(-1))
    ident = np.repeat(np.tile(np.arange(n), 6), counts.reshape(-1))
    return cam_of, ident


# ---- rendering --------------------------------------------------------------------------


def _part_map(idp: dict[str, np.ndarray], img: dict[str, np.ndarray], size: tuple[int, int]):
    """Paint the part-index map of a chunk; returns (parts [n,H,W] uint8, shade [n,H,W]).

    Pixel (y, x) maps to body coordinates (by: 0 = top of head, 1 = soles; bx: signed
    horizontal distance from the body axis, both in body heights) through the image's
    scale, offset, shear and mirroring, so every part is a comparison of coordinates.
    """
    h, w = size
    col = lambda a: np.asarray(a, np.float32)[:, None, None]  # noqa: E731  (float32: speed)
    y = np.arange(h, dtype=np.float32)[None, :, None] + 0.5
    x = np.arange(w, dtype=np.float32)[None, None, :] + 0.5
    s = col(img["scale"] * idp["height"] * h)  # body height, pixels
    top = col((h - img["scale"] * idp["height"] * h) / 2 + img["dy"] * h)
    cx = col(w / 2 + img["dx"] * w)
    by = (y - top) / s  # [n, H, 1]
    bx = col(img["mirror"]) * ((x - cx) - col(img["shear"]) * (y - h / 2)) / s  # [n, H, W]
    ax = np.abs(bx)

    hr, tl, sh = col(idp["head"]), col(idp["torso"]), col(idp["shoulder"])
    t0 = 2 * hr  # shoulders
    hip = t0 + tl
    v = (by - t0) / tl  # 0 at the shoulders, 1 at the hip
    half = sh * (1 - col(idp["taper"]) * np.clip(v, 0, 1))  # torso half-width
    parts = np.zeros(bx.shape, dtype=np.uint8)

    # Legs: two bars whose centres spread with the stride; shorts show skin below.
    lw = col(idp["leg"])
    centre = lw * 1.05 + col(img["stride"]) * np.clip(by - hip, 0, None)
    legs = (by >= hip - 0.01) & (by < 0.955) & (np.abs(ax - centre) < lw)
    crotch = (by >= hip - 0.01) & (by < hip + 0.05) & (ax < centre + lw)
    lower_mask = legs | crotch
    u_leg = (ax - centre) / lw
    lower_pat = _pattern(col(idp["lower_pattern"]), col(idp["lower_freq"]), 0.0, u_leg,
                         (by - hip) / (1 - hip))
    bare = by > hip + col(idp["shorts"])
    parts[lower_mask] = LOWER
    parts[lower_mask & lower_pat] = LOWER2
    parts[legs & bare] = SKIN
    shoes = (by >= 0.94) & (by < 1.0) & (np.abs(ax - centre) < lw * 1.25)
    parts[shoes] = SHOES

    # Torso (+ coat below the hip) with its pattern; arms beside it.
    torso = (by >= t0) & (by < hip + col(idp["coat"])) & (ax < half)
    upper_pat = _pattern(col(idp["upper_pattern"]), col(idp["upper_freq"]),
                         col(idp["upper_phase"]), bx / sh, v)
    parts[torso] = UPPER
    parts[torso & upper_pat] = UPPER2
    aw = col(idp["arm"])
    arms = (by >= t0 + 0.01) & (by < t0 + 1.08 * tl) & (ax >= half) & (ax < half + 2 * aw)
    parts[arms] = UPPER
    parts[arms & (by > t0 + col(idp["sleeve"]))] = SKIN

    # Bag at one side of the hip, over the arm.
    side = col(idp["bag"])
    bag_x = side * bx - (sh + 2 * aw)
    bag = (side != 0) & (bag_x >= 0) & (bag_x < col(idp["bag_w"])) & (by >= hip - 0.07) & (
        by < hip - 0.07 + col(idp["bag_h"]))
    parts[bag] = BAG

    # Head: face, hair on top, optional hat.
    head = (bx / (0.82 * hr)) ** 2 + ((by - hr) / hr) ** 2 <= 1
    neck = (by >= 1.8 * hr) & (by < t0 + 0.01) & (ax < 0.35 * hr)
    parts[head | neck] = SKIN
    parts[head & (by < 0.7 * hr)] = HAIR
    hat = (col(idp["hat"]) > 0) & (by >= -0.02) & (by < 0.75 * hr) & (ax < 1.05 * hr)
    parts[hat] = HAT

    # Cylinder-like shading across the body.
    shade = 1 - 0.3 * np.clip(ax / (sh + 2 * aw), 0, 1) ** 2
    return parts, shade.astype(np.float32)


def _pattern(kind: np.ndarray, freq: np.ndarray, phase, u: np.ndarray, v: np.ndarray):
    """Boolean pattern over (u, v) in garment coordinates.

    kind: 0 plain, 1 horizontal stripes, 2 vertical stripes, 3 checks, 4 diagonal stripes.
    """
    a = np.sin(2 * np.pi * freq * v + phase)
    b = np.sin(np.pi * freq * 0.5 * u + phase)
    d = np.sin(2 * np.pi * freq * (v + 0.35 * u) + phase)
    return (((kind == 1) & (a > 0)) | ((kind == 2) & (b > 0)) | ((kind == 3) & (a * b > 0))
            | ((kind == 4) & (d > 0)))


def _render(
    idp: dict[str, np.ndarray], img: dict[str, np.ndarray], cam: dict[str, Any],
    size: tuple[int, int], noise: float, rng: np.random.Generator,
) -> np.ndarray:
    """Render a chunk of images of one camera; returns uint8 [n, H, W, 3]."""
    n = len(img["scale"])
    parts, shade = _part_map(idp, img, size)
    rows = np.arange(n)[:, None, None]
    person = parts != BG
    light = 1 + cam["light"] * np.linspace(-1, 1, size[1], dtype=np.float32)[None, None, :]
    gain = (cam["gain"] * img["brightness"])[:, None, None].astype(np.float32)
    if cam["infrared"]:
        # Infrared exposure varies less than visible light: half the log-brightness jitter.
        gain = np.sqrt(gain * cam["gain"]).astype(np.float32)
        names = ("t_skin", "t_hair", "t_upper", "t_upper2", "t_lower", "t_lower2", "t_shoes",
                 "t_bag", "t_hat")
        table = np.stack([np.zeros(n)] + [idp[k] for k in names], 1).astype(np.float32)
        heat = table[rows, parts] * (0.85 + 0.15 * shade)
        out = np.where(person, heat * gain, cam["background"][None] * gain * light)
        # Thermal optics are soft: a 3x3 box blur, then sensor noise.
        pad = np.pad(out, ((0, 0), (1, 1), (1, 1)), mode="edge")
        out = sum(pad[:, i:i + size[0], j:j + size[1]] for i in range(3) for j in range(3)) / 9
        out = out + rng.normal(0, noise, out.shape).astype(np.float32)
        out = np.repeat(out[..., None], 3, axis=-1)
    else:
        names = ("c_skin", "c_hair", "c_upper", "c_upper2", "c_lower", "c_lower2", "c_shoes",
                 "c_bag", "c_hat")
        table = np.stack([np.zeros((n, 3))] + [idp[k] for k in names], 1).astype(np.float32)
        colour = table[rows, parts] * shade[..., None]
        out = np.where(person[..., None], colour, cam["background"][None])
        out = out * (gain * light)[..., None] * cam["cast"].astype(np.float32)
        out = out + rng.normal(0, noise, out.shape).astype(np.float32)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


class _Scene:
    """Identities, cameras and per-image draws of one set: everything but the pixels.

    `cam_of` (cameras 1..6) must be sorted by camera. `chunks` are runs of at most
    `_CHUNK` images of one camera; chunk k draws its noise from a stream keyed by k, so
    the pixels do not depend on the order (or the threads) the chunks are rendered in.
    """

    def __init__(self, seeds: tuple[np.random.SeedSequence, ...], seed: int, identities: int,
                 cam_of: np.ndarray, ident: np.ndarray, size: tuple[int, int], *,
                 jitter: float, scale_jitter: float, noise: float, illumination: float,
                 thermal_coupling: float, colourfulness: float,
                 cross_modal_predictability: float) -> None:
        s_id, s_cam, s_img = seeds
        self.seed, self.size, self.noise, self.ident = seed, size, noise, ident
        self.idp = _identities(np.random.default_rng(s_id), identities, thermal_coupling,
                               colourfulness, cross_modal_predictability)
        self.cams = _cameras(np.random.default_rng(s_cam), size)
        n_img = len(cam_of)
        rng = np.random.default_rng(s_img)
        mirror_cam = np.array([self.cams[c]["mirror"] for c in range(1, 7)])[cam_of - 1]
        shear_cam = np.array([self.cams[c]["shear"] for c in range(1, 7)])[cam_of - 1]
        self.per_image = {
            "dx": rng.normal(0, jitter, n_img),
            "dy": rng.normal(0, jitter / 2, n_img),
            "scale": np.exp(rng.normal(0, scale_jitter, n_img)),
            "stride": rng.uniform(0, 0.1, n_img),
            "shear": shear_cam + rng.normal(0, 0.04, n_img),
            # Mostly the camera's viewpoint; sometimes the person walks the other way.
            "mirror": np.where(mirror_cam ^ (rng.random(n_img) < 0.2), -1.0, 1.0),
            "brightness": np.exp(rng.normal(0, illumination, n_img)),
        }
        # Keep the whole body inside the frame vertically.
        self.per_image["scale"] = np.minimum(self.per_image["scale"],
                                             0.97 / self.idp["height"][ident])
        self.chunks: list[tuple[int, int, int]] = []
        for c in range(1, 7):
            lo, hi = (int(np.searchsorted(cam_of, c, side)) for side in ("left", "right"))
            self.chunks += [(c, start, min(start + _CHUNK, hi)) for start in range(lo, hi, _CHUNK)]

    def render_chunk(self, k: int) -> np.ndarray:
        """uint8 [n, H, W, 3] of chunk k."""
        c, start, stop = self.chunks[k]
        ids = self.ident[start:stop]
        chunk_idp = {key: val[ids] for key, val in self.idp.items()}
        chunk_img = {key: val[start:stop] for key, val in self.per_image.items()}
        # One noise stream per chunk, keyed by its index: fixed chunking keeps it stable.
        noise_rng = np.random.default_rng([self.seed, GENERATOR_VERSION, 7, k])
        return _render(chunk_idp, chunk_img, self.cams[c], self.size, self.noise, noise_rng)


# ---- writing ----------------------------------------------------------------------------


def _split_ids(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Train / val / test pids (1-based), about 60 / 20 / 20 % like SYSU-MM01's 296/99/96."""
    perm = rng.permutation(n) + 1
    n_val = n_test = max(1, round(0.2 * n))
    return {
        "test": np.sort(perm[:n_test]),
        "val": np.sort(perm[n_test:n_test + n_val]),
        "train": np.sort(perm[n_test + n_val:]),
    }


def _install(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished `tmp` tree to `out` with renames, so `out` is never half-written."""
    try:
        os.rename(tmp, out)  # also replaces an empty directory on POSIX
        return
    except OSError:
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _TargetExists(
                f"{out} already exists and is not empty; choose another directory or pass "
                "overwrite=True (--overwrite) to replace it"
            ) from None
    trash = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, trash)
    os.rename(tmp, out)
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


def synthesize(
    out: str | os.PathLike,
    *,
    identities: int = 300,
    seed: int = 0,
    images_per_camera: int = 6,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    progress: bool = True,
    jitter: float = 0.015,
    scale_jitter: float = 0.02,
    noise: float = 0.02,
    illumination: float = 0.05,
    camera_presence: float = 0.8,
    thermal_coupling: float = THERMAL_COUPLING,
    cross_modal_predictability: float = CROSS_MODAL_PREDICTABILITY,
    colourfulness: float = 0.25,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic VI-ReID data set in the SYSU-MM01 layout to `out`; returns `out`.

    identities: pids 1..N, split ~60/20/20 into exp/train_id.txt, val_id.txt, test_id.txt.
    images_per_camera: mean images per (identity, camera) present (1..2m-1 each).
    image_size: (H, W) of the JPEG files.
    Difficulty knobs: `jitter` (std of the position offset, fraction of the image),
    `scale_jitter` (std of log scale), `noise` (pixel noise std, 0..1 range),
    `illumination` (std of log per-image brightness), `camera_presence` (probability an
    identity appears in a camera), `thermal_coupling` (0..1: how much a garment's
    infrared level follows its visible luminance rather than its fabric),
    `cross_modal_predictability` (0..1: how much of a garment's dye and fabric is a rule
    of its cut, which both modalities show; see the module docstring), `colourfulness`
    (0..1: the highest clothing saturation; hue is a cue only the visible modality has).
    The output is byte-identical for equal arguments.

    Calibration of the defaults (a plain ResNet-18 from random init, ID + batch-hard
    triplet loss, 120 SGD steps at lr 0.05 of 8 ids x 4 images per modality, 128x64, on
    the 200-identity set, CPU): all-search single-shot rank-1 about 39 % (chance 2.5 %).
    At 64x32 the same run gave 24 %; starting from a near gap-free setting (34 % at
    64x32), colourfulness 0.6 alone brought it to 17 %, thermal_coupling 0.8 alone to
    14 %, and jitter 0.03 / scale_jitter 0.04 / noise 0.03 / illumination 0.1 to 21 %.

    The set is written to a temporary sibling directory and renamed into place, so an
    interrupted run leaves nothing half-written.
    """
    from PIL import Image

    out = Path(out).expanduser()
    if identities < 3:
        raise FMCNetError(f"identities must be at least 3 (one per split), got {identities}")
    if images_per_camera < 1:
        raise FMCNetError(f"images_per_camera must be at least 1, got {images_per_camera}")
    h, w = (int(v) for v in image_size)
    for name, value in (("thermal_coupling", thermal_coupling),
                        ("cross_modal_predictability", cross_modal_predictability),
                        ("colourfulness", colourfulness)):
        if not 0.0 <= value <= 1.0:
            raise FMCNetError(f"{name} must be in [0, 1], got {value}")
    if h < 16 or w < 8:
        raise FMCNetError(f"image_size must be at least (16, 8), got {image_size}")
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise _TargetExists(
            f"{out} already exists and is not empty; choose another directory or pass "
            "overwrite=True (--overwrite) to replace it"
        )

    params = {
        "identities": int(identities), "seed": int(seed),
        "images_per_camera": int(images_per_camera), "image_size": [h, w],
        "jitter": jitter, "scale_jitter": scale_jitter, "noise": noise,
        "illumination": illumination, "camera_presence": camera_presence,
        "thermal_coupling": thermal_coupling,
        "cross_modal_predictability": cross_modal_predictability,
        "colourfulness": colourfulness,
        "version": GENERATOR_VERSION,
    }
    root = np.random.SeedSequence([int(seed), GENERATOR_VERSION])
    s_id, s_cam, s_list, s_img, s_split = root.spawn(5)
    cam_of, ident = _image_list(np.random.default_rng(s_list), identities, images_per_camera,
                                camera_presence)
    scene = _Scene((s_id, s_cam, s_img), int(seed), identities, cam_of, ident, (h, w),
                   jitter=jitter, scale_jitter=scale_jitter, noise=noise,
                   illumination=illumination, thermal_coupling=thermal_coupling,
                   colourfulness=colourfulness,
                   cross_modal_predictability=cross_modal_predictability)
    n_img = len(cam_of)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        bar = _progress(len(scene.chunks), progress)
        counter: dict[tuple[int, int], int] = {}
        for k, (c, start, stop) in enumerate(scene.chunks):
            pixels = scene.render_chunk(k)
            for pid0, arr in zip(ident[start:stop].tolist(), pixels):
                pid = pid0 + 1
                num = counter.get((c, pid), 0) + 1
                counter[(c, pid)] = num
                folder = tmp / f"cam{c}" / f"{pid:04d}"
                if num == 1:
                    folder.mkdir(parents=True)
                Image.fromarray(arr).save(folder / f"{num:04d}.jpg", quality=92)
            bar.update(1)
        bar.close()
        for c in range(1, 7):
            (tmp / f"cam{c}").mkdir(exist_ok=True)
        (tmp / "exp").mkdir()
        for split, pids in _split_ids(np.random.default_rng(s_split), identities).items():
            (tmp / "exp" / f"{split}_id.txt").write_text(",".join(str(p) for p in pids) + "\n")
        info = dict(params, images=int(n_img),
                    visible=int(np.isin(cam_of, VISIBLE_CAMS).sum()),
                    infrared=int(np.isin(cam_of, INFRARED_CAMS).sum()))
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        _install(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from fmcnet.progress import bar

    return bar(total=total, desc="synthesizing", unit="chunk", leave=False)


# ---- the cached copy --------------------------------------------------------------------


# The difficulty knobs are every keyword of `synthesize` except these: a knob added
# there is part of the cache key without another edit here.
_NOT_KNOBS = {"out", "identities", "seed", "images_per_camera", "image_size", "progress",
              "overwrite"}
_KNOB_DEFAULTS = {name: p.default for name, p in inspect.signature(synthesize).parameters.items()
                  if name not in _NOT_KNOBS}


def config_knobs(cfg: Any) -> dict[str, Any]:
    """The difficulty knobs a configuration sets: field `synthetic_<knob>` when `cfg` has
    one (e.g. synthetic_thermal_coupling), else `synthesize`'s default."""
    return {name: getattr(cfg, f"synthetic_{name}", default)
            for name, default in _KNOB_DEFAULTS.items()}


def expected_params(identities: int, seed: int, images_per_camera: int,
                    **knobs: Any) -> dict[str, Any]:
    """The parameters `synthesize` records in synthetic.json for these arguments: the
    difficulty knobs given in `knobs`, the defaults for the others, the image size and
    the generator version."""
    unknown = set(knobs) - set(_KNOB_DEFAULTS)
    if unknown:
        raise FMCNetError(f"unknown synthetic knob(s) {sorted(unknown)}; "
                          f"valid: {sorted(_KNOB_DEFAULTS)}")
    params = {"identities": int(identities), "seed": int(seed),
              "images_per_camera": int(images_per_camera),
              "image_size": list(DEFAULT_IMAGE_SIZE)}
    params.update(_KNOB_DEFAULTS)
    params.update(knobs)
    params["version"] = GENERATOR_VERSION
    return params


def synthetic_key(identities: int, seed: int, images_per_camera: int, **knobs: Any) -> str:
    """Hash of everything that determines the cached set's bytes (the knobs' defaults
    included, so a changed default gives a new set rather than a stale one)."""
    blob = json.dumps(expected_params(identities, seed, images_per_camera, **knobs),
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _is_current(path: Path, expected: dict[str, Any]) -> bool:
    """Whether `path` holds a finished set written with exactly `expected` parameters."""
    try:
        recorded = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and all(recorded.get(k) == v for k, v in expected.items())


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock so concurrent processes generate the set once (POSIX only;
    elsewhere the atomic rename alone keeps the cache consistent)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_synthetic(cfg: Any) -> Path:
    """The cached synthetic set for `cfg`, generated on first use.

    Lives at ``cache_dir() / f"synthetic-{key}"`` where the key hashes
    cfg.synthetic_identities, cfg.synthetic_seed, cfg.synthetic_images_per_camera, the
    difficulty knobs (`config_knobs`: cfg.synthetic_thermal_coupling, ...; the defaults of
    `synthesize` for knobs the configuration does not name) and the generator version, so
    changing any of them gives a fresh set. A set whose synthetic.json records other
    parameters is regenerated.
    """
    identities = int(getattr(cfg, "synthetic_identities", 300))
    seed = int(getattr(cfg, "synthetic_seed", 0))
    per_cam = int(getattr(cfg, "synthetic_images_per_camera", 6))
    knobs = config_knobs(cfg)
    expected = expected_params(identities, seed, per_cam, **knobs)
    path = cache_dir() / f"synthetic-{synthetic_key(identities, seed, per_cam, **knobs)}"
    if _is_current(path, expected):
        return path
    with _file_lock(path.with_name(path.name + ".lock")):
        if _is_current(path, expected):  # another process finished while we waited
            return path
        try:
            # A directory without a matching marker is a leftover or was written by
            # another generator (not ours to keep): replace it.
            synthesize(path, identities=identities, seed=seed, images_per_camera=per_cam,
                       progress=bool(getattr(cfg, "progress", True)), overwrite=path.exists(),
                       **knobs)
        except _TargetExists:
            if not _is_current(path, expected):
                raise
    return path


def render_images(
    cam_of: np.ndarray,
    ident: np.ndarray,
    *,
    identities: int,
    seed: int = 0,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    workers: int = 1,
    **knobs: float,
) -> np.ndarray:
    """The pixels of an explicit image list, in memory: uint8 [N, H, W, 3] in list order.

    The renderer of `synthesize` (same identities and cameras for the same `seed` and
    `identities`, same difficulty knobs and defaults) without writing JPEG files: for
    benchmarks that need a set of a given size quickly, such as SYSU-MM01's 34,167
    training images in the GPU check. `cam_of[i]` is image i's camera (1..6),
    `ident[i]` its identity index (0..identities-1). Chunks render in `workers` threads
    (numpy releases the GIL inside its array operations); the result does not depend on
    `workers`.
    """
    from concurrent.futures import ThreadPoolExecutor

    unknown = sorted(set(knobs) - set(_KNOB_DEFAULTS))
    if unknown:
        raise FMCNetError(f"render_images got unknown knobs {unknown}; "
                          f"valid: {sorted(_KNOB_DEFAULTS)}")
    params = {**_KNOB_DEFAULTS, **knobs}
    params.pop("camera_presence")  # the image list is given
    cam_of, ident = np.asarray(cam_of, np.int64), np.asarray(ident, np.int64)
    if len(cam_of) != len(ident) or (len(cam_of) and (
            cam_of.min() < 1 or cam_of.max() > 6 or ident.min() < 0 or ident.max() >= identities)):
        raise FMCNetError(f"render_images expects cameras 1..6 and identity indices "
                          f"0..{identities - 1} of equal length; got {len(cam_of)} cameras "
                          f"and {len(ident)} identities")
    order = np.argsort(cam_of, kind="stable")
    root = np.random.SeedSequence([int(seed), GENERATOR_VERSION])
    s_id, s_cam, _s_list, s_img, _s_split = root.spawn(5)
    size = (int(image_size[0]), int(image_size[1]))
    scene = _Scene((s_id, s_cam, s_img), int(seed), identities, cam_of[order], ident[order],
                   size, **params)
    out = np.empty((len(cam_of), *size, 3), dtype=np.uint8)

    def fill(k: int) -> None:
        _, start, stop = scene.chunks[k]
        out[order[start:stop]] = scene.render_chunk(k)

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        list(pool.map(fill, range(len(scene.chunks))))
    return out

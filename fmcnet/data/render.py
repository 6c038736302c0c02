"""The renderer of a synthetic person: identities, cameras and pixels, in memory.

Each identity is a rendered pedestrian with its own body proportions (head, torso,
legs, shoulders), clothing colours and patterns (plain, stripes, checks, diagonals at
a per-identity frequency), sleeves, trousers or shorts, a bag and a hat. Visible
cameras render colour; infrared cameras render a heat image (three equal channels, as
SYSU-MM01 stores them). Cameras differ in background, illumination (gain and colour
cast) and viewpoint (mirroring, shear); images jitter in position, scale, stride and
noise. The difficulty knobs are keyword arguments of `fmcnet.data.synthetic.synthesize`.

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

from typing import Any

import numpy as np

# Bump when rendering changes: the cache key of `fmcnet.data.synthetic.ensure_synthetic`
# includes it, and it seeds every random stream below.
GENERATOR_VERSION = 2
VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
_CHUNK = 128  # images rendered at once (fixed: the noise stream is drawn per chunk)

# Part indices of the paint map (painter's order is set in `_part_map`).
BG, SKIN, HAIR, UPPER, UPPER2, LOWER, LOWER2, SHOES, BAG, HAT = range(10)
_NUM_PARTS = 10


def seed_streams(seed: int) -> list[np.random.SeedSequence]:
    """The five independent streams of one set: identities, cameras, image list, per-image
    draws, split (in that order), all keyed by `seed` and the generator version."""
    return np.random.SeedSequence([int(seed), GENERATOR_VERSION]).spawn(5)


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


def image_list(
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


class Scene:
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

"""How the held-out renderer draws people (`fmcnet.data.heldout` writes the set).

Signed-distance shapes for a jointed figure in a walking pose, its clothes, accessories,
scenes and a camera model per camera, and a thermal model for the infrared cameras
(`fmcnet.data.heldout`'s docstring says what differs from the built-in renderer). `_Heldout`
holds one set's identities, cameras and per-image draws and renders it in chunks of at most
`_CHUNK` images of one camera; each chunk's noise comes from a stream keyed by its index,
so the bytes depend on nothing but the arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

HELDOUT_VERSION = 1
VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
_CHUNK = 128
_F = np.float32

# ---- signed distances (body heights; negative inside) ------------------------------------


def _col(a) -> np.ndarray:
    """A per-image value as [n, 1, 1] (float32, or bool), to broadcast over a chunk's pixels."""
    a = np.asarray(a)
    return (a if a.dtype == bool else a.astype(_F))[:, None, None]


def _capsule(x, y, ax, ay, bx, by, r):
    """Distance to the segment a-b minus r; also the signed lateral offset from the axis."""
    pax, pay, bax, bay = x - ax, y - ay, bx - ax, by - ay
    t = np.clip((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-9), 0, 1)
    dx, dy = pax - bax * t, pay - bay * t
    return np.sqrt(dx * dx + dy * dy) - r, dx


def _ellipse(x, y, cx, cy, rx, ry):
    return (np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1) * np.minimum(rx, ry)


def _round_box(x, y, cx, cy, hw, hh, r):
    """Rounded box of half-width `hw` (may vary per pixel: a tapered box) and half-height."""
    qx, qy = np.abs(x - cx) - hw + r, np.abs(y - cy) - hh + r
    out = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return out + np.minimum(np.maximum(qx, qy), 0) - r


def _band(t, duty, period_px):
    """Anti-aliased bands: t in cycles; a band of width `duty` centred at t = 0.5."""
    d = (np.abs(t - np.floor(t) - 0.5) - duty / 2) * period_px
    return np.clip(0.5 - d, 0, 1)


# ---- identities, cameras, image list -----------------------------------------------------


def _hsv(h, s, v) -> np.ndarray:
    """HSV -> RGB in [0, 1] ([..., 3]), through the hue's distance to each primary."""
    k = (np.asarray(h)[..., None] * 6 + np.array([5.0, 3.0, 1.0])) % 6
    f = np.clip(np.minimum(k, 4 - k), 0, 1)
    return np.asarray(v)[..., None] * (1 - np.asarray(s)[..., None] * f)


def _dyes(rng, n, colourfulness=0.7, val=(0.1, 0.9)):
    return _hsv(rng.random(n), colourfulness * rng.random(n) ** 1.2, rng.uniform(*val, n))


def _people(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-identity body, cut, patterns, accessories, dyes (visible) and insulations (infrared).

    Lengths are in body heights (0 = top of the head, 1 = soles), widths are half-widths.
    """
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    pick = lambda k, p: rng.choice(k, n, p=p)  # noqa: E731
    p: dict[str, np.ndarray] = {}
    p["height"] = u(0.80, 0.94)
    p["head_ry"] = u(0.055, 0.07)
    p["head_rx"] = p["head_ry"] * u(0.72, 0.9)
    p["neck"] = u(0.012, 0.03)
    p["shoulder"] = u(0.085, 0.135)
    p["hip"] = u(0.07, 0.125)
    p["torso"] = u(0.28, 0.35)
    p["thigh"] = u(0.028, 0.048)
    p["arm_r"] = u(0.017, 0.03)
    p["arm_len"] = u(0.36, 0.43)
    p["gait"] = u(0.18, 0.42)  # thigh swing amplitude, rad
    p["arm_swing"] = u(0.1, 0.45)
    p["abduct"] = u(0.03, 0.16)
    p["elbow"] = u(0.05, 0.5)
    p["hair_len"] = pick(3, [0.5, 0.25, 0.25]).astype(np.float64)  # short, medium, long
    p["hairline"] = u(0.0, 0.35)
    sleeve = pick(4, [0.5, 0.12, 0.3, 0.08])
    p["sleeve"] = np.choose(sleeve, [np.ones(n), np.full(n, 0.75), u(0.25, 0.4), np.zeros(n)])
    coat = rng.random(n) < 0.2
    p["top_len"] = np.where(coat, u(0.12, 0.28), u(0.0, 0.06))
    p["flare"] = u(0.05, 0.3)
    p["lower_kind"] = pick(3, [0.6, 0.15, 0.25])  # trousers, shorts, skirt
    p["shorts_len"] = u(0.1, 0.2)
    p["skirt_len"] = u(0.12, 0.3)
    p["skirt_flare"] = u(1.15, 1.7)
    p["tights"] = rng.random(n) < 0.5
    p["upper_pattern"] = pick(6, [0.28, 0.14, 0.14, 0.14, 0.16, 0.14])
    p["band_freq"], p["band_duty"], p["band_phase"] = u(1.5, 4.5), u(0.3, 0.7), u(0, 1)
    p["dot_grid"], p["dot_rad"] = u(0.035, 0.065), u(0.25, 0.42)
    p["dot_off_u"], p["dot_off_v"] = u(0, 1), u(0, 1)
    p["grad_gamma"], p["grad_dir"] = u(0.5, 2.0), rng.choice([-1.0, 1.0], n)
    p["logo_disc"], p["logo_v"] = rng.random(n) < 0.5, u(0.18, 0.5)
    p["logo_x"], p["logo_size"] = u(-0.4, 0.4), u(0.025, 0.06)
    p["yoke_v"] = u(0.18, 0.45)
    p["lower_pattern"] = pick(3, [0.62, 0.2, 0.18])  # plain, side stripe, bands
    p["stripe_w"], p["lband_freq"], p["lband_duty"] = u(0.25, 0.45), u(3, 8), u(0.3, 0.6)
    p["backpack"] = rng.random(n) < 0.25
    p["pack_w"], p["pack_h"], p["strap"] = u(0.07, 0.11), u(0.14, 0.22), u(0.01, 0.018)
    p["headwear"] = pick(3, [0.78, 0.12, 0.1])  # none, cap, beanie
    p["scarf"] = rng.random(n) < 0.15
    p["scarf_w"], p["scarf_len"] = u(0.02, 0.035), u(0.06, 0.16)
    p["scarf_side"] = rng.choice([-1.0, 1.0], n)
    p["cup"] = rng.random(n) < 0.12
    p["cup_side"] = rng.choice([-1.0, 1.0], n)

    # Visible only: dyes. The pattern's colour differs from the main one in brightness
    # by 0.2..0.45 (or, half the time, in hue as well), so patterns read in grey too.
    for part in ("upper", "lower"):
        hue, val = rng.random(n), u(0.1, 0.9)
        sat = 0.7 * rng.random((2, n)) ** 1.2
        step = u(0.2, 0.45)
        val2 = np.where(val + step <= 0.95, val + step, val - step)
        hue2 = np.where(rng.random(n) < 0.5, hue, rng.random(n))
        p[f"c_{part}"], p[f"c_{part}2"] = _hsv(hue, sat[0], val), _hsv(hue2, sat[1], val2)
    tone = u(0.0, 1.0)
    p["c_skin"] = np.stack([0.36 + 0.55 * tone, 0.24 + 0.5 * tone, 0.17 + 0.45 * tone], -1)
    p["c_skin"] = np.clip(p["c_skin"] * (1 + rng.normal(0, 0.04, (n, 3))), 0, 1)
    palette = np.array([[0.05, 0.04, 0.04], [0.25, 0.15, 0.08], [0.55, 0.4, 0.2],
                        [0.8, 0.7, 0.45], [0.6, 0.6, 0.6], [0.5, 0.1, 0.15]])
    p["c_hair"] = palette[pick(6, [0.35, 0.3, 0.12, 0.1, 0.08, 0.05])]
    for part in ("shoes", "pack", "hat", "scarf", "tights"):
        p[f"c_{part}"] = _dyes(rng, n)
    p["c_cup"] = _hsv(u(0.05, 0.12), u(0.0, 0.5), u(0.6, 0.95))

    # Infrared only: skin temperature and insulations, independent of every dye.
    p["t_skin"] = u(0.82, 0.97)
    for part in ("upper", "lower"):
        ins = u(0.1, 0.9)
        step = u(0.25, 0.5)
        p[f"i_{part}"] = ins
        p[f"i_{part}2"] = np.where(ins + step <= 0.95, ins + step, ins - step)
    p["i_hair"], p["i_shoes"], p["i_hat"] = u(0.55, 0.8), u(0.8, 0.95), u(0.5, 0.85)
    p["i_scarf"], p["i_tights"], p["i_pack"] = u(0.2, 0.45), u(0.15, 0.35), u(0.9, 1.0)
    p["cup_hot"] = rng.random(n) < 0.6  # an iced drink is the other 40 %
    return p


def _noise(rng, h, w, cell):
    """Smooth texture in about [0, 1]: a coarse random grid, blown up and blurred."""
    gh, gw = -(-h // cell) + 1, -(-w // cell) + 1
    up = np.kron(rng.random((gh, gw)), np.ones((cell, cell)))[:h, :w]
    out = gaussian_filter(up, cell / 2, mode="wrap")
    return (out - out.min()) / (np.ptp(out) + 1e-9)


def _floor_lines(h, w, horizon, rng):
    """Tile seams of a floor in perspective below `horizon` (0 elsewhere)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    below = y > horizon
    depth = np.maximum(y - horizon, 1e-3)
    across = np.abs(((x - rng.uniform(0, w)) / depth * rng.uniform(1.5, 3)) % 1 - 0.5) > 0.46
    along = np.abs((np.log(depth) * rng.uniform(2.5, 4)) % 1 - 0.5) > 0.44
    return below & (across | along)


def _scene(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A camera's background, twice the image width (each image crops it): [h, w, 3] or [h, w]."""
    y = (np.arange(h)[:, None] + 0.5) / h
    x = (np.arange(w)[None, :] + 0.5)
    tex = _noise(rng, h, w, max(2, h // 16))
    if kind in ("brick", "panels", "street", "glass"):
        horizon = h * rng.uniform(0.74, 0.86)
        floor = _dyes(rng, 1, 0.25, (0.25, 0.6))[0] * (0.9 + 0.2 * tex[..., None])
        floor = floor * (1 - 0.35 * _floor_lines(h, w, horizon, rng))[..., None]
        if kind == "brick":
            bh = h / rng.uniform(11, 16)
            row = np.floor(y * h / bh)
            bw = bh * rng.uniform(2.0, 3.0)
            brick = np.floor((x + (row % 2) * bw / 2) / bw)
            shade = rng.random((int(row.max()) + 1, int(brick.max()) + 2))[row.astype(int),
                                                                             brick.astype(int)]
            mortar = ((y * h) % bh < 1.0) | ((x + (row % 2) * bw / 2) % bw < 1.0)
            base = _dyes(rng, 1, 0.6, (0.35, 0.6))[0]
            wall = base * (0.8 + 0.3 * shade)[..., None]
            wall = np.where(mortar[..., None], 0.75, wall)
        elif kind == "panels":
            pw = w / rng.uniform(3, 6)
            panel = (np.floor(x / pw) % 2)[..., None] * np.ones_like(y)[..., None]
            a, b = _dyes(rng, 2, 0.3, (0.45, 0.85))
            wall = a + (b - a) * panel
            door = (np.abs(x - rng.uniform(0.2, 1.8) * w) < w * 0.18) & (y > 0.25)
            wall = np.where(door[..., None], wall * 0.45, wall)
            wall = np.where((y < 0.06)[..., None], 0.95, wall)  # ceiling light
        elif kind == "street":
            fine = _noise(rng, h, w, 2)
            leaves = np.stack([0.15 + 0.2 * fine, 0.3 + 0.3 * fine, 0.1 + 0.1 * fine], -1)
            facade = _dyes(rng, 1, 0.35, (0.4, 0.75))[0] * (0.85 + 0.3 * tex[..., None])
            wall = np.where((y < rng.uniform(0.3, 0.5))[..., None], leaves, facade)
        else:  # glass shop front
            sky = np.stack([0.35 + 0.3 * y, 0.4 + 0.3 * y, 0.5 + 0.25 * y], -1) * np.ones((1, w, 1))
            streak = np.clip(1 - np.abs(((x + 0.6 * y * h) % (w / 1.5)) - w / 6) / (w / 12), 0, 1)
            mullion = (x % (w / rng.uniform(2, 3.5))) < 2.0
            wall = sky + 0.25 * streak[..., None]
            wall = np.where(mullion[..., None], 0.2, wall)
        out = np.where((y * h > horizon)[..., None], floor, wall)
        return np.clip(out, 0, 1).astype(_F)
    ambient = rng.uniform(0.15, 0.3)
    if kind == "thermal_corridor":
        out = ambient + 0.06 * tex + 0.05 * y
        for lx in rng.uniform(0, w, 3):  # ceiling lamps
            out = out + rng.uniform(0.4, 0.6) * np.exp(-((x - lx) ** 2 / (0.02 * w * w)
                                                         + (y - 0.03) ** 2 / 0.002))
        rx = rng.uniform(0.1, 1.7) * w  # a radiator: warm fins
        fins = (np.abs(x - rx) < 0.3 * w) & (y > 0.55) & (y < 0.7) & ((x % 4) < 2)
        out = out + 0.3 * fins
    else:  # thermal street: cold sky, sun-warmed paving, cold poles
        sky = y < rng.uniform(0.25, 0.4)
        out = np.where(sky, ambient - 0.1, ambient + 0.05 * tex + 0.15 * np.clip(y - 0.6, 0, 1))
        for px in rng.uniform(0, w, 2):
            out = np.where(np.abs(x - px) < 1.5, ambient - 0.05, out)
    return np.clip(out, 0, 1).astype(_F)


_SCENES = {1: "brick", 2: "panels", 3: "thermal_corridor", 4: "street", 5: "glass",
           6: "thermal_street"}


def _camera_models(rng: np.random.Generator, size: tuple[int, int]) -> dict[int, dict[str, Any]]:
    """Per camera: scene, viewpoint (keystone, roll, yaw, share of front views) and optics."""
    h, w = size
    cams: dict[int, dict[str, Any]] = {}
    for cam in range(1, 7):
        c: dict[str, Any] = {"infrared": cam in INFRARED_CAMS}
        c["scene"] = _scene(_SCENES[cam], rng, h, 2 * w)
        c["keystone"] = rng.uniform(-0.2, 0.1)  # < 0: a camera high up, feet smaller
        c["roll"], c["yaw"] = rng.uniform(-0.04, 0.04), rng.uniform(-0.35, 0.35)
        c["front"] = rng.uniform(0.4, 0.8)  # share of people walking towards the camera
        c["noise"] = rng.uniform(0.01, 0.03)
        if c["infrared"]:
            c["ambient"] = float(c["scene"][int(0.8 * h)].mean())
            c["blur"] = rng.uniform(0.9, 1.5) * h / 128  # heat bloom, pixels
            c["columns"] = rng.normal(0, rng.uniform(0.005, 0.02), w).astype(_F)
            c["level"] = rng.uniform(-0.05, 0.05)
            c["contrast"] = rng.uniform(0.85, 1.15)
            c["quality"] = 88
        else:
            c["blur"] = rng.uniform(0.3, 1.1) * h / 128
            c["cast"] = (1 + rng.uniform(-0.12, 0.12, 3)).astype(_F)
            c["gamma"], c["saturation"] = rng.uniform(0.8, 1.2), rng.uniform(0.6, 1.2)
            c["light"], c["vignette"] = rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.35)
            c["quality"] = int(rng.integers(72, 94))
        cams[cam] = c
    return cams


def _image_list(rng: np.random.Generator, n: int, per_camera: int) -> tuple[np.ndarray, np.ndarray]:
    """(camera, identity index) per image, by camera then identity.

    Each identity is in each camera with probability 0.95 (and in at least one visible
    and one infrared camera) with per_camera-2 .. per_camera+2 images (at least 1).
    """
    present = rng.random((n, 6)) < 0.95
    for cams in (VISIBLE_CAMS, INFRARED_CAMS):
        cols = np.asarray(cams) - 1
        lacking = ~present[:, cols].any(1)
        present[np.flatnonzero(lacking), cols[rng.integers(0, len(cols), n)][lacking]] = True
    counts = np.maximum(1, rng.integers(per_camera - 2, per_camera + 3, (n, 6)))
    counts = np.where(present, counts, 0).T.reshape(-1)  # camera-major
    return (np.repeat(np.repeat(np.arange(1, 7), n), counts),
            np.repeat(np.tile(np.arange(n), 6), counts))


def _image_draws(rng, cam_of, ident, people, cams, size) -> dict[str, np.ndarray]:
    """Per image: framing, view, gait phase, exposure, background crop and occluder."""
    n = len(cam_of)
    h, w = size
    cam = lambda key: np.array([cams[c][key] for c in range(1, 7)])[cam_of - 1]  # noqa: E731
    d = {
        "scale": np.minimum(np.exp(rng.normal(0, 0.04, n)), 0.97 / people["height"][ident]),
        "dx": rng.normal(0, 0.035, n), "dy": rng.normal(0, 0.015, n),
        "roll": cam("roll") + rng.normal(0, 0.02, n),
        "yaw": np.clip(cam("yaw") + rng.normal(0, 0.22, n), -0.75, 0.75),
        "facing": np.where(rng.random(n) < cam("front"), 1.0, -1.0),
        "phase": rng.uniform(0, 2 * np.pi, n),
        "exposure": np.exp(rng.normal(0, 0.08, n)),
        "crop": rng.integers(0, w + 1, n),
        "occluder": rng.choice(4, n, p=[0.82, 0.06, 0.06, 0.06]),  # none, pole, box, passer-by
        "occ_x": rng.uniform(0, 1, n), "occ_w": rng.uniform(0.08, 0.2, n),
        "occ_h": rng.uniform(0.15, 0.3, n), "occ_side": rng.choice([-1.0, 1.0], n),
        "occ_heat": rng.uniform(0.6, 0.85, n),
    }
    d["occ_colour"] = _dyes(rng, n, 0.5, (0.1, 0.8))
    return d


# ---- rendering --------------------------------------------------------------------------


class _Painter:
    """Paints layers back to front with anti-aliased coverage, in colour or in heat.

    Each layer is painted through a `_Region`: the images that have the part and the
    band of rows it can reach, so a hat costs the rows of a head of the images with a hat.
    """

    def __init__(self, out, x, y, px, top, s, infrared, light, margin) -> None:
        self.out, self.x, self.y, self.px = out, x, y, px
        self.top, self.s, self.infrared, self.light, self.margin = top, s, infrared, light, margin
        self.n, self.h = x.shape[0], x.shape[1]

    def region(self, lo, hi, who=None) -> _Region | None:
        """Images `who` (all when None), rows of body heights lo..hi (scalars or per image)."""
        idx = np.arange(self.n) if who is None else np.flatnonzero(who)
        if not len(idx):
            return None
        top, s = self.top[idx], self.s[idx]
        lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (self.n,))[idx] for v in (lo, hi))
        r0 = max(0, int(np.floor((top + lo * s).min() - self.margin)))
        r1 = min(self.h, int(np.ceil((top + hi * s).max() + self.margin)))
        return _Region(self, idx, slice(r0, r1)) if r1 > r0 else None


class _Region:
    def __init__(self, pt: _Painter, idx: np.ndarray, rows: slice) -> None:
        self.pt, self.idx, self.rows = pt, idx, rows
        self.whole = len(idx) == pt.n
        self.key = slice(None) if self.whole else idx
        self.x, self.y, self.px = pt.x[self.key, rows], pt.y[self.key, rows], pt.px[self.key]

    def c(self, a, j=None):
        """A per-image value of the chunk, for this region's images ([k, 1, 1] or [k, 1, 1, 3])."""
        a = np.asarray(a)
        if a.ndim == 0:
            return a if a.dtype == bool else _F(a)
        v = a if self.whole else a[self.idx]
        v = v if j is None else v[j]
        v = v if v.dtype == bool else v.astype(_F)
        return v[:, None, None] if v.ndim == 1 else v[:, None, None, :]

    def paint(self, sd, colour, heat, thickness=0.03, px=None) -> None:
        """sd: signed distance (body heights; pixels with px=1); colour: per image [n, 3] or
        per pixel [k, h, W, 3]; heat: scalar, per image [n] or per pixel [k, h, W].
        Shading: cylinder-like in colour; in heat, limb edges emit less."""
        a = np.clip(0.5 - sd / (self.px if px is None else px), 0, 1)
        depth = np.sqrt(np.clip(-sd / thickness, 0, 1))
        block = self.pt.out[self.key, self.rows]
        if self.pt.infrared:
            value = (heat if np.ndim(heat) == 3 else self.c(heat)) * (0.86 + 0.14 * depth)
            block += a * (value - block)
        else:
            c = colour if np.ndim(colour) == 4 else self.c(colour)
            value = c * ((0.72 + 0.28 * depth) * self.pt.light)[..., None]
            block += a[..., None] * (value - block)
        if not self.whole:
            self.pt.out[self.idx, self.rows] = block

    def mix(self, c1, c2, m):
        """Per-pixel blend of two per-image colours [n, 3] (or heats [n]) by m [k, h, W]."""
        c1, c2 = self.c(c1), self.c(c2)
        return c1 + (m[..., None] if c1.ndim == 4 else m) * (c2 - c1)


def _pose(p, img):
    """Joint positions per image (body heights; image x of the person's axis at 0).

    The person turned by `yaw` and facing the camera (`facing` 1) or walking away (-1):
    their left is at image x `cl` per unit, their forward at `sz`. Legs swing opposite
    each other, the knee of the leg moving forward bent; the lowest foot stands on the
    ground (`drop` sinks the body while a leg swings); arms swing opposite their leg.
    """
    q: dict[str, Any] = {}
    q["cl"] = cl = img["facing"] * np.cos(img["yaw"])
    q["sz"] = sz = img["facing"] * np.sin(img["yaw"])
    q["widen"] = np.abs(np.cos(img["yaw"])) + 0.45 * np.abs(sz)  # the torso seen turned
    q["near"] = np.where(sz <= 0, 1.0, -1.0)  # the arm nearer the camera (drawn last)
    q["ry"], q["rx"] = p["head_ry"], p["head_rx"]
    q["ys"] = ys = 2 * p["head_ry"] + p["neck"]  # shoulder line
    q["yh"] = yh = ys + p["torso"]  # hip line
    seg = (0.975 - yh) / 2  # thigh = shin
    for side, name in ((1.0, "l"), (-1.0, "r")):
        phase = img["phase"] + (side < 0) * np.pi
        theta = p["gait"] * np.sin(phase)
        bend = 1.2 * p["gait"] * np.maximum(0, np.cos(phase))
        lat = side * (p["hip"] - p["thigh"] * 0.9)
        ky, kz = seg * np.cos(theta), seg * np.sin(theta)
        ay, az = ky + seg * np.cos(theta - bend), kz + seg * np.sin(theta - bend)
        q[f"hip_{name}"] = (lat * cl, yh)
        q[f"knee_{name}"] = (lat * cl + kz * sz, yh + ky)
        q[f"ankle_{name}"] = (lat * cl + az * sz, yh + ay)
        # arm: shoulder, elbow, wrist
        swing = -p["arm_swing"] * np.sin(phase)
        lat0 = side * (p["shoulder"] - p["arm_r"])
        up, fa = p["arm_len"] * 0.47, p["arm_len"] * 0.53
        el_lat = lat0 + side * up * np.sin(p["abduct"])
        el_y = ys + p["arm_r"] + up * np.cos(swing) * np.cos(p["abduct"])
        el_z = up * np.sin(swing)
        wr_lat = el_lat + side * 0.5 * fa * np.sin(p["abduct"])
        wr_y = el_y + fa * np.cos(swing + p["elbow"])
        wr_z = el_z + fa * np.sin(swing + p["elbow"])
        q[f"shoulder_{name}"] = (lat0 * cl, ys + p["arm_r"])
        q[f"elbow_{name}"] = (el_lat * cl + el_z * sz, el_y)
        q[f"wrist_{name}"] = (wr_lat * cl + wr_z * sz, wr_y)
    q["drop"] = 0.975 - np.maximum(q["ankle_l"][1], q["ankle_r"][1])
    return q


def _upper_pattern(kind, R, j, p, q):
    """Mix weight of the upper garment's second fabric, for region images j of one kind."""
    x, y, px = R.x[j], R.y[j], R.px[j]
    c = lambda a: R.c(a, j)  # noqa: E731
    v = (y - c(q["ys"])) / c(p["torso"])
    if kind == 1:  # horizontal bands
        return _band(v * c(p["band_freq"]) + c(p["band_phase"]), c(p["band_duty"]),
                     c(p["torso"] / p["band_freq"]) / px)
    if kind == 2:  # staggered dots
        g = c(p["dot_grid"])
        gv = (y - c(q["ys"])) / g + c(p["dot_off_v"])
        gu = x / g + c(p["dot_off_u"]) + 0.5 * (np.floor(gv) % 2)
        dist = np.hypot(gu - np.floor(gu) - 0.5, gv - np.floor(gv) - 0.5) - c(p["dot_rad"])
        return np.clip(0.5 - dist * g / px, 0, 1)
    if kind == 3:  # vertical gradient
        ramp = np.clip(v, 0, 1) ** c(p["grad_gamma"])
        return np.where(c(p["grad_dir"]) > 0, ramp, 1 - ramp)
    if kind == 4:  # a chest logo, seen only from the front
        lx, ly = c(p["logo_x"] * p["shoulder"] * q["cl"]), c(q["ys"] + p["logo_v"] * p["torso"])
        size = c(p["logo_size"])
        sd = np.where(c(p["logo_disc"]), np.hypot(x - lx, y - ly) - size,
                      np.maximum(np.abs(x - lx) - size, np.abs(y - ly) - 0.7 * size))
        return np.clip(0.5 - sd / px, 0, 1) * c(q["facing"] > 0)
    return np.clip(0.5 - (v - c(p["yoke_v"])) * c(p["torso"]) / px, 0, 1)  # 5: a yoke


def _render(p, img, cam, size, rng, people: bool = True) -> np.ndarray:
    """Render a chunk of one camera; returns uint8 [n, H, W, 3]. `people=False` gives the
    same frames without the person (the background plate; tests measure with it)."""
    h, w = size
    ir = cam["infrared"]
    q = _pose(p, img)
    q["facing"] = img["facing"]
    yy = np.arange(h, dtype=_F)[None, :, None] + 0.5 - h / 2
    xx = np.arange(w, dtype=_F)[None, None, :] + 0.5 - w / 2
    roll = _col(img["roll"])
    xr = xx * np.cos(roll) + yy * np.sin(roll)  # pixels from the image centre
    yr = -xx * np.sin(roll) + yy * np.cos(roll) + h / 2  # pixels from the top
    s = img["scale"] * p["height"] * h  # body height, pixels
    top = (h - s) / 2 + img["dy"] * h + q["drop"] * s
    y = (yr - _col(top)) / _col(s)
    x = (xr - _col(img["dx"] * w)) / (_col(s) * (1 + _F(cam["keystone"]) * (y - 0.5)))

    # Background: this image's crop of the camera's scene.
    scene = cam["scene"][:, img["crop"][:, None] + np.arange(w)[None]]  # [H, n, W(, 3)]
    out = np.moveaxis(scene, 1, 0).astype(_F)
    light = None if ir else 1 + cam["light"] * 0.3 * (xx / w)  # a side light on the person
    margin = 3 + np.abs(img["roll"]).max() * w / 2
    pt = _Painter(out, x, y, 1 / _col(s), top, s, ir, light, margin)
    amb = cam.get("ambient", 0.0)
    heat = lambda ins: amb + (p["t_skin"] - amb) * (1 - ins)  # noqa: E731
    if people:
        _paint_person(pt, p, q, heat)

    # Occluders in front of everyone: a pole, a low box, a passer-by at the edge
    # (distances in pixels).
    R = pt.region(-1, 2, img["occluder"] > 0)
    if R is not None:
        xp, yp = xr[R.key, R.rows], yr[R.key, R.rows]
        ox, ow = R.c((img["occ_x"] - 0.5) * w), R.c(img["occ_w"] * w)
        pole = np.abs(xp - ox) - ow / 2
        box = np.maximum(np.abs(xp - ox) - ow * 1.5, R.c((1 - img["occ_h"]) * h) - yp)
        passer = (np.hypot((xp - R.c(img["occ_side"] * w * 0.62)) / (0.3 * w),
                           (yp - h * 0.5) / (0.6 * h)) - 1) * 0.3 * w
        kind = R.c(img["occluder"])
        sd = np.where(kind == 1, pole, np.where(kind == 2, box, passer))
        R.paint(sd, img["occ_colour"], np.where(img["occluder"] == 3, img["occ_heat"], amb + 0.03),
                3.0, px=1.0)
    return _camera(pt.out, cam, img["exposure"], rng)


def _paint_person(pt: _Painter, p, q, heat) -> None:
    """Every layer of the person, back to front."""
    _paint_behind(pt, p, q, heat)
    _paint_arm(pt, p, q, heat, -q["near"])
    _paint_legs(pt, p, q, heat)
    _paint_upper(pt, p, q, heat)
    _paint_backpack(pt, p, q, heat)
    _paint_head(pt, p, q, heat)
    _paint_scarf(pt, p, q, heat)
    _paint_arm(pt, p, q, heat, q["near"])


def _hair_end(p, q) -> np.ndarray:
    """Where long hair ends, as a fraction of the body height."""
    return q["ys"] + (p["hair_len"] - 1) * 0.09 + 0.05


def _long_hair(R, p, q) -> np.ndarray:
    sd, _ = _capsule(R.x, R.y, 0, R.c(q["ry"]), 0, R.c(_hair_end(p, q)), R.c(q["rx"] * 1.1))
    return sd


def _paint_behind(pt: _Painter, p, q, heat) -> None:
    """Long hair and, when the person is turned, the pack: behind everything else."""
    ys, sz = q["ys"], q["sz"]
    front = q["facing"] > 0
    hair_end = _hair_end(p, q)
    # Long hair hangs behind the head (seen from behind it is painted over the back).
    R = pt.region(0, hair_end + 0.1, front & (p["hair_len"] > 0))
    if R is not None:
        R.paint(_long_hair(R, p, q), p["c_hair"], heat(p["i_hair"]), 0.04)

    # The pack beside the torso when the person is turned (it is behind them).
    R = pt.region(ys, ys + 0.05 + p["pack_h"], p["backpack"] & (np.abs(sz) > 0.3))
    if R is not None:
        px_ = -np.sign(sz + 1e-9) * (p["shoulder"] * q["widen"] + 0.2 * p["pack_w"])
        R.paint(_round_box(R.x, R.y, R.c(px_), R.c(ys + 0.03 + p["pack_h"] / 2),
                           R.c(p["pack_w"] * 0.6), R.c(p["pack_h"] / 2), 0.02),
                p["c_pack"], heat(p["i_pack"]), 0.05)


def _paint_arm(pt: _Painter, p, q, heat, which) -> None:
    """The left (which = 1) or right (-1) arm of each image where it is `which`."""
    ys, skin_t = q["ys"], p["t_skin"]
    for side, name in ((1.0, "l"), (-1.0, "r")):
        R = pt.region(ys - 0.03, ys + p["arm_len"] + 0.1, which == side)
        if R is None:
            continue
        (sx, sy), (ex, ey), (wx, wy) = (q[f"{j}_{name}"] for j in ("shoulder", "elbow", "wrist"))
        sx, sy, ex, ey, wx, wy = (R.c(v) for v in (sx, sy, ex, ey, wx, wy))
        r = R.c(p["arm_r"])
        d1, _ = _capsule(R.x, R.y, sx, sy, ex, ey, r)
        d2, _ = _capsule(R.x, R.y, ex, ey, wx, wy, r * 0.85)
        hand = _ellipse(R.x, R.y, wx, wy + r * 0.6, r * 1.05, r * 1.3)
        R.paint(np.minimum(np.minimum(d1, d2), hand), p["c_skin"], skin_t, 0.025)
        # the sleeve covers `sleeve` of the arm's length (0.47 of it is the upper arm)
        t1 = R.c(np.clip(p["sleeve"] / 0.47, 0, 1))
        s1, _ = _capsule(R.x, R.y, sx, sy, sx + (ex - sx) * t1, sy + (ey - sy) * t1, r * 1.15)
        t2 = R.c(np.clip((p["sleeve"] - 0.47) / 0.53, 0, 1))
        s2, _ = _capsule(R.x, R.y, ex, ey, ex + (wx - ex) * t2, ey + (wy - ey) * t2, r)
        sleeve = np.where(R.c(p["sleeve"] > 0.47), np.minimum(s1, s2), s1)
        R.paint(np.where(R.c(p["sleeve"] > 0), sleeve, 1.0), p["c_upper"],
                heat(p["i_upper"]), 0.03)
        # a cup in this hand, hot or iced
        has = R.c(p["cup"] & (p["cup_side"] == side))
        if has.any():
            cup = _round_box(R.x, R.y, wx, wy + r * 1.2, 0.016, 0.024, 0.004)
            R.paint(np.where(has, cup, 1.0), p["c_cup"], np.where(p["cup_hot"], 1.0, 0.02),
                    0.01)


def _paint_legs(pt: _Painter, p, q, heat) -> None:
    """Legs: skin or tights, trousers or shorts over them with the lower pattern; shoes."""
    yh, cl, sz, skin_t = q["yh"], q["cl"], q["sz"], p["t_skin"]
    R = pt.region(0.8, 1.03)
    for name in ("l", "r"):
        ax, ay = (R.c(v) for v in q[f"ankle_{name}"])
        shoe, _ = _capsule(R.x, R.y, ax, ay + 0.004, ax + R.c(0.03 * sz), ay + 0.012, 0.02)
        R.paint(shoe, p["c_shoes"], heat(p["i_shoes"]), 0.02)
    R = pt.region(yh - 0.05, 1.0)
    sd, off = [], []
    for name in ("l", "r"):
        (hx, hy), (kx, ky), (ax, ay) = (tuple(R.c(v) for v in q[f"{j}_{name}"])
                                        for j in ("hip", "knee", "ankle"))
        r = R.c(p["thigh"])
        d1, o1 = _capsule(R.x, R.y, hx, hy, kx, ky, r)
        d2, o2 = _capsule(R.x, R.y, kx, ky, ax, ay, r * 0.78)
        sd.append(np.minimum(d1, d2))
        off.append(np.where(d1 < d2, o1 / r, o2 / (r * 0.78)))  # -1..1 across the leg
    leg_sd = np.minimum(*sd)
    skirt = p["lower_kind"] == 2
    tights = skirt & p["tights"]
    R.paint(leg_sd, np.where(tights[:, None], p["c_tights"], p["c_skin"]),
            np.where(tights, heat(p["i_tights"]), skin_t), 0.03)
    m = np.zeros_like(R.y)
    kind = p["lower_pattern"] if R.whole else p["lower_pattern"][R.idx]
    j = np.flatnonzero(kind == 1)  # a stripe down the outer edge of each leg
    if len(j):
        sgn = np.sign(R.c(cl, j) + 1e-9)  # the left leg's outer side
        outer = np.where(sd[0][j] < sd[1][j], off[0][j] * sgn, -off[1][j] * sgn)
        m[j] = np.clip((outer - 1 + R.c(p["stripe_w"], j)) * R.c(p["thigh"], j) / R.px[j] + 0.5,
                       0, 1)
    j = np.flatnonzero(kind == 2)  # bands round the legs
    if len(j):
        length = R.c(0.975 - yh, j)
        m[j] = _band((R.y[j] - R.c(yh, j)) / length * R.c(p["lband_freq"], j),
                     R.c(p["lband_duty"], j), length / R.c(p["lband_freq"], j) / R.px[j])
    end = np.where(p["lower_kind"] == 0, 2.0, yh + p["shorts_len"])
    pelvis = _round_box(R.x, R.y, 0, R.c(yh + 0.03), R.c(p["hip"] * q["widen"] * 0.98), 0.045, 0.02)
    lower = np.minimum(np.maximum(leg_sd, R.y - R.c(end)), pelvis)
    R.paint(np.where(R.c(skirt), 1.0, lower), R.mix(p["c_lower"], p["c_lower2"], m),
            R.mix(heat(p["i_lower"]), heat(p["i_lower2"]), m), 0.03)
    if skirt.any():  # a skirt hangs away from the body: cooler than the fabric on it
        v = np.clip((R.y - R.c(yh)) / R.c(p["skirt_len"]), 0, 1)
        half = R.c(p["hip"] * q["widen"]) * (1 + (R.c(p["skirt_flare"]) - 1) * v)
        sk = _round_box(R.x, R.y, 0, R.c(yh + p["skirt_len"] / 2 - 0.01), half,
                        R.c(p["skirt_len"] / 2 + 0.01), 0.01)
        R.paint(np.where(R.c(skirt), sk, 1.0), R.mix(p["c_lower"], p["c_lower2"], m),
                R.mix(heat(np.minimum(1, p["i_lower"] + 0.2)),
                      heat(np.minimum(1, p["i_lower2"] + 0.2)), m), 0.04)


def _paint_upper(pt: _Painter, p, q, heat) -> None:
    """Neck; the upper garment (a coat flares below the hip) with its pattern."""
    ys, yh, ry, rx, skin_t = q["ys"], q["yh"], q["ry"], q["rx"], p["t_skin"]
    R = pt.region(2 * ry - 0.03, ys + 0.03)
    neck, _ = _capsule(R.x, R.y, 0, R.c(2 * ry - 0.01), 0, R.c(ys + 0.01), R.c(rx * 0.45))
    R.paint(neck, p["c_skin"], skin_t, 0.02)
    bottom = yh + p["top_len"]
    R = pt.region(ys - 0.04, bottom + 0.04)
    v = (R.y - R.c(ys)) / R.c(p["torso"])
    below = np.clip((R.y - R.c(yh)) / R.c(np.maximum(p["top_len"], 1e-3)), 0, 1)
    hw_s, hw_h = R.c(p["shoulder"] * q["widen"]), R.c(p["hip"] * q["widen"])
    half = np.where(v < 1, hw_s + (hw_h - hw_s) * np.clip(v, 0, 1),
                    hw_h * (1 + R.c(p["flare"]) * below))
    torso = _round_box(R.x, R.y, 0, R.c((ys + bottom) / 2), half, R.c((bottom - ys) / 2), 0.03)
    m = np.zeros_like(R.y)
    kind = p["upper_pattern"] if R.whole else p["upper_pattern"][R.idx]
    for k in range(1, 6):
        j = np.flatnonzero(kind == k)
        if len(j):
            m[j] = _upper_pattern(k, R, j, p, q)
    # a coat's skirt hangs away from the body: 0.2 of the skin's warmth cooler
    chill = np.clip((R.y - R.c(yh)) / 0.02, 0, 1) * R.c(p["t_skin"] - heat(1.0))
    R.paint(torso, R.mix(p["c_upper"], p["c_upper2"], m),
            R.mix(heat(p["i_upper"]), heat(p["i_upper2"]), m) - 0.2 * chill, 0.05)


def _paint_backpack(pt: _Painter, p, q, heat) -> None:
    """Backpack: straps seen from the front, the pack from behind."""
    ys, front = q["ys"], q["facing"] > 0
    R = pt.region(ys - 0.03, ys + 0.06 + p["pack_h"], p["backpack"])
    if R is not None:
        w_ = R.c(p["shoulder"] * q["widen"])
        straps = np.minimum(*(_capsule(R.x, R.y, k * 0.55 * w_, R.c(ys), k * 0.62 * w_,
                                       R.c(ys + 0.17), R.c(p["strap"]))[0] for k in (-1, 1)))
        pack = _round_box(R.x, R.y, 0, R.c(ys + 0.03 + p["pack_h"] / 2),
                          R.c(p["pack_w"] * q["widen"]), R.c(p["pack_h"] / 2), 0.02)
        R.paint(np.where(R.c(front), straps, pack), p["c_pack"], heat(p["i_pack"]), 0.03)


def _paint_head(pt: _Painter, p, q, heat) -> None:
    """Head: the face; hair as a cap from the front, all of it from behind (with the long
    hair over the back); headwear."""
    ry, rx, skin_t = q["ry"], q["rx"], p["t_skin"]
    front, hair_end = q["facing"] > 0, _hair_end(p, q)
    R = pt.region(-0.03, np.where(front, 2 * ry + 0.02, hair_end + 0.1))
    head = _ellipse(R.x, R.y, 0, R.c(ry), R.c(rx), R.c(ry))
    R.paint(head, p["c_skin"], skin_t, 0.04)
    cap = np.maximum(_ellipse(R.x, R.y, 0, R.c(ry * 0.92), R.c(rx * 1.06), R.c(ry)),
                     R.y - R.c(ry * (0.35 + p["hairline"])))
    behind = np.where(R.c(p["hair_len"] > 0), np.minimum(head - 0.003, _long_hair(R, p, q)),
                      head - 0.003)
    R.paint(np.where(R.c(front), cap, behind), p["c_hair"], heat(p["i_hair"]), 0.04)
    R = pt.region(-0.03, 2 * ry, p["headwear"] > 0)
    if R is not None:
        rx_, ry_ = R.c(rx), R.c(ry)
        peaked = np.minimum(np.maximum(_ellipse(R.x, R.y, 0, ry_ * 0.6, rx_ * 1.1, ry_ * 0.62),
                                       R.y - ry_ * 0.6),
                            _capsule(R.x, R.y, -rx_ * 1.25, ry_ * 0.62, rx_ * 1.25, ry_ * 0.62,
                                     0.007)[0])
        beanie = np.maximum(_ellipse(R.x, R.y, 0, ry_ * 0.62, rx_ * 1.1, ry_ * 0.8),
                            R.y - ry_ * 0.95)
        R.paint(np.where(R.c(p["headwear"] == 1), peaked, beanie), p["c_hat"], heat(p["i_hat"]),
                0.02)


def _paint_scarf(pt: _Painter, p, q, heat) -> None:
    """Scarf round the neck, one end hanging (its side flips with the view)."""
    ys, rx, cl = q["ys"], q["rx"], q["cl"]
    R = pt.region(ys - 0.06, ys + p["scarf_len"] + 0.03, p["scarf"])
    if R is not None:
        rx_ = R.c(rx)
        ring, _ = _capsule(R.x, R.y, -rx_ * 0.9, R.c(ys - 0.012), rx_ * 0.9, R.c(ys - 0.008),
                           R.c(p["scarf_w"]))
        end_x = R.c(p["scarf_side"] * rx * 0.6 * cl)
        tail, _ = _capsule(R.x, R.y, end_x, R.c(ys), end_x * 1.2, R.c(ys + p["scarf_len"]), 0.016)
        R.paint(np.minimum(ring, tail), p["c_scarf"], heat(p["i_scarf"]), 0.02)


def _camera(out: np.ndarray, cam: dict[str, Any], exposure: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Optics and sensor of one camera over a chunk; uint8 [n, H, W, 3]."""
    n, h, w = out.shape[:3]
    sigma = (0, cam["blur"], cam["blur"]) + ((0,) if out.ndim == 4 else ())
    out = gaussian_filter(out, sigma, mode="nearest", truncate=2.5)
    if cam["infrared"]:
        out = (out - cam["ambient"]) * cam["contrast"] + cam["ambient"] + cam["level"]
        out = out + cam["columns"][None, None, :]
        out = out + rng.normal(0, cam["noise"], out.shape).astype(_F)
        out = np.repeat(out[..., None], 3, axis=-1)
    else:
        yy = (np.arange(h, dtype=_F)[:, None] + 0.5) / h - 0.5
        xx = (np.arange(w, dtype=_F)[None, :] + 0.5) / w - 0.5
        out = out * (1 - cam["vignette"] * (xx ** 2 + yy ** 2) * 2)[None, ..., None]
        out = out * _col(exposure)[..., None]
        grey = out.mean(-1, keepdims=True)
        out = (grey + cam["saturation"] * (out - grey)) * cam["cast"]
        out = np.clip(out, 0, 1) ** cam["gamma"]
        out = out + rng.normal(0, cam["noise"], out.shape).astype(_F)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


class _Heldout:
    """Identities, cameras and per-image draws of one held-out set; renders chunks."""

    def __init__(self, seed: int, identities: int, images_per_camera: int,
                 size: tuple[int, int]) -> None:
        root = np.random.SeedSequence([int(seed), HELDOUT_VERSION, 24])
        s_people, s_cam, s_list, s_img, self.s_split = root.spawn(5)
        self.seed, self.size = int(seed), size
        self.people = _people(np.random.default_rng(s_people), identities)
        self.cams = _camera_models(np.random.default_rng(s_cam), size)
        self.cam_of, self.ident = _image_list(np.random.default_rng(s_list), identities,
                                              images_per_camera)
        self.img = _image_draws(np.random.default_rng(s_img), self.cam_of, self.ident,
                                self.people, self.cams, size)
        self.chunks: list[tuple[int, int, int]] = []
        for c in range(1, 7):
            lo, hi = (int(np.searchsorted(self.cam_of, c, side)) for side in ("left", "right"))
            self.chunks += [(c, a, min(a + _CHUNK, hi)) for a in range(lo, hi, _CHUNK)]

    def render_chunk(self, k: int, people: bool = True) -> np.ndarray:
        c, start, stop = self.chunks[k]
        ids = self.ident[start:stop]
        p = {key: val[ids] for key, val in self.people.items()}
        img = {key: val[start:stop] for key, val in self.img.items()}
        rng = np.random.default_rng([self.seed, HELDOUT_VERSION, 7, k])
        return _render(p, img, self.cams[c], self.size, rng, people=people)

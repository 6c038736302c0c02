"""What the held-out renderer draws (`fmcnet.data.heldout` writes the set).

Each identity's body, garments, patterns, accessories and their heat; the scene and camera
model (optics, sensor, thermal response) of each camera; each image's pose, view,
framing, exposure and occluder; `_render` paints a chunk with `fmcnet.data.heldout_paint`
and passes it through its camera (`fmcnet.data.heldout`'s docstring says what differs from
the built-in renderer). `_Heldout` holds one set's identities, cameras and per-image draws
and renders it in chunks of at most `_CHUNK` images of one camera; each chunk's noise comes
from a stream keyed by its index, so the bytes depend on nothing but the arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from fmcnet.data.heldout_paint import F32, Painter, col, paint_person, pose

HELDOUT_VERSION = 1
VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
_CHUNK = 128

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
        return np.clip(out, 0, 1).astype(F32)
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
    return np.clip(out, 0, 1).astype(F32)


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
            c["columns"] = rng.normal(0, rng.uniform(0.005, 0.02), w).astype(F32)
            c["level"] = rng.uniform(-0.05, 0.05)
            c["contrast"] = rng.uniform(0.85, 1.15)
            c["quality"] = 88
        else:
            c["blur"] = rng.uniform(0.3, 1.1) * h / 128
            c["cast"] = (1 + rng.uniform(-0.12, 0.12, 3)).astype(F32)
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


def _render(p, img, cam, size, rng, people: bool = True) -> np.ndarray:
    """Render a chunk of one camera; returns uint8 [n, H, W, 3]. `people=False` gives the
    same frames without the person (the background plate; tests measure with it)."""
    h, w = size
    ir = cam["infrared"]
    q = pose(p, img)
    q["facing"] = img["facing"]
    yy = np.arange(h, dtype=F32)[None, :, None] + 0.5 - h / 2
    xx = np.arange(w, dtype=F32)[None, None, :] + 0.5 - w / 2
    roll = col(img["roll"])
    xr = xx * np.cos(roll) + yy * np.sin(roll)  # pixels from the image centre
    yr = -xx * np.sin(roll) + yy * np.cos(roll) + h / 2  # pixels from the top
    s = img["scale"] * p["height"] * h  # body height, pixels
    top = (h - s) / 2 + img["dy"] * h + q["drop"] * s
    y = (yr - col(top)) / col(s)
    x = (xr - col(img["dx"] * w)) / (col(s) * (1 + F32(cam["keystone"]) * (y - 0.5)))

    # Background: this image's crop of the camera's scene.
    scene = cam["scene"][:, img["crop"][:, None] + np.arange(w)[None]]  # [H, n, W(, 3)]
    out = np.moveaxis(scene, 1, 0).astype(F32)
    light = None if ir else 1 + cam["light"] * 0.3 * (xx / w)  # a side light on the person
    margin = 3 + np.abs(img["roll"]).max() * w / 2
    pt = Painter(out, x, y, 1 / col(s), top, s, ir, light, margin)
    amb = cam.get("ambient", 0.0)
    heat = lambda ins: amb + (p["t_skin"] - amb) * (1 - ins)  # noqa: E731
    if people:
        paint_person(pt, p, q, heat)

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


def _camera(out: np.ndarray, cam: dict[str, Any], exposure: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Optics and sensor of one camera over a chunk; uint8 [n, H, W, 3]."""
    n, h, w = out.shape[:3]
    sigma = (0, cam["blur"], cam["blur"]) + ((0,) if out.ndim == 4 else ())
    out = gaussian_filter(out, sigma, mode="nearest", truncate=2.5)
    if cam["infrared"]:
        out = (out - cam["ambient"]) * cam["contrast"] + cam["ambient"] + cam["level"]
        out = out + cam["columns"][None, None, :]
        out = out + rng.normal(0, cam["noise"], out.shape).astype(F32)
        out = np.repeat(out[..., None], 3, axis=-1)
    else:
        yy = (np.arange(h, dtype=F32)[:, None] + 0.5) / h - 0.5
        xx = (np.arange(w, dtype=F32)[None, :] + 0.5) / w - 0.5
        out = out * (1 - cam["vignette"] * (xx ** 2 + yy ** 2) * 2)[None, ..., None]
        out = out * col(exposure)[..., None]
        grey = out.mean(-1, keepdims=True)
        out = (grey + cam["saturation"] * (out - grey)) * cam["cast"]
        out = np.clip(out, 0, 1) ** cam["gamma"]
        out = out + rng.normal(0, cam["noise"], out.shape).astype(F32)
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

"""How the held-out renderer paints a person into a chunk of frames.

Signed-distance shapes in body heights (negative inside): a jointed figure in a walking
pose (`pose`), its clothes and patterns, accessories, painted back to front through a
`Painter` with anti-aliased coverage, in colour for the visible cameras and in heat for the
infrared ones. `fmcnet.data.heldout_render` draws what is painted (people, cameras, scenes,
per-image draws) and renders a chunk with `paint_person`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F32 = np.float32

# ---- signed distances (body heights; negative inside) ------------------------------------


def col(a) -> np.ndarray:
    """A per-image value as [n, 1, 1] (float32, or bool), to broadcast over a chunk's pixels."""
    a = np.asarray(a)
    return (a if a.dtype == bool else a.astype(F32))[:, None, None]


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


# ---- the painter and the pose ----------------------------------------------------------


class Painter:
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
    def __init__(self, pt: Painter, idx: np.ndarray, rows: slice) -> None:
        self.pt, self.idx, self.rows = pt, idx, rows
        self.whole = len(idx) == pt.n
        self.key = slice(None) if self.whole else idx
        self.x, self.y, self.px = pt.x[self.key, rows], pt.y[self.key, rows], pt.px[self.key]

    def c(self, a, j=None):
        """A per-image value of the chunk, for this region's images ([k, 1, 1] or [k, 1, 1, 3])."""
        a = np.asarray(a)
        if a.ndim == 0:
            return a if a.dtype == bool else F32(a)
        v = a if self.whole else a[self.idx]
        v = v if j is None else v[j]
        v = v if v.dtype == bool else v.astype(F32)
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


def pose(p, img):
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


# ---- the person, layer by layer ----------------------------------------------------------


def paint_person(pt: Painter, p, q, heat) -> None:
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


def _paint_behind(pt: Painter, p, q, heat) -> None:
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


def _paint_arm(pt: Painter, p, q, heat, which) -> None:
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


def _paint_legs(pt: Painter, p, q, heat) -> None:
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


def _paint_upper(pt: Painter, p, q, heat) -> None:
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


def _paint_backpack(pt: Painter, p, q, heat) -> None:
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


def _paint_head(pt: Painter, p, q, heat) -> None:
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


def _paint_scarf(pt: Painter, p, q, heat) -> None:
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

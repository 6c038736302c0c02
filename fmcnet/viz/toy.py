"""A toy ranking task, for tests and for trying the ranking browser without a run.

Drawn figures (a head, a shirt and trousers of an identity's two colours) as images and
identity centre + noise as features: a tiny SYSU-like cross-modality retrieval task whose
rankings the metric, the figures and the browser can all be checked on.
"""

from __future__ import annotations

import numpy as np

from fmcnet.viz.rankings import SettingData, setting_from_arrays


def toy_person(rng: np.random.Generator, shirt: np.ndarray, trousers: np.ndarray,
               infrared: bool, h: int = 96, w: int = 48) -> np.ndarray:
    """One drawn person, uint8 [h, w, 3]."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(70, 190)  # grey background: never mistaken for a green / red frame
    cx = w // 2 + int(rng.integers(-4, 5))
    img[8:22, cx - 6 : cx + 6] = (224, 188, 160)  # head
    img[22:56, cx - 12 : cx + 12] = shirt
    img[56:90, cx - 10 : cx + 10] = trousers
    img += rng.normal(0, 10, img.shape)
    if infrared:  # three identical channels, as SYSU-MM01 / RegDB store thermal images
        img[:] = img.mean(-1, keepdims=True) * 0.6 + 50
    return img.clip(0, 255).astype(np.uint8)


def toy_rankings(seed: int = 0, *, identities: int = 12, dim: int = 32, noise: float = 1.6) -> dict:
    """Keyword arguments for `RankingBrowser.from_arrays`: a tiny SYSU-like retrieval task.

    Infrared queries from cams 3 and 6 (two per identity and camera), a single-shot
    visible gallery from cams 1, 2, 4, 5, features = identity centre + noise (noisy
    enough that some queries fail), drawn figures as images. SYSU protocol, so cam3
    queries ignore cam2 gallery images. The images and identities depend only on `seed`;
    `noise` changes the features alone (a second toy "model" on the same task).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim))
    colors = rng.uniform(0, 255, size=(identities, 2, 3))
    pids = np.arange(1, identities + 1)
    feat_rng = np.random.default_rng([seed, int(noise * 1000)])

    def part(cams: tuple[int, ...], per: int, infrared: bool):
        pid = np.repeat(pids, len(cams) * per)
        cam = np.tile(np.repeat(cams, per), identities)
        imgs = np.stack([toy_person(rng, *colors[p - 1], infrared) for p in pid])
        feats = centres[pid - 1] + noise * feat_rng.normal(size=(len(pid), dim))
        return feats.astype(np.float32), pid, cam, imgs

    qf, qp, qc, qi = part((3, 6), 2, True)
    gf, gp, gc, gi = part((1, 2, 4, 5), 1, False)
    return dict(q_feats=qf, g_feats=gf, q_pids=qp, g_pids=gp, q_cams=qc, g_cams=gc,
                q_images=qi, g_images=gi, protocol="sysu", q_modality="infrared",
                g_modality="visible")


def toy_run(seed: int, noise: float) -> dict[str, SettingData]:
    """A toy "run": `toy_rankings(seed, noise=noise)` in both directions, by setting name."""
    t = toy_rankings(seed, noise=noise)
    reverse = dict(q_feats=t["g_feats"], g_feats=t["q_feats"], q_pids=t["g_pids"], g_pids=t["q_pids"],
                   q_cams=t["g_cams"], g_cams=t["q_cams"], q_images=t["g_images"],
                   g_images=t["q_images"], protocol="sysu", q_modality="visible",
                   g_modality="infrared")
    settings = [setting_from_arrays("infrared_to_visible", **t),
                setting_from_arrays("visible_to_infrared", **reverse)]
    return {s.name: s for s in settings}

"""The built-in synthetic set's ceiling: retrieval by what both cameras can see.

A query image is infrared, its gallery visible. What the two share of an identity is
what the renderer draws the same way in both (`fmcnet.data.synthetic`, "The modality
gap"): body proportions, the cut of the clothes, the garment patterns, bag and hat. The
visible dyes and the infrared fabric levels do not cross. So an *oracle* that is handed
the renderer's own cross-modal attributes of every image, as that image renders them,
and retrieves by them, bounds what any model can reach on the set through shared
features -- every R1 of the study and the demo is read against it.

Three oracles, each a feature per image, standardised (mean and standard deviation of
the training identities' images) and ranked with the evaluator's own distance and
metrics (`pairwise_distance`, `rank_metrics`, the dataset's gallery trials):

* ``exact`` -- the attributes themselves, the information ceiling: body height x the
  image's scale, head, torso, shoulder, taper, arm, leg; the cut (short sleeves and their
  length, shorts and theirs, a coat and its length); upper and lower pattern kind
  (one-hot), frequency and phase; bag side as rendered (flipped by the image's mirror),
  bag size; hat. Phases are the rendered ones: mirroring reverses the horizontal phase
  of vertical stripes and checks (phi -> pi - phi) and the direction of diagonals.
* ``pixels`` -- the same, as a model sees them at the training size (64 x 32 for
  `quick`): every length and width is a difference of edge positions rounded to whole
  pixels, with the image's scale and position jitter applied (so it varies from image to
  image of one identity, and nearby identities collide); a pattern component (a wave
  along the garment or across it) is seen only when its period is at least 2 pixels (the
  grid's Nyquist limit; else the garment reads plain), its period is measured over the
  whole cycles the garment holds with edges rounded to pixels, its phase to the pixel.
* ``categories`` -- what a viewer naming categories retrieves: short sleeves, shorts, coat,
  upper and lower pattern kind, bag side as rendered, hat.

Two more rows: ``unmirrored``, the exact features with every image's mirroring undone
(what a viewer who knows each camera's side would use: the exact oracle's shortfall
from 100 % is the bag side and the phases that mirroring flips), and the control: the ``exact`` features with every image given the
attributes of an identity drawn at random (seeded, independently per image); it must
fall to chance.

The per-image draws are reconstructed as `synthesize` makes them (the seed sequence, its
image list and `_Scene`) and mapped to the files in the order `synthesize` writes them;
`check_mapping` re-renders images from the reconstructed attributes and compares them
with the JPEG files.

    python -m fmcnet.analysis.ceiling --profile quick --json results/synthetic_ceiling.json \
        --markdown results/synthetic_ceiling.md --couplings 0.0 0.5 0.95
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmcnet.data import render, synthetic
from fmcnet.data.base import EvalSplit, VIDataset
from fmcnet.utils import FMCNetError

ORACLES = ("exact", "unmirrored", "pixels", "categories", "control")
VAL_SETTING = "val/all/single"  # the integrator's name of the validation setting
NYQUIST_PX = 2.0  # the shortest period a pixel grid shows


@dataclass
class Reconstruction:
    """The renderer's draws of a synthetic set, one row per image in file-writing order."""

    root: Path
    params: dict[str, Any]
    scene: Any  # fmcnet.data.render.Scene
    cam_of: np.ndarray  # camera 1..6
    ident: np.ndarray  # identity index 0..N-1 (pid - 1)
    paths: list[str]

    def attributes(self) -> dict[str, np.ndarray]:
        """Per image: the identity's draws (gathered) and the image's own draws."""
        out = {k: v[self.ident] for k, v in self.scene.idp.items()}
        out.update(self.scene.per_image)
        return out


def reconstruct(root: str | Path) -> Reconstruction:
    """Rebuild the per-identity and per-image draws of the set at `root` from its marker."""
    root = Path(root)
    try:
        params = json.loads((root / synthetic.MARKER).read_text())
    except (OSError, ValueError):
        raise FMCNetError(f"{root} has no readable {synthetic.MARKER}; expected a set written "
                          "by fmcnet.data.synthetic.synthesize") from None
    if params.get("version") != synthetic.GENERATOR_VERSION:
        raise FMCNetError(f"{root}/{synthetic.MARKER} records generator version "
                          f"{params.get('version')}, this code renders version "
                          f"{synthetic.GENERATOR_VERSION}; regenerate the set")
    knobs = {k: params[k] for k in synthetic._KNOB_DEFAULTS}
    seed, n, per_cam = int(params["seed"]), int(params["identities"]), int(params["images_per_camera"])
    size = tuple(int(v) for v in params["image_size"])
    # As `synthesize` draws them: five streams, the image list from the third.
    s_id, s_cam, s_list, s_img, _ = render.seed_streams(seed)
    cam_of, ident = render.image_list(np.random.default_rng(s_list), n, per_cam,
                                          knobs.pop("camera_presence"))
    scene = render.Scene((s_id, s_cam, s_img), seed, n, cam_of, ident, size, **knobs)
    # Files are numbered 1, 2, ... per (camera, pid) in list order (chunks follow the list).
    counter: dict[tuple[int, int], int] = {}
    paths = []
    for c, i in zip(cam_of.tolist(), ident.tolist()):
        num = counter[(c, i)] = counter.get((c, i), 0) + 1
        paths.append(str(root / f"cam{c}" / f"{i + 1:04d}" / f"{num:04d}.jpg"))
    return Reconstruction(root, params, scene, cam_of, ident, paths)


def rerender(rec: Reconstruction, rows: np.ndarray, *, noise: bool = False) -> np.ndarray:
    """uint8 pixels of images `rows` re-rendered from the reconstructed draws.

    noise=True renders their whole chunks as `synthesize` did (the files' pixels up to
    JPEG error); noise=False renders just those images from `attributes()` without noise.
    """
    rows = np.asarray(rows, np.int64)
    scene = rec.scene
    out = np.empty((len(rows), *scene.size, 3), np.uint8)
    if noise:
        for k, (_, start, stop) in enumerate(scene.chunks):
            hit = np.flatnonzero((rows >= start) & (rows < stop))
            if len(hit):
                out[hit] = scene.render_chunk(k)[rows[hit] - start]
        return out
    att = rec.attributes()
    for c in np.unique(rec.cam_of[rows]).tolist():
        hit = np.flatnonzero(rec.cam_of[rows] == c)
        idp = {k: v[rec.ident[rows[hit]]] for k, v in scene.idp.items()}
        img = {k: att[k][rows[hit]] for k in scene.per_image}
        out[hit] = render._render(idp, img, scene.cams[c], scene.size, 0.0,
                                     np.random.default_rng(0))
    return out


def _jpeg(paths: list[str]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def check_mapping(rec: Reconstruction, n: int = 12, seed: int = 0) -> dict[str, float]:
    """Re-render `n` images (spread over cameras) from their reconstructed attributes,
    without noise, and compare with their files: mean absolute difference (0..255) against
    the right file, and against the file of another identity in the same camera (the
    control a wrong mapping would look like). Raises when the right files do not match."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(rec.paths), min(n, len(rec.paths)), replace=False))
    mine = rerender(rec, rows).astype(np.float64)
    files = _jpeg([rec.paths[r] for r in rows]).astype(np.float64)
    other = []
    for r in rows.tolist():
        same_cam = np.flatnonzero((rec.cam_of == rec.cam_of[r]) & (rec.ident != rec.ident[r]))
        other.append(rec.paths[int(rng.choice(same_cam))])
    diff = np.abs(mine - files).mean(axis=(1, 2, 3))
    wrong = np.abs(mine - _jpeg(other).astype(np.float64)).mean(axis=(1, 2, 3))
    out = {"images": len(rows), "mean_abs_diff": float(diff.mean()),
           "max_abs_diff": float(diff.max()), "other_identity_mean_abs_diff": float(wrong.mean())}
    # pixel noise (std `noise` x 255) and JPEG error, against tens of levels when wrong
    if diff.max() > 3 * rec.params["noise"] * 255 + 6:
        raise FMCNetError(f"re-rendered images differ from the files of {rec.root} by up to "
                          f"{diff.max():.1f} levels (0..255): the reconstruction does not match "
                          "the renderer that wrote them; regenerate the set")
    return out


# ---- the oracles' features --------------------------------------------------------------


def _one_hot(values: np.ndarray, k: int, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}={i}": (values == i).astype(np.float64) for i in range(k)}


def _phase(phi: np.ndarray, on: np.ndarray, name: str) -> dict[str, np.ndarray]:
    return {f"{name}_cos": np.where(on, np.cos(phi), 0.0), f"{name}_sin": np.where(on, np.sin(phi), 0.0)}


def _categories(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    side = a["bag"] * a["mirror"]  # the image side the bag is drawn on
    f = {"short_sleeve": (a["sleeve"] < 1.0) * 1.0, "shorts": (a["shorts"] < 2.0) * 1.0,
         "coat": (a["coat"] > 0) * 1.0}
    f.update(_one_hot(a["upper_pattern"], 5, "upper"))
    f.update(_one_hot(a["lower_pattern"], 3, "lower"))
    f.update({"bag_left": (side < 0) * 1.0, "bag_right": (side > 0) * 1.0, "hat": a["hat"] * 1.0})
    return f


def _rendered_phases(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Phase of the wave along the garment (unchanged by mirroring) and across it (pi - phi
    when mirrored: `_pattern`'s u is the mirrored coordinate)."""
    phi = a["upper_phase"]
    return phi, np.where(a["mirror"] < 0, np.pi - phi, phi)


def exact_features(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cross-modal attributes of each image as its camera renders them (no dye, no heat)."""
    kind, low = a["upper_pattern"], a["lower_pattern"]
    along, across = _rendered_phases(a)
    f = {"height": a["height"] * a["scale"]}
    f.update({k: a[k] for k in ("head", "torso", "shoulder", "taper", "arm", "leg")})
    f.update(_categories(a))
    f["sleeve_len"] = np.where(a["sleeve"] < 1.0, a["sleeve"], 0.0)
    f["shorts_len"] = np.where(a["shorts"] < 2.0, a["shorts"], 0.0)
    f["coat_len"] = a["coat"]
    f["upper_freq"] = np.where(kind > 0, a["upper_freq"], 0.0)
    f.update(_phase(along, np.isin(kind, (1, 3, 4)), "upper_phase_along"))
    f.update(_phase(across, np.isin(kind, (2, 3)), "upper_phase_across"))
    f["diagonal_direction"] = np.where(kind == 4, a["mirror"], 0.0)
    f["lower_freq"] = np.where(low > 0, a["lower_freq"], 0.0)
    has_bag = a["bag"] != 0
    f["bag_w"], f["bag_h"] = np.where(has_bag, a["bag_w"], 0.0), np.where(has_bag, a["bag_h"], 0.0)
    return f


def _wave(period: np.ndarray, extent: np.ndarray, origin: np.ndarray, phi: np.ndarray):
    """A wave sin(2 pi t / period + phi) over `extent` pixels from `origin`, as a pixel grid
    shows it: visible when period >= 2 px; the period measured over the whole cycles in
    the extent with both ends rounded to pixels; the phase from the first rising edge
    rounded to a pixel. Returns (visible, measured period, measured phase)."""
    visible = period >= NYQUIST_PX
    cycles = np.maximum(1, np.floor(extent / period))
    measured = np.maximum(np.round(cycles * period), 1) / cycles
    edge = origin + np.mod(-phi / (2 * np.pi), 1.0) * period
    phase = 2 * np.pi * (np.round(edge) - np.round(origin)) / measured
    return visible, measured, phase


def pixel_features(a: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """`exact_features` as a model sees them at `size` (H, W): lengths to the pixel,
    patterns to what the grid resolves (see the module docstring)."""
    h, w = size
    r = np.round
    s = a["scale"] * a["height"] * h  # body height, pixels
    top = (h - s) / 2 + a["dy"] * h  # as `_part_map` places the body
    cx = w / 2 + a["dx"] * w
    down = lambda b: r(top + b * s)  # noqa: E731  (row of body height b, rounded)
    width = lambda half: r(cx + half * s) - r(cx - half * s)  # noqa: E731
    hr, tl, sh, aw, lw = a["head"], a["torso"], a["shoulder"], a["arm"], a["leg"]
    t0, hip = 2 * hr, 2 * hr + tl
    f = {"height": down(1.0) - down(0.0), "head": down(t0) - down(0.0),
         "head_width": width(0.82 * hr), "torso": down(hip) - down(t0),
         "shoulder": width(sh), "hip_width": width(sh * (1 - a["taper"])),
         "arm": r(cx + (sh + 2 * aw) * s) - r(cx + sh * s),
         "leg": r(cx + 2.05 * lw * s) - r(cx + 0.05 * lw * s)}
    short, shorts, has_bag = a["sleeve"] < 1.0, a["shorts"] < 2.0, a["bag"] != 0
    f["sleeve_len"] = np.where(short, down(t0 + a["sleeve"]) - down(t0), 0.0)
    f["shorts_len"] = np.where(shorts, down(hip + a["shorts"]) - down(hip), 0.0)
    f["coat_len"] = down(hip + a["coat"]) - down(hip)
    f["bag_w"] = np.where(has_bag, r(cx + (sh + 2 * aw + a["bag_w"]) * s) - r(cx + (sh + 2 * aw) * s), 0)
    f["bag_h"] = np.where(has_bag, down(hip - 0.07 + a["bag_h"]) - down(hip - 0.07), 0.0)
    f["hat"] = a["hat"] * 1.0
    side = a["bag"] * a["mirror"]
    f.update({"bag_left": (side < 0) * 1.0, "bag_right": (side > 0) * 1.0,
              "short_sleeve": short * 1.0, "shorts": shorts * 1.0, "coat": (a["coat"] > 0) * 1.0})

    # Upper garment: a wave along it (bands; checks' rows; diagonals) and across it
    # (vertical stripes; checks' columns), `_pattern`'s v = along / torso, u = across / sh.
    kind = a["upper_pattern"]
    along, across = _rendered_phases(a)
    freq = a["upper_freq"]
    vis_v, per_v, ph_v = _wave(tl * s / freq, tl * s, top + t0 * s, along)
    vis_u, per_u, ph_u = _wave(4 * sh * s / freq, 2 * sh * s, cx, across)
    # a diagonal's wave runs across its stripes: shorter than along the garment
    diag = 1 / np.sqrt((freq / (tl * s)) ** 2 + (0.35 * freq / (sh * s)) ** 2)
    seen = np.select([kind == 1, kind == 2, kind == 3, kind == 4],
                     [vis_v, vis_u, vis_v & vis_u, diag >= NYQUIST_PX], False)
    kind = np.where(seen, kind, 0)  # too fine to resolve: a plain garment of mixed colour
    f.update(_one_hot(kind, 5, "upper"))
    torso_px, shoulder_px = f["torso"], f["shoulder"]
    f["upper_freq_along"] = np.where(np.isin(kind, (1, 3, 4)), torso_px / per_v, 0.0)
    f["upper_freq_across"] = np.where(np.isin(kind, (2, 3)), 2 * shoulder_px / per_u, 0.0)
    f.update(_phase(ph_v, np.isin(kind, (1, 3, 4)), "upper_phase_along"))
    f.update(_phase(ph_u, np.isin(kind, (2, 3)), "upper_phase_across"))
    f["diagonal_direction"] = np.where(kind == 4, a["mirror"], 0.0)

    # Lower garment: bands along the leg (phase 0) or stripes across each leg.
    low, lf = a["lower_pattern"], a["lower_freq"]
    leg_px = (1 - hip) * s
    vis_l, per_l, ph_l = _wave(leg_px / lf, leg_px, top + hip * s, np.zeros_like(lf))
    vis_x, per_x, _ = _wave(4 * lw * s / lf, 2 * lw * s, cx, np.zeros_like(lf))
    low = np.where(np.select([low == 1, low == 2], [vis_l, vis_x], False), low, 0)
    f.update(_one_hot(low, 3, "lower"))
    f["lower_freq"] = np.select([low == 1, low == 2],
                                [(down(1.0) - down(hip)) / per_l, 2 * f["leg"] / per_x], 0.0)
    f.update(_phase(ph_l, low == 1, "lower_phase"))
    return f


def oracle_features(rec: Reconstruction, oracle: str, size: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """[images, D] features of `oracle` ("exact" | "pixels" | "categories") in file order."""
    a = rec.attributes()
    if oracle == "exact":
        f = exact_features(a)
    elif oracle == "pixels":
        f = pixel_features(a, size)
    elif oracle == "categories":
        f = _categories(a)
    else:
        raise FMCNetError(f"unknown oracle {oracle!r}; choose one of exact, pixels, categories")
    names = sorted(f)
    return np.stack([np.asarray(f[k], np.float64) for k in names], 1), names


# ---- retrieval --------------------------------------------------------------------------


def val_split(dataset: VIDataset, trials: int) -> tuple[EvalSplit, str]:
    """The validation setting: the loader's own when it has one, else the same definition
    (infrared val-id queries, one visible image per (identity, camera) drawn by the seeded
    sampler for trial t) built here. Returns the split and where it came from."""
    if VAL_SETTING in dataset.splits:
        return dataset.splits[VAL_SETTING], "loader"
    from fmcnet.data.sysu import group_ids, within_group_rank

    if dataset.val is None:
        raise FMCNetError("the dataset was loaded without validate=True: it has no val ids")
    query, pool = dataset.val.infrared, dataset.val.visible
    groups = group_ids(pool.pids, pool.cams)
    picks = [np.flatnonzero(within_group_rank(groups, np.random.default_rng(t)) < 1)
             for t in range(trials)]
    return EvalSplit(VAL_SETTING, "sysu", query, pool, picks, sampler="seeded"), "ceiling.val_split"


def retrieval(features: np.ndarray, row_of: dict[str, int], split: EvalSplit, trials: int,
              stats: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """R1..R20, mAP, mINP (percent, mean and std over trials) of `split` ranked by
    `features` (rows by image path), standardised with `stats` = (mean, std), through the
    evaluator's own distance and per-trial metrics."""
    import torch

    from fmcnet.evaluation.metrics import pairwise_distance
    from fmcnet.evaluation.protocols import _summary, _take, _trial_metrics

    mean, std = stats

    def feats(images):
        rows = np.asarray([row_of[p] for p in images.paths], np.int64)
        return torch.from_numpy(((features[rows] - mean) / std).astype(np.float32))

    qf, gf = feats(split.query), feats(split.gallery)
    d_all = pairwise_distance(qf, gf)
    per_trial = []
    for t in range(min(trials, len(split.trials))):
        q_rows, g_rows = split.trial_rows(t)
        d = _take(d_all, q_rows)
        if g_rows is not None:
            d = d[:, torch.as_tensor(g_rows)]
        per_trial.append(_trial_metrics(d, split, q_rows, g_rows, 20))
    out = _summary(per_trial)
    out.pop("per_trial")
    out.pop("cmc")
    gallery_ids = len(np.unique(split.gallery.pids[split.trials[0]]))
    out["chance_R1"] = 100.0 / gallery_ids
    return out


def _standardiser(features: np.ndarray, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = features[train_rows].mean(0)
    std = features[train_rows].std(0)
    return mean, np.where(std > 1e-12, std, 1.0)


def ceiling_report(cfg, *, trials: int | None = None, check: bool = True) -> dict[str, Any]:
    """The three oracles (and the control) on `cfg`'s built-in synthetic set: test
    setting all/single (the dataset's gallery trials) and the validation setting.

    The set is the one training uses (`ensure_synthetic(cfg)`, generated when missing);
    features are measured at the training size (cfg.height x cfg.width).
    """
    from fmcnet.data import dataset_for_config
    from fmcnet.data.synthetic import ensure_synthetic

    if cfg.dataset != "synthetic":
        raise FMCNetError(f"the ceiling is measured on the built-in synthetic set; "
                          f"dataset={cfg.dataset} has no renderer attributes")
    t0 = time.perf_counter()
    trials = int(cfg.trials if trials is None else trials)
    root = ensure_synthetic(cfg)
    rec = reconstruct(root)
    dataset = dataset_for_config(dataclasses.replace(cfg, validate=True))
    known = set(rec.paths)
    for images in (dataset.train.visible, dataset.train.infrared, dataset.val.visible,
                   dataset.val.infrared, dataset.splits["all/single"].query,
                   dataset.splits["all/single"].gallery):
        missing = [p for p in images.paths if p not in known]
        if missing:
            raise FMCNetError(f"{missing[0]} is not an image the reconstruction of {root} "
                              "knows; the set was not written by this renderer")
    row_of = {p: i for i, p in enumerate(rec.paths)}
    train_rows = np.asarray([row_of[p] for s in (dataset.train.visible, dataset.train.infrared)
                             for p in s.paths], np.int64)
    splits = {"test": dataset.splits["all/single"]}
    splits["val"], val_source = val_split(dataset, trials)
    size = (int(cfg.height), int(cfg.width))

    results: dict[str, Any] = {}
    names: dict[str, list[str]] = {}
    for oracle in ORACLES:
        base = "exact" if oracle in ("control", "unmirrored") else oracle
        features, names[base] = oracle_features(rec, base, size)
        if oracle == "unmirrored":
            plain = exact_features({**rec.attributes(), "mirror": np.ones(len(rec.paths))})
            features = np.stack([plain[k] for k in names[base]], 1)
        if oracle == "control":  # every image carries the attributes of a random identity
            donor = np.random.default_rng(0).integers(0, int(rec.params["identities"]),
                                                      len(rec.paths))
            swapped = {k: v[donor] for k, v in rec.scene.idp.items()}
            fake = exact_features({**swapped, **rec.scene.per_image})
            features = np.stack([fake[k] for k in names[base]], 1)
        stats = _standardiser(features, train_rows)
        results[oracle] = {s: retrieval(features, row_of, split, trials, stats)
                           for s, split in splits.items()}
    return {
        "profile": cfg.profile, "root": root.name, "params": rec.params,
        "size": list(size), "trials": trials,
        "settings": {"test": "all/single (sampler " + splits["test"].sampler + ")",
                     "val": f"{VAL_SETTING} (sampler {splits['val'].sampler}, built by {val_source})"},
        "identities": {"test": int(len(np.unique(splits["test"].query.pids))),
                       "val": int(len(np.unique(splits["val"].query.pids)))},
        "features": names, "oracles": results,
        "mapping_check": check_mapping(rec) if check else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ---- the report -------------------------------------------------------------------------

_LABELS = {"exact": "exact attributes (information ceiling)",
           "unmirrored": "exact, mirroring undone (each camera's side known)",
           "pixels": "as seen at {h}x{w} (lengths to the pixel, resolvable patterns)",
           "categories": "categories only (cut, pattern kinds, bag side, hat)",
           "control": "control: each image given a random identity's attributes"}


def ceiling_table(report: dict[str, Any]) -> str:
    """Markdown: one row per oracle, R1 / mAP / mINP on the test and the val identities."""
    h, w = report["size"]
    ids = report["identities"]
    lines = ["| oracle | test R1 | test mAP | test mINP | val R1 | val mAP | val mINP |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for oracle, res in report["oracles"].items():
        cells = [f"{res[s][m]:.1f} ± {res[s]['std'][m]:.1f}" if m == "R1" else f"{res[s][m]:.1f}"
                 for s in ("test", "val") for m in ("R1", "mAP", "mINP")]
        lines.append(f"| {_LABELS[oracle].format(h=h, w=w)} | " + " | ".join(cells) + " |")
    t, v = report["oracles"]["exact"]["test"], report["oracles"]["exact"]["val"]
    lines.append(f"| chance (1 / gallery identities) | {t['chance_R1']:.1f} | | | "
                 f"{v['chance_R1']:.1f} | | |")
    lines.append("")
    lines.append(f"Test: {ids['test']} identities, {report['settings']['test']}; val: "
                 f"{ids['val']} identities, {report['settings']['val']}; {report['trials']} "
                 "trials, mean ± std over trials.")
    return "\n".join(lines)


def coupling_table(reports: dict[str, dict[str, Any]]) -> str:
    """Markdown: test and val R1 of each oracle at each thermal coupling."""
    keys = list(reports)
    head = "| oracle | " + " | ".join(f"coupling {k}: test / val R1" for k in keys) + " |"
    lines = [head, "|---|" + "---:|" * len(keys)]
    for oracle in ORACLES:
        cells = [f"{r['oracles'][oracle]['test']['R1']:.1f} / {r['oracles'][oracle]['val']['R1']:.1f}"
                 for r in reports.values()]
        lines.append(f"| {oracle} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ceiling_markdown(result: dict[str, Any]) -> str:
    """The document results/synthetic_ceiling.md, rendered from the JSON `main` writes."""
    rep = result["default"]
    p = rep["params"]
    h, w = rep["size"]
    check = rep["mapping_check"] or {}
    couplings = result.get("couplings") or {}
    moved = _moved(result)
    text = [
        "# The synthetic set's ceiling: retrieval by what both cameras can see",
        "",
        f"The built-in synthetic set as `{rep['profile']}` trains on it ({p['identities']} "
        f"identities, seed {p['seed']}, thermal coupling {p['thermal_coupling']}, "
        f"cross-modal predictability {p['cross_modal_predictability']}; images "
        f"{p['image_size'][0]}x{p['image_size'][1]} on disk, {h}x{w} in training). Each "
        "oracle ranks the visible gallery for each infrared query by features the renderer "
        "draws the same way in both modalities -- never the visible dye or the infrared "
        "level, which do not cross the gap -- standardised on the training identities' "
        "images, with the evaluator's own distance and metrics "
        "(`fmcnet/analysis/ceiling.py` says how each is made):",
        "",
        "* **exact** -- the renderer's attributes as each image renders them: body height x "
        "the image's scale, head, torso, shoulder, taper, arm, leg; sleeves, shorts, coat "
        "(flag and length); upper / lower pattern kind, frequency and phase (mirroring "
        "reverses the horizontal phase and the diagonals' direction); bag side as drawn "
        "(flipped by the image's mirror), bag size; hat. The information ceiling.",
        f"* **pixels** -- the same as a {h}x{w} image shows them: lengths and widths as "
        "differences of edge positions rounded to whole pixels (the image's scale and "
        "position jitter applied), a pattern only where its period is at least 2 pixels, "
        "its period measured over the garment's whole cycles and its phase to the pixel.",
        "* **categories** -- short sleeves, shorts, coat, the two pattern kinds, bag side, "
        "hat: what a viewer naming categories retrieves.",
        "* **unmirrored** -- the exact features with every image's mirroring undone: what "
        "is lost to the cameras that see people from the other side (bag side, the "
        "horizontal phase of stripes and checks, the diagonals' direction).",
        "* **control** -- the exact features with every image given the attributes of an "
        "identity drawn at random: must fall to chance.",
        "",
        ceiling_table(rep),
        "",
        "Read every R1 of the study and the demo against the **pixels** row: a model that "
        "retrieved by every cross-modal attribute to the pixel would reach it; the exact "
        "row is what the renderer's attributes allow at any resolution, the categories row "
        "what is left when the fine geometry is lost.",
        "",
    ]
    if couplings:
        text += [
            "## Thermal coupling",
            "",
            "The same oracles on the sets generated at other `synthetic_thermal_coupling` "
            "values (everything else as above). Coupling only mixes a garment's visible "
            "luminance into its infrared level; the oracles use no colour and no heat, and "
            "the attributes they use are drawn before and independently of it, so they "
            + ("do not move." if not moved else f"move: {moved}."),
            "",
            coupling_table({"default " + str(p["thermal_coupling"]): rep, **couplings}),
            "",
        ]
    text += [
        "## Provenance",
        "",
        f"Mapping check: {check.get('images', 0)} images re-rendered without noise from the "
        f"reconstructed attributes differ from their JPEG files by {check.get('mean_abs_diff', 0):.1f} "
        f"levels on average (max {check.get('max_abs_diff', 0):.1f}; the renderer's pixel noise "
        f"is {p['noise'] * 255:.1f} levels std), from another identity's files by "
        f"{check.get('other_identity_mean_abs_diff', 0):.1f}.",
        "",
        f"Command: `{result['command']}` -- commit {result['commit']}, {result['machine']}, "
        f"{result['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(text)


def _moved(result: dict[str, Any]) -> str:
    """Which oracle results differ between the couplings ("" when none does)."""
    base = result["default"]["oracles"]
    out = []
    for key, rep in (result.get("couplings") or {}).items():
        for oracle in ORACLES:
            for s in ("test", "val"):
                a, b = base[oracle][s], rep["oracles"][oracle][s]
                if any(abs(a[m] - b[m]) > 1e-9 for m in ("R1", "mAP", "mINP")):
                    out.append(f"{oracle} {s} at coupling {key}")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    from fmcnet.config import PROFILES, make_config, parse_overrides
    from fmcnet.utils import atomic_write_json, atomic_write_text, describe_device, git_commit

    parser = argparse.ArgumentParser(prog="python -m fmcnet.analysis.ceiling",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--json", default=None, help="write the measured JSON here")
    parser.add_argument("--markdown", default=None, help="write the Markdown document here")
    parser.add_argument("--couplings", type=float, nargs="*", default=[],
                        help="also measure at these synthetic_thermal_coupling values")
    parser.add_argument("overrides", nargs="*", help="key=value configuration overrides")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        overrides = parse_overrides(args.overrides)
        cfg = make_config(args.profile, overrides={**overrides, "progress": False})
        result: dict[str, Any] = {"default": ceiling_report(cfg), "couplings": {}}
        for c in args.couplings:
            other = make_config(args.profile, overrides={**overrides, "progress": False,
                                                         "synthetic_thermal_coupling": c})
            result["couplings"][str(c)] = ceiling_report(other)
    except FMCNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    import torch

    result.update({
        "command": " ".join(["python -m fmcnet.analysis.ceiling", *(argv if argv is not None
                                                                    else sys.argv[1:])]),
        "commit": git_commit(), "machine": describe_device(torch.device("cpu")) + ", "
        + platform.python_implementation() + " " + platform.python_version(),
        "seconds": round(time.perf_counter() - t0, 1),
    })
    print(ceiling_table(result["default"]))
    if result["couplings"]:
        print()
        print(coupling_table({"default": result["default"], **result["couplings"]}))
    if args.json:
        atomic_write_json(args.json, result)
    if args.markdown:
        atomic_write_text(args.markdown, ceiling_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
